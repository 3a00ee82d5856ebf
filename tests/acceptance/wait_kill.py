"""wait() status codes and kill(signal=...)."""
import time

from common import client, name, cleanup, check, ok

c = client()
a, b, t, k = name("wait"), name("kill"), name("term"), name("kill9")
with cleanup(c, a, b, t, k):
    ctr = c.containers.run("busybox", ["sh", "-c", "sleep 1; exit 9"], name=a, detach=True)
    w = ctr.wait(timeout=30)
    check(w["StatusCode"] == 9, "wait: %r" % w)
    check(c.api.inspect_container(a)["State"]["ExitCode"] == 9, "ExitCode")
    w2 = ctr.wait(timeout=30)
    check(w2["StatusCode"] == 9, "wait on an exited container: %r" % w2)

    ctr = c.containers.run("busybox", ["sleep", "300"], name=b, detach=True)
    ctr.kill()
    check(ctr.wait(timeout=30)["StatusCode"] == 137, "kill() is SIGKILL")

    ctr = c.containers.run("busybox", ["sleep", "300"], name=k, detach=True)
    ctr.kill(signal=9)
    check(ctr.wait(timeout=30)["StatusCode"] == 137, "kill(signal=9)")

    ctr = c.containers.run("busybox", ["sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done"], name=t, detach=True)
    time.sleep(0.5)
    ctr.kill(signal="SIGTERM")
    w = ctr.wait(timeout=30)
    check(w["StatusCode"] == 42, "kill(signal='SIGTERM') with a trap: %r" % w)
    try:
        ctr.kill()
        raise AssertionError("kill of a stopped container succeeded")
    except Exception as e:
        check(getattr(e, "status_code", None) == 409, "kill of a stopped container: %r" % e)
ok("wait_kill")
