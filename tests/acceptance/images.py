"""images.pull from a local registry, tag, push, save (chunks) -> images.load, remove. argv[1]: HOST:PORT."""
import json
import sys

import docker
from common import client, name, cleanup, check, ok

reg = sys.argv[1]
c = client()
pushed = "%s/acc/py" % reg
made = []
try:
    img = c.images.pull("%s/multi" % reg, tag="latest")
    made.append("%s/multi:latest" % reg)
    check("%s/multi:latest" % reg in img.tags, "pulled tags: %r" % img.tags)
    check(img.id.startswith("sha256:"), "id %r" % img.id)
    # the low-level stream: JSON lines, a Digest and a Status line, no error
    lines = [json.loads(l) if isinstance(l, (bytes, str)) else l
             for l in c.api.pull("%s/multi" % reg, tag="latest", stream=True, decode=True)]
    check(not any("error" in l for l in lines), "pull stream: %r" % lines)
    check(any(l.get("status", "").startswith("Digest: sha256:") for l in lines), "no Digest line: %r" % lines)

    check(img.tag(pushed, "v2"), "tag")
    made.append(pushed + ":v2")
    check(pushed + ":v2" in c.images.get(img.id).tags, "tags after tag(): %r" % c.images.get(img.id).tags)
    out = list(c.images.push(pushed, tag="v2", stream=True, decode=True))
    check(not any("error" in l for l in out), "push: %r" % out)
    aux = [l["aux"] for l in out if "aux" in l]
    check(aux and aux[-1]["Tag"] == "v2" and aux[-1]["Digest"].startswith("sha256:"), "push aux: %r" % out)

    # save -> load round trip of a name of its own
    own = "acc/py-save:1"
    check(img.tag("acc/py-save", "1"), "tag for save")
    made.append(own)
    data = b"".join(c.images.get(own).save(chunk_size=65536, named=True))
    check(len(data) > 1 << 20 and data[257:262] == b"ustar", "save(): %d bytes, not a tar" % len(data))
    c.images.remove(own)
    made.remove(own)
    try:
        c.images.get(own)
        raise AssertionError("image still there after remove")
    except docker.errors.ImageNotFound:
        pass
    loaded = c.images.load(data)
    made.append(own)
    check(any(own in i.tags for i in loaded), "images.load: %r" % [i.tags for i in loaded])
    out = c.containers.run(own, ["echo", "loaded"], remove=True)
    check(out == b"loaded\n", "run of the loaded image: %r" % out)
    # an unnamed save (the image id only) loads back as that id
    by_id = b"".join(c.images.get(own).save(chunk_size=65536))
    loaded = c.images.load(by_id)
    check([i.id for i in loaded] == [img.id], "load of an id-only save: %r" % [(i.id, i.tags) for i in loaded])
    c.images.remove(pushed + ":v2")
    made.remove(pushed + ":v2")
    again = c.images.pull(pushed, tag="v2")
    made.append(pushed + ":v2")
    check(pushed + ":v2" in again.tags, "pull of what we pushed: %r" % again.tags)
    names = [t for i in c.images.list() for t in i.tags]
    check("busybox:latest" in names and not any(t.startswith("sha256") for t in names), "images.list: %r" % names)
    try:
        c.images.pull("%s/acc/nothing" % reg, tag="nope")
        raise AssertionError("pull of a missing tag succeeded")
    except docker.errors.APIError as e:
        check(e.status_code in (404, 500), "pull of a missing tag: %r" % e)
finally:
    for r in made:
        try:
            c.images.remove(r, force=True)
        except Exception:
            pass
ok("images")
