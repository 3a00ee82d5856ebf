"""containers.run(remove=True): output, exit codes (ContainerError), nothing left behind."""
import docker
from common import client, name, cleanup, check, ok

c = client()
out = c.containers.run("busybox", ["echo", "hello", "py"], remove=True)
check(out == b"hello py\n", "run output: %r" % out)
out = c.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True, stdout=True, stderr=True)
check(b"out\n" in out and b"err\n" in out, "stdout+stderr: %r" % out)
n = name("exit")
with cleanup(c, n):
    try:
        c.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], name=n, remove=True)
        raise AssertionError("no ContainerError for exit 3")
    except docker.errors.ContainerError as e:
        check(e.exit_status == 3, "exit_status %r" % e.exit_status)
        check(b"bad" in (e.stderr or b""), "stderr of the failed container: %r" % e.stderr)
left = [x.name for x in c.containers.list(all=True) if x.name.startswith("py-exit-")]
check(not left, "remove=True left %r" % left)
try:
    c.containers.run("acc/no-such-image:nope", "true", remove=True)
    raise AssertionError("no error for an unknown image")
except docker.errors.ImageNotFound:
    pass
except docker.errors.APIError as e:
    raise AssertionError("unknown image: expected ImageNotFound (404 No such image), got %r" % e)
ok("run_remove")
