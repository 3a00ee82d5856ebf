#!/usr/bin/env python3
"""oci-add-layer.py: small edits of an OCI image layout (image-spec 1.0), for the image fixtures.

  oci-add-layer.py LAYOUT TAG LAYER [--tag NEWTAG] [--created-by TEXT] [--created TIME]
      Appends LAYER (a tar, .tar.gz / .tgz or .tar.zst file) as the top layer of the image LAYOUT:TAG: copies the
      blob into blobs/sha256, appends a descriptor to the manifest (media type from the file name: .tar ->
      ...layer.v1.tar, .gz/.tgz -> +gzip, .zst -> +zstd), its diffID (sha256 of the uncompressed tar) to the
      config's rootfs.diff_ids and a history entry, then writes the new config and manifest blobs and points
      TAG (or NEWTAG, leaving TAG alone) at the new manifest in index.json. Old blobs are left in place
      (`umoci gc --layout LAYOUT` removes them).

  oci-add-layer.py --index LAYOUT TAG SRC_LAYOUT:SRC_TAG=OS/ARCH[/VARIANT] ...
      Writes an image index (application/vnd.oci.image.index.v1+json) into LAYOUT (created if needed) and tags it
      TAG. Each argument names an image manifest and the platform it gets in the index: the image's blobs are
      copied into LAYOUT; when the image's config says another os/architecture/variant, a copy of the config
      with the requested ones (and a new manifest pointing at it) is written, the layers are shared.

Everything written is deterministic: compact JSON, keys in the order they are built or read, and no time
but --created (default 2000-01-01T00:00:00Z). The diffID of a .zst layer is computed through `zstd -dc`.
"""
import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"
DEFAULT_CREATED = "2000-01-01T00:00:00Z"


def die(msg):
    print("oci-add-layer: " + msg, file=sys.stderr)
    sys.exit(1)


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def blob_path(layout, digest):
    algo, _, hexd = digest.partition(":")
    return os.path.join(layout, "blobs", algo, hexd)


