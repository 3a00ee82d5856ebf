"""stdin through the attach socket: a container that cats its stdin back; and run(stdin_open=True)."""
import socket
import struct
import time

from common import client, name, cleanup, check, ok


def frames(sock, want, timeout=10):
    """Reads multiplexed frames until `want` is in stdout."""
    sock.settimeout(timeout)
    buf, out = b"", b""
    deadline = time.time() + timeout
    while want not in out and time.time() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8:
            kind, size = struct.unpack(">BxxxL", buf[:8])
            if len(buf) < 8 + size:
                break
            if kind == 1:
                out += buf[8:8 + size]
            buf = buf[8 + size:]
    return out


c = client()
a, b = name("attach"), name("stdin")
with cleanup(c, a, b):
    ctr = c.containers.create("busybox", ["sh", "-c", "while read l; do echo got:$l; done; echo eof"], name=a,
                              stdin_open=True)
    s = c.api.attach_socket(ctr.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = s._sock
    ctr.start()
    raw.sendall(b"one\ntwo\n")
    out = frames(raw, b"got:two\n")
    check(out == b"got:one\ngot:two\n", "attach echo: %r" % out)
    # docker-py's create(stdin_open=True) (not detached) sets StdinOnce: the hang-up closes the container's stdin
    check(c.api.inspect_container(a)["Config"]["StdinOnce"] is True, "StdinOnce")
    raw.shutdown(socket.SHUT_WR)
    out += frames(raw, b"eof\n")
    check(out == b"got:one\ngot:two\neof\n", "stdin EOF through the attach: %r" % out)
    raw.close()
    check(ctr.wait(timeout=30)["StatusCode"] == 0, "exit after EOF")

    ctr = c.containers.run("busybox", ["cat"], name=b, stdin_open=True, detach=True)
    s = ctr.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    raw = s._sock
    raw.sendall(b"ping through cat\n")
    out = frames(raw, b"ping through cat\n")
    check(out == b"ping through cat\n", "run(stdin_open=True) + attach_socket: %r" % out)
    # detached: StdinOnce is false, so a hang-up (even a half-close) leaves the container's stdin open
    check(c.api.inspect_container(b)["Config"]["StdinOnce"] is False, "StdinOnce of a detached run")
    raw.shutdown(socket.SHUT_WR)
    time.sleep(0.5)
    raw.close()
    time.sleep(0.5)
    ctr.reload()
    check(ctr.status == "running", "closing an attach must not stop the container: %r" % ctr.status)
    s2 = ctr.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    s2._sock.sendall(b"second client\n")
    check(frames(s2._sock, b"second client\n") == b"second client\n", "a second attach after a hang-up")
    s2._sock.close()
ok("attach")
