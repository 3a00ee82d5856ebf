"""run(detach=True) + logs(stream=True) + exec_run + stop + remove."""
import threading
import time

import docker
from common import client, name, cleanup, check, ok

c = client()
n = name("logs")
with cleanup(c, n):
    ctr = c.containers.run("busybox", ["sh", "-c",
        "trap 'exit 0' TERM; for i in 1 2 3 4 5; do echo line $i; done; "
        "while [ ! -e /tmp/more ]; do sleep 0.1; done; echo after; while true; do sleep 0.1; done"],
        name=n, detach=True)
    check(len(ctr.id) == 64, "id %r" % ctr.id)
    got = []
    done = threading.Event()

    def follow():
        for chunk in ctr.logs(stream=True, follow=True):
            got.append(chunk)
            if b"after\n" in b"".join(got):
                break
        done.set()

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    deadline = time.time() + 10
    while b"line 5\n" not in b"".join(got) and time.time() < deadline:
        time.sleep(0.05)
    check(b"".join(got).startswith(b"line 1\nline 2\nline 3\nline 4\nline 5\n"), "streamed logs: %r" % got)
    r = ctr.exec_run(["touch", "/tmp/more"])
    check(r.exit_code == 0, "exec touch: %r" % (r,))
    check(done.wait(10), "logs(stream=True, follow=True) did not see the new line: %r" % got)
    check(ctr.logs() == b"line 1\nline 2\nline 3\nline 4\nline 5\nafter\n", "logs(): %r" % ctr.logs())
    check(ctr.logs(tail=1) == b"after\n", "logs(tail=1): %r" % ctr.logs(tail=1))
    r = ctr.exec_run(["sh", "-c", "exit 4"])
    check(r.exit_code == 4, "exec exit code: %r" % (r,))
    r = ctr.exec_run(["echo", "hi"])
    check(r.exit_code == 0 and r.output == b"hi\n", "exec output: %r" % (r,))
    r = ctr.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
    check(r.output == (b"o\n", b"e\n"), "exec demux: %r" % (r.output,))
    r = ctr.exec_run(["sh", "-c", "echo $FOO $(pwd) $(id -u)"], environment={"FOO": "bar"}, workdir="/etc", user="65534")
    check(r.output == b"bar /etc 65534\n", "exec env/workdir/user: %r" % (r.output,))
    stream = ctr.exec_run(["sh", "-c", "echo a; sleep 0.2; echo b"], stream=True)
    check(b"".join(stream.output) == b"a\nb\n", "exec stream")
    ctr.reload()
    check(ctr.status == "running", "status %r" % ctr.status)
    t0 = time.time()
    ctr.stop(timeout=5)
    check(time.time() - t0 < 5, "stop took %.1f s for a container that exits on TERM" % (time.time() - t0))
    ctr.reload()
    check(ctr.status == "exited" and ctr.attrs["State"]["ExitCode"] == 0, "after stop: %r" % ctr.attrs["State"])
    ctr.remove()
    try:
        c.containers.get(n)
        raise AssertionError("container still there after remove()")
    except docker.errors.NotFound:
        pass
ok("detach_logs_exec")