def write_blob(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return digest, len(data)


def read_json_blob(layout, digest):
    with open(blob_path(layout, digest), "rb") as f:
        data = f.read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        die(f"blob {digest} in {layout} does not match its digest")
    return json.loads(data)


def load_index(layout):
    try:
        with open(os.path.join(layout, "index.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def save_index(layout, index):
    tmp = os.path.join(layout, "index.json.tmp")
    with open(tmp, "wb") as f:
        f.write(canonical(index))
    os.replace(tmp, os.path.join(layout, "index.json"))


def init_layout(layout):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    p = os.path.join(layout, "oci-layout")
    if not os.path.exists(p):
        with open(p, "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
    if load_index(layout) is None:
        save_index(layout, {"schemaVersion": 2, "manifests": []})


def find_tag(index, tag):
    for i, d in enumerate(index.get("manifests", [])):
        if d.get("annotations", {}).get(REF_NAME) == tag:
            return i, d
    return None, None


def set_tag(layout, tag, desc):
    index = load_index(layout)
    desc = dict(desc)
    ann = dict(desc.get("annotations", {}))
    ann[REF_NAME] = tag
    desc["annotations"] = ann
    i, _ = find_tag(index, tag)
    if i is None:
        index["manifests"].append(desc)
    else:
        index["manifests"][i] = desc
    save_index(layout, index)


def hash_stream(f, extra=None):
    h = hashlib.sha256()
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        if extra is not None:
            extra.update(chunk)
    return "sha256:" + h.hexdigest()


def layer_media_type(path):
    if path.endswith((".gz", ".tgz")):
        return MT_LAYER + "+gzip"
    if path.endswith(".zst"):
        return MT_LAYER + "+zstd"
    if path.endswith(".tar"):
        return MT_LAYER
    die(f"{path}: cannot tell the compression from the name (want .tar, .tar.gz, .tgz or .tar.zst)")


def diff_id(path, media_type):
    if media_type.endswith("+gzip"):
        with gzip.open(path, "rb") as f:
            return hash_stream(f)
    if media_type.endswith("+zstd"):
        p = subprocess.Popen(["zstd", "-dcq", path], stdout=subprocess.PIPE)
        d = hash_stream(p.stdout)
        if p.wait() != 0:
            die(f"zstd -d {path} failed")
        return d
    with open(path, "rb") as f:
        return hash_stream(f)


def add_layer(args):
    layout = args.layout
    index = load_index(layout)
    if index is None:
        die(f"{layout}: no index.json (umoci init --layout {layout})")
    _, desc = find_tag(index, args.tag)
    if desc is None:
        die(f"{layout}: no tag {args.tag}")
    if desc.get("mediaType", MT_MANIFEST) != MT_MANIFEST:
        die(f"{layout}:{args.tag} is not an image manifest")
    manifest = read_json_blob(layout, desc["digest"])
    config = read_json_blob(layout, manifest["config"]["digest"])

    mt = layer_media_type(args.layer)
    did = diff_id(args.layer, mt)
    with open(args.layer, "rb") as f:
        digest = hash_stream(f)
    size = os.path.getsize(args.layer)
    dst = blob_path(layout, digest)
    if not os.path.exists(dst):
        shutil.copyfile(args.layer, dst + ".tmp")
        os.chmod(dst + ".tmp", 0o644)
        os.replace(dst + ".tmp", dst)

    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    rootfs.setdefault("diff_ids", []).append(did)
    hist = {"created": args.created, "created_by": args.created_by}
    config.setdefault("history", []).append(hist)
    cdigest, csize = write_blob(layout, canonical(config))

    manifest["config"] = {"mediaType": manifest["config"].get("mediaType", MT_CONFIG), "digest": cdigest,
                          "size": csize}
    manifest.setdefault("layers", []).append({"mediaType": mt, "digest": digest, "size": size})
    out = {"schemaVersion": 2, "mediaType": MT_MANIFEST}
    for k, v in manifest.items():
        if k not in out:
            out[k] = v
    mdigest, msize = write_blob(layout, canonical(out))
    newdesc = {"mediaType": MT_MANIFEST, "digest": mdigest, "size": msize}
    if "platform" in desc:
        newdesc["platform"] = desc["platform"]
    set_tag(layout, args.new_tag or args.tag, newdesc)
    print(f"{layout}:{args.new_tag or args.tag} {mdigest} (+layer {digest} diffID {did} {mt})")


def copy_blob(src, dst, digest):
    d = blob_path(dst, digest)
    if os.path.exists(d):
        return
    os.makedirs(os.path.dirname(d), exist_ok=True)
    shutil.copyfile(blob_path(src, digest), d + ".tmp")
    os.chmod(d + ".tmp", 0o644)
    os.replace(d + ".tmp", d)


def make_index(args):
    layout = args.layout
    init_layout(layout)
    entries = []
    for spec in args.images:
        ref, _, plat = spec.rpartition("=")
        src, _, stag = ref.rpartition(":")
        parts = plat.split("/")
        if not src or not stag or len(parts) not in (2, 3):
            die(f"bad image spec {spec!r} (want SRC_LAYOUT:TAG=OS/ARCH[/VARIANT])")
        platform = {"architecture": parts[1], "os": parts[0]}
        if len(parts) == 3:
            platform["variant"] = parts[2]
        sindex = load_index(src)
        if sindex is None:
            die(f"{src}: no index.json")
        _, desc = find_tag(sindex, stag)
        if desc is None:
            die(f"{src}: no tag {stag}")
        manifest = read_json_blob(src, desc["digest"])
        config = read_json_blob(src, manifest["config"]["digest"])
        for layer in manifest.get("layers", []):
            copy_blob(src, layout, layer["digest"])
        copy_blob(src, layout, manifest["config"]["digest"])
        copy_blob(src, layout, desc["digest"])
        mdigest, msize = desc["digest"], desc["size"]
        if (config.get("os"), config.get("architecture"), config.get("variant")) != \
                (platform["os"], platform["architecture"], platform.get("variant")):
            c = {}
            for k, v in config.items():
                if k == "variant":
                    continue
                c[k] = v
                if k == "architecture":
                    c["architecture"] = platform["architecture"]
                    if "variant" in platform:
                        c["variant"] = platform["variant"]
            c["os"] = platform["os"]
            cdigest, csize = write_blob(layout, canonical(c))
            m = dict(manifest)
            m["config"] = {"mediaType": manifest["config"].get("mediaType", MT_CONFIG), "digest": cdigest,
                           "size": csize}
            mdigest, msize = write_blob(layout, canonical(m))
        entries.append({"mediaType": MT_MANIFEST, "digest": mdigest, "size": msize, "platform": platform})
    idx = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}
    digest, size = write_blob(layout, canonical(idx))
    set_tag(layout, args.tag, {"mediaType": MT_INDEX, "digest": digest, "size": size})
    print(f"{layout}:{args.tag} {digest} (index of {len(entries)})")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--index":
        p = argparse.ArgumentParser(prog="oci-add-layer.py --index")
        p.add_argument("--index", action="store_true")
        p.add_argument("layout")
        p.add_argument("tag")
        p.add_argument("images", nargs="+", metavar="SRC_LAYOUT:SRC_TAG=OS/ARCH[/VARIANT]")
        make_index(p.parse_args())
        return
    p = argparse.ArgumentParser(prog="oci-add-layer.py")
    p.add_argument("layout")
    p.add_argument("tag")
    p.add_argument("layer")
    p.add_argument("--tag", dest="new_tag", help="tag the result NEWTAG instead of moving TAG")
    p.add_argument("--created-by", default="berth scripts/oci-add-layer.py")
    p.add_argument("--created", default=DEFAULT_CREATED)
    add_layer(p.parse_args())


if __name__ == "__main__":
    main()
