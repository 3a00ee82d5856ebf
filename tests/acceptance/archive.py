"""put_archive / get_archive (docker cp's API)."""
import io
import tarfile

import docker
from common import client, name, cleanup, check, ok

c = client()
n = name("arch")
with cleanup(c, n):
    ctr = c.containers.run("busybox", ["sleep", "300"], name=n, detach=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for path, body in (("hello.txt", b"hello archive\n"), ("dir/nested.txt", b"nested\n")):
            ti = tarfile.TarInfo(path)
            ti.size = len(body)
            ti.mode = 0o640
            tf.addfile(ti, io.BytesIO(body))
    check(ctr.put_archive("/tmp", buf.getvalue()) is True, "put_archive")
    r = ctr.exec_run(["sh", "-c", "cat /tmp/hello.txt /tmp/dir/nested.txt; stat -c %a /tmp/hello.txt"])
    check(r.output == b"hello archive\nnested\n640\n", "inside: %r" % r.output)
    stream, stat = ctr.get_archive("/tmp/hello.txt")
    check(stat["name"] == "hello.txt" and stat["size"] == 14, "stat: %r" % stat)
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        m = tf.getmember("hello.txt")
        check(tf.extractfile(m).read() == b"hello archive\n", "get_archive content")
    stream, stat = ctr.get_archive("/tmp/dir")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tf:
        names = tf.getnames()
    check("dir/nested.txt" in names, "directory archive: %r" % names)
    try:
        ctr.get_archive("/no/such/path")
        raise AssertionError("get_archive of a missing path succeeded")
    except docker.errors.NotFound:
        pass
    try:
        ctr.put_archive("/no/such/dir", buf.getvalue())
        raise AssertionError("put_archive into a missing dir succeeded")
    except docker.errors.NotFound:
        pass
ok("archive")
