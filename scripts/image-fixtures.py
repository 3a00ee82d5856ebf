#!/usr/bin/env python3
"""image-fixtures.py: the parts of scripts/image-fixtures.sh that are easier in Python. Deterministic output.

  image-fixtures.py multi-layer3 OUT.tar.gz    hand-made layer 3 of the `multi` image: whiteouts of a file of
                                               layer 1, of a symlink and a whole directory of layer 2, an
                                               opaque directory (.wh..wh..opq written after the new entry, which
                                               it must not hide: whiteouts apply to lower layers only), and
                                               a long name and a long symlink target in GNU headers (L, K)
  image-fixtures.py multi-layer4 OUT.tar       layer 4 (the caller compresses it with zstd): a new directory, a
                                               file owned by 1000:1000, a regular file replacing a directory
  image-fixtures.py platform-layer OUT.tar.gz OS/ARCH[/VARIANT]
                                               one file, /etc/berth-platform, naming the platform
  image-fixtures.py bench-layers small|large OUTDIR
                                               the generated layers of bench-small / bench-large as
                                               OUTDIR/NN.tar.gz (seeded random: same bytes every run)
  image-fixtures.py verify LAYOUT TAG ROOTFS   applies the image's layers to a model of the file system (whiteouts,
                                               opaque dirs, hardlinks, xattrs) and compares it with ROOTFS (what
                                               `umoci unpack` made); exits 1 on any difference
  image-fixtures.py expected OUTDIR VERSION    writes OUTDIR/EXPECTED.json (schema in scripts/image-fixtures.sh)
"""
import gzip
import hashlib
import io
import json
import os
import random
import stat
import subprocess
import sys
import tarfile

MTIME = 946684800  # 2000-01-01T00:00:00Z
REF_NAME = "org.opencontainers.image.ref.name"


def die(msg):
    print("image-fixtures: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- writing layers

class Layer:
    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, typ, mode, uid=0, gid=0):
        ti = tarfile.TarInfo(name)
        ti.type = typ
        ti.mode = mode
        ti.mtime = MTIME
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        return ti

    def dir(self, name, mode=0o755, uid=0, gid=0):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, uid, gid))

    def file(self, name, data, mode=0o644, uid=0, gid=0):
        ti = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target):
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def gnu(self):
        """the entries added next get GNU headers (././@LongLink 'L' and 'K' records for long names)"""
        self.tar.format = tarfile.GNU_FORMAT

    def whiteout(self, name):
        self.file(name, b"", mode=0o644)

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()

    def write(self, path):
        data = self.bytes()
        if path.endswith(".gz"):
            data = gzip.compress(data, compresslevel=6, mtime=0)
        with open(path, "wb") as f:
            f.write(data)


def multi_layer3(out):
    l = Layer()
    l.dir("etc")
    l.whiteout("etc/.wh.hostname")           # a file of layer 1
    l.dir("data")
    l.whiteout("data/.wh.symlink")           # a symlink of layer 2
    l.whiteout("data/.wh.gone")              # a directory (with contents) of layer 2
    l.dir("data/opq")
    l.file("data/opq/c", b"c from layer 3\n")
    l.whiteout("data/opq/.wh..wh..opq")      # hides a and b (layer 2), not c (this layer)
    l.gnu()                                  # what GNU tar writes: ././@LongLink records, no PAX
    l.dir("data/gnu")
    l.file("data/gnu/" + "g" * 120, b"gnu long name\n")
    l.symlink("data/gnu/longtarget", "../" + "t" * 120)
    l.write(out)


def multi_layer4(out):
    l = Layer()
    l.dir("zstd")
    l.file("zstd/hello.txt", b"hello from a zstd layer\n")
    l.file("zstd/owned", b"owned by 1000:1000\n", mode=0o600, uid=1000, gid=1000)
    l.file("data/dir", b"a file where layer 2 had a directory\n")
    l.write(out)


def platform_layer(out, platform):
    l = Layer()
    l.dir("etc")
    l.file("etc/berth-platform", (platform + "\n").encode())
    l.write(out)


# bench: (seed, layers); each layer: list of (kind, count, size) with kind random|text|binary
BENCH = {
    "small": (1, [
        [("text", 450, 24 << 10), ("random", 1, 3 << 20)],
        [("random", 3, 2 << 20), ("text", 40, 64 << 10)],
        [("text", 2000, 3 << 10)],
        [("random", 1, 4 << 20), ("binary", 8, 1 << 20)],
        [("text", 8, 8 << 10)],
    ]),
    "large": (2, [
        [("text", 500, 32 << 10), ("random", 2, 3 << 20)],
        [("random", 3, 3 << 20), ("text", 80, 64 << 10)],
        [("text", 2500, 3 << 10)],
        [("random", 2, 4 << 20), ("binary", 8, 1 << 20)],
        [("text", 60, 128 << 10), ("random", 1, 2 << 20)],
        [("random", 1, 3 << 20), ("binary", 6, 1 << 20)],
        [("text", 8, 8 << 10)],
    ]),
}


def bench_layers(which, outdir):
    if which not in BENCH:
        die(f"bench-layers: unknown {which!r}")
    seed, layers = BENCH[which]
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
             for _ in range(3000)] + ["\n"] * 300
    low = bytes(b & 0x0F for b in range(256))
    os.makedirs(outdir, exist_ok=True)
    for n, spec in enumerate(layers, start=2):
        l = Layer()
        top = f"opt/bench{n}"
        l.dir("opt")
        l.dir(top)
        for kind, count, size in spec:
            d = f"{top}/{kind}"
            l.dir(d)
            for i in range(count):
                sz = size if count == 1 else rng.randint(size // 2, size * 3 // 2)
                if kind == "random":
                    data = rng.randbytes(sz)
                elif kind == "binary":
                    data = rng.randbytes(sz).translate(low)
                else:
                    words = rng.choices(vocab, k=sz // 5 + 1)
                    data = " ".join(words).encode()[:sz]
                if count > 50:
                    sub = f"{d}/{i // 100:02d}"
                    if i % 100 == 0:
                        l.dir(sub)
                    l.file(f"{sub}/{kind}-{i:05d}", data)
                else:
                    l.file(f"{d}/{kind}-{i:05d}", data, mode=0o755 if kind == "binary" else 0o644)
        l.write(os.path.join(outdir, f"{n:02d}.tar.gz"))


# ---------------------------------------------------------------- reading layouts

def blob(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def read_json(layout, digest):
    with open(blob(layout, digest), "rb") as f:
        data = f.read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        die(f"{layout}: blob {digest} does not match its digest")
    return json.loads(data)


def tagged(layout):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    return {d["annotations"][REF_NAME]: d for d in index["manifests"] if REF_NAME in d.get("annotations", {})}


def open_layer(layout, desc):
    path = blob(layout, desc["digest"])
    mt = desc["mediaType"]
    if mt.endswith("+zstd"):
        p = subprocess.Popen(["zstd", "-dcq", path], stdout=subprocess.PIPE)
        return p.stdout, p
    if mt.endswith("+gzip") or mt.endswith(".gzip"):
        return gzip.open(path, "rb"), None
    return open(path, "rb"), None


class Model:
    """The file system an image's layers make, applied the way the image spec says."""

    def __init__(self):
        self.nodes = {}  # path without leading "/" -> dict
        self.inode = 0

    def _remove_tree(self, path, older_than=None):
        for p in [p for p in self.nodes if p == path or p.startswith(path + "/")]:
            if older_than is None or self.nodes[p]["layer"] < older_than:
                del self.nodes[p]

    def apply(self, fileobj, layer):
        with tarfile.open(fileobj=fileobj, mode="r|") as t:
            for ti in t:
                name = ti.name
                while name.startswith("./"):
                    name = name[2:]
                name = name.strip("/")
                if name in ("", "."):
                    continue
                d, _, base = name.rpartition("/")
                if base == ".wh..wh..opq":
                    # hides what lower layers put in the directory; the directory stays, and so does what
                    # this layer puts there (before or after the marker)
                    for p in [p for p, n in self.nodes.items()
                              if (not d or p.startswith(d + "/")) and n["layer"] < layer]:
                        del self.nodes[p]
                    continue
                if base.startswith(".wh."):
                    self._remove_tree((d + "/" if d else "") + base[4:])
                    continue
                node = {"layer": layer, "uid": ti.uid, "gid": ti.gid, "mode": ti.mode & 0o7777,
                        "xattrs": {k[len("SCHILY.xattr."):]: v.encode("utf-8", "surrogateescape")
                                   for k, v in ti.pax_headers.items() if k.startswith("SCHILY.xattr.")}}
                if ti.isdir():
                    node["type"] = "dir"
                elif ti.isreg():
                    data = t.extractfile(ti).read()
                    node.update(type="file", size=len(data), sha256=hashlib.sha256(data).hexdigest())
                elif ti.issym():
                    node.update(type="symlink", target=ti.linkname)
                elif ti.islnk():
                    target = ti.linkname
                    while target.startswith("./"):
                        target = target[2:]
                    target = target.strip("/")
                    if target not in self.nodes:
                        die(f"layer {layer}: hardlink {name} to missing {target}")
                    tn = self.nodes[target]
                    if "ino" not in tn:
                        self.inode += 1
                        tn["ino"] = self.inode
                    node = dict(tn)
                    node["layer"] = layer
                elif ti.isfifo():
                    node["type"] = "fifo"
                elif ti.ischr() or ti.isblk():
                    node.update(type="char" if ti.ischr() else "block", rdev=[ti.devmajor, ti.devminor])
                else:
                    die(f"layer {layer}: {name}: unsupported tar type {ti.type!r}")
                old = self.nodes.get(name)
                if old is not None and not (old["type"] == "dir" and node["type"] == "dir"):
                    self._remove_tree(name)
                p = d
                while p and p not in self.nodes:
                    self.nodes[p] = self._implicit_dir(layer)
                    p = p.rpartition("/")[0]
                self.nodes[name] = node

    @staticmethod
    def _implicit_dir(layer):
        return {"layer": layer, "type": "dir", "uid": 0, "gid": 0, "mode": 0o755, "xattrs": {}}

    def links(self, path):
        n = self.nodes[path]
        if "ino" not in n:
            return []
        return sorted("/" + p for p, m in self.nodes.items() if p != path and m.get("ino") == n["ino"])


def model_of(layout, manifest_digest):
    manifest = read_json(layout, manifest_digest)
    config = read_json(layout, manifest["config"]["digest"])
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(manifest["layers"]):
        die(f"{layout}: {len(manifest['layers'])} layers but {len(diff_ids)} diffIDs")
    m = Model()
    layers = []
    for i, desc in enumerate(manifest["layers"]):
        f, proc = open_layer(layout, desc)
        h = hashlib.sha256()

        class Tee:
            def read(self, n=-1):
                b = f.read(n)
                h.update(b)
                return b

        m.apply(Tee(), i)
        while Tee().read(1 << 20):  # the tar's zero padding after the end marker counts too
            pass
        if proc is not None and proc.wait() != 0:
            die(f"{layout}: zstd failed on {desc['digest']}")
        with open(blob(layout, desc["digest"]), "rb") as bf:
            d = hashlib.file_digest(bf, "sha256").hexdigest() if hasattr(hashlib, "file_digest") else \
                hashlib.sha256(bf.read()).hexdigest()
        if "sha256:" + d != desc["digest"] or os.path.getsize(blob(layout, desc["digest"])) != desc["size"]:
            die(f"{layout}: layer {desc['digest']}: digest or size does not match the blob")
        if "sha256:" + h.hexdigest() != diff_ids[i]:
            die(f"{layout}: layer {i}: diffID {diff_ids[i]} but the tar hashes to sha256:{h.hexdigest()}")
        layers.append({"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"],
                       "diffID": diff_ids[i]})
    return m, manifest, config, layers


# ---------------------------------------------------------------- verify against an unpacked rootfs

XATTRS_CHECKED = ("user.", "security.capability")


def scan(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            n = {"uid": st.st_uid, "gid": st.st_gid, "mode": stat.S_IMODE(st.st_mode), "ino": st.st_ino,
                 "nlink": st.st_nlink}
            if stat.S_ISDIR(st.st_mode):
                n["type"] = "dir"
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    data = f.read()
                n.update(type="file", size=len(data), sha256=hashlib.sha256(data).hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                n.update(type="symlink", target=os.readlink(full))
            elif stat.S_ISFIFO(st.st_mode):
                n["type"] = "fifo"
            else:
                n["type"] = "other"
            xa = {}
            if not stat.S_ISLNK(st.st_mode):
                for k in os.listxattr(full, follow_symlinks=False):
                    if k.startswith(XATTRS_CHECKED):
                        xa[k] = os.getxattr(full, k, follow_symlinks=False)
            n["xattrs"] = xa
            out[rel] = n
    return out


def verify(layout, tag, rootfs):
    tags = tagged(layout)
    if tag not in tags:
        die(f"{layout}: no tag {tag}")
    m, *_ = model_of(layout, tags[tag]["digest"])
    got = scan(rootfs)
    errors = []
    for p in sorted(set(m.nodes) | set(got)):
        a, b = m.nodes.get(p), got.get(p)
        if a is None:
            errors.append(f"/{p}: in the rootfs, not in the model")
            continue
        if b is None:
            errors.append(f"/{p}: in the model, not in the rootfs")
            continue
        for k in ("type", "uid", "gid", "size", "sha256", "target", "xattrs"):
            if a.get(k) != b.get(k):
                errors.append(f"/{p}: {k}: model {a.get(k)!r}, rootfs {b.get(k)!r}")
        if a["type"] != "symlink" and a["mode"] != b["mode"]:
            errors.append(f"/{p}: mode: model {a['mode']:o}, rootfs {b['mode']:o}")
        if a["type"] == "file":
            want = {"/" + p} | set(m.links(p))
            have = {"/" + q for q, n in got.items() if n["ino"] == b["ino"]}
            if want != have:
                errors.append(f"/{p}: hardlinks: model {sorted(want)}, rootfs {sorted(have)}")
    for e in errors[:50]:
        print("image-fixtures: verify " + layout + ":" + tag + ": " + e, file=sys.stderr)
    if errors:
        die(f"verify {layout}:{tag}: {len(errors)} differences")
    print(f"image-fixtures: {layout}:{tag} matches {rootfs} ({len(got)} entries)")


# ---------------------------------------------------------------- EXPECTED.json

def file_entry(m, p):
    n = m.nodes[p]
    e = {"path": "/" + p, "type": n["type"], "mode": f"{n['mode']:04o}", "uid": n["uid"], "gid": n["gid"]}
    if n["type"] == "file":
        e["size"] = n["size"]
        e["sha256"] = n["sha256"]
        links = m.links(p)
        if links:
            e["linkedTo"] = links
    if n["type"] == "symlink":
        e["target"] = n["target"]
        del e["mode"]
    if n["xattrs"]:
        e["xattrs"] = {k: v.hex() for k, v in sorted(n["xattrs"].items())}
    return e


def image_entry(layout, desc, pick, absent):
    """pick(model) -> paths to list"""
    e = {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]}
    m, manifest, config, layers = model_of(layout, desc["digest"])
    e["config"] = {"digest": manifest["config"]["digest"], "size": manifest["config"]["size"]}
    e["platform"] = {k: config[k] for k in ("os", "architecture", "variant") if k in config}
    e["cmd"] = config.get("config", {}).get("Cmd")
    e["env"] = config.get("config", {}).get("Env")
    e["workingDir"] = config.get("config", {}).get("WorkingDir")
    e["layers"] = layers
    e["entries"] = len(m.nodes)
    e["files"] = [file_entry(m, p) for p in pick(m)]
    for p in absent:
        if p.strip("/") in m.nodes:
            die(f"{layout}: {p} should be absent")
    e["absent"] = absent
    return e


def pick_paths(*paths, under=()):
    def pick(m):
        out = [p.strip("/") for p in paths if p.strip("/") in m.nodes]
        missing = [p for p in paths if p.strip("/") not in m.nodes]
        if missing:
            die(f"expected paths missing from the model: {missing}")
        for u in under:
            out += sorted(p for p in m.nodes if p.startswith(u.strip("/") + "/") and p not in out)
        return out
    return pick


def bench_pick(m):
    # per generated layer: its first file of each kind
    out = ["bin/busybox"]
    seen = set()
    for p in sorted(m.nodes):
        if not p.startswith("opt/bench") or m.nodes[p]["type"] != "file":
            continue
        key = "/".join(p.split("/")[:3])
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def expected(outdir, version):
    images = {}
    base = ("/bin/busybox", "/bin/sh", "/etc/passwd", "/etc/group", "/tmp", "/root", "/probe")
    spec = {
        "busybox": (pick_paths(*base, "/etc/hostname"), []),
        "multi": (pick_paths(*base, under=("/data", "/zstd")),
                  ["/etc/hostname", "/data/symlink", "/data/gone", "/data/gone/file", "/data/opq/a",
                   "/data/opq/b"]),
        "bench-small": (bench_pick, []),
        "bench-large": (bench_pick, []),
    }
    for name in ("busybox", "multi", "index", "bench-small", "bench-large"):
        layout = os.path.join(outdir, name)
        tags = {}
        for tag, desc in sorted(tagged(layout).items()):
            if desc["mediaType"].endswith("index.v1+json"):
                idx = read_json(layout, desc["digest"])
                t = {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"],
                     "manifests": []}
                for d in idx["manifests"]:
                    plat = d["platform"]
                    pname = "/".join(plat[k] for k in ("os", "architecture", "variant") if k in plat)
                    ie = image_entry(layout, d, pick_paths("/bin/busybox", "/etc/berth-platform"), [])
                    ie["platform"] = plat
                    ie["platformString"] = pname
                    t["manifests"].append(ie)
                tags[tag] = t
            else:
                pick, absent = spec[name]
                tags[tag] = image_entry(layout, desc, pick, absent)
        images[name] = {"layout": name, "tags": tags}
    doc = {"version": version, "images": images}
    tmp = os.path.join(outdir, "EXPECTED.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(outdir, "EXPECTED.json"))


def main():
    a = sys.argv[1:]
    if not a:
        die(__doc__)
    cmd = a[0]
    if cmd == "multi-layer3" and len(a) == 2:
        multi_layer3(a[1])
    elif cmd == "multi-layer4" and len(a) == 2:
        multi_layer4(a[1])
    elif cmd == "platform-layer" and len(a) == 3:
        platform_layer(a[1], a[2])
    elif cmd == "bench-layers" and len(a) == 3:
        bench_layers(a[1], a[2])
    elif cmd == "verify" and len(a) == 4:
        verify(a[1], a[2], a[3])
    elif cmd == "expected" and len(a) == 3:
        expected(a[1], a[2])
    else:
        die("bad arguments\n" + __doc__)


if __name__ == "__main__":
    main()
