#!/bin/bash
# image-fixtures.sh OUTDIR: builds, offline and deterministically, OCI image layouts for the Images tests and
# bench/pull, from the busybox-static rootfs of scripts/fixtures.sh (ROOTFS, default fixtures/cache/rootfs,
# built first if missing), with umoci, skopeo, zstd and the helpers scripts/oci-add-layer.py and
# scripts/image-fixtures.py. Every layout is an OCI image layout (oci-layout, index.json, blobs/sha256) whose
# image is tagged in index.json (org.opencontainers.image.ref.name):
#   OUTDIR/busybox      latest: 1 layer (gzip, by umoci): the rootfs; config Env PATH, Cmd ["sh"], WorkingDir /
#   OUTDIR/multi        latest: 4 layers. 1: the busybox layer. 2 (gzip, umoci repack): /data with a file, a
#                       hardlink to it, a symlink, a fifo, a setuid file, a sticky dir, a file owned 1000:1000, a
#                       file with xattr user.berth=1, one with security.capability (setcap cap_net_raw+ep, when
#                       setcap exists), paths of 128 chars (ustar prefix) and >255 chars and a 150-char name
#                       (PAX path), a symlink with a 157-char target (PAX linkpath), a UTF-8 name with a space,
#                       /data/gone/ and /data/opq/{a,b}. 3 (gzip, by hand: umoci never writes opaque
#                       whiteouts): whiteouts of /etc/hostname (layer 1), /data/symlink and the directory
#                       /data/gone (layer 2), /data/opq made opaque with a new c (the marker comes after c in
#                       the tar), and /data/gnu/ with a 129-char path and a 123-char symlink target in GNU
#                       ././@LongLink records (L, K) instead of PAX. 4 (zstd): /zstd/hello.txt, /zstd/owned (1000:1000, 0600), and /data/dir, an
#                       empty directory in layer 2, becomes a regular file.
#   OUTDIR/index        latest: an image index with linux/amd64, linux/arm64 and linux/arm/v7; each is the
#                       busybox layer plus a layer with /etc/berth-platform naming its platform, and a config
#                       with that architecture (and variant)
#   OUTDIR/bench-small  latest: 6 gzip layers, ~27 MB: the busybox layer, then generated ones under
#                       /opt/benchN (seeded random: about half incompressible data, half text and low-entropy
#                       binary, incl. one layer of 2000 small files)
#   OUTDIR/bench-large  latest: 8 gzip layers, ~54 MB, the same kinds of content
#   OUTDIR/EXPECTED.json  what tests can check, per image and tag:
#       {"version": V, "images": {NAME: {"layout": NAME, "tags": {TAG: IMAGE | INDEX}}}}
#       IMAGE = {"mediaType", "digest", "size" (the manifest), "config": {"digest", "size"},
#                "platform": {"os", "architecture"[, "variant"]}, "cmd", "env", "workingDir",
#                "layers": [{"mediaType", "digest", "size", "diffID"}], "entries": number of paths in the
#                unpacked rootfs (root excluded),
#                "files": [{"path", "type": file|dir|symlink|fifo, "mode": "4755" (octal, no type bits;
#                           absent for symlinks), "uid", "gid", "size" and "sha256" (files),
#                           "target" (symlinks), "linkedTo": [other paths of the same inode] (hardlinks),
#                           "xattrs": {name: hex of the value}}],
#                "absent": [paths that must not exist after unpacking]}
#       INDEX = {"mediaType", "digest", "size", "manifests": [IMAGE + "platformString": "linux/arm/v7"]}
# The model behind "files", "entries" and "absent" is scripts/image-fixtures.py's own layer applier, checked
# here against `umoci unpack` of every image (multi's zstd layer through an uncompressed twin: umoci 0.4.7
# has no zstd). Each layout is also checked with `umoci stat` and `skopeo inspect`.
# Root only (ownership, fifo, setcap). Idempotent: nothing is done when OUTDIR/.done holds the current
# version (a hash of these scripts, the tools' versions and the rootfs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: image-fixtures.sh OUTDIR}
rootfs=${ROOTFS:-$repo/fixtures/cache/rootfs}
py=$repo/scripts/image-fixtures.py
addlayer=$repo/scripts/oci-add-layer.py
created=2000-01-01T00:00:00Z
epoch=946684800
path_env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

[[ $(id -u) == 0 ]] || { echo "image-fixtures: must run as root" >&2; exit 1; }
for tool in umoci skopeo zstd python3 sha256sum; do
    command -v "$tool" >/dev/null || { echo "image-fixtures: $tool missing (scripts/install-deps.sh)" >&2; exit 1; }
done
if [[ ! -x $rootfs/bin/busybox ]]; then
    [[ -z ${ROOTFS:-} ]] || { echo "image-fixtures: no rootfs at $rootfs" >&2; exit 1; }
    "$repo/scripts/fixtures.sh" "$repo/fixtures/cache"
fi

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
version=$({
    echo image-fixtures-v1
    cat "$0" "$py" "$addlayer"
    umoci --version
    skopeo --version
    zstd --version
    tar --sort=name --numeric-owner --mtime=@0 -C "$rootfs" -cf - . | sha256sum
} | sha256sum | cut -c1-16)
if [[ -f $out/.done && $(cat "$out/.done") == "$version" ]]; then
    exit 0
fi

tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
new=$tmp/out
work=$tmp/work
mkdir -p "$new" "$work"

# fixtime DIR: every mtime under DIR (and DIR) to $epoch, so umoci's layers do not depend on when we ran
fixtime() { find "$1" -exec touch -h -d "@$epoch" {} +; }

# base LAYOUT: the one-layer busybox image, tagged latest
base() {
    local l=$1 b=$work/bundle-$(basename "$1")
    umoci init --layout "$l"
    umoci new --image "$l:latest"
    umoci unpack --image "$l:latest" "$b"
    cp -a "$rootfs/." "$b/rootfs/"
    fixtime "$b/rootfs"
    umoci repack --history.created "$created" --history.created_by "berth image-fixtures: busybox-static rootfs" \
        --image "$l:latest" "$b"
    umoci config --image "$l:latest" --no-history --created "$created" --config.env "$path_env" \
        --config.cmd sh --config.workingdir /
    rm -rf "$b"
}

# config_fix LAYOUT: the config of LAYOUT:latest gets the fixed created time, Env, Cmd and WorkingDir
config_fix() {
    umoci config --image "$1:latest" --no-history --created "$created" --config.env "$path_env" \
        --config.cmd sh --config.workingdir /
    umoci gc --layout "$1"
}

layer_blob() { # LAYOUT INDEX -> path of that layer's blob of LAYOUT:latest
    python3 - "$1" "$2" <<'P'
import json, os, sys
l, n = sys.argv[1], int(sys.argv[2])
idx = json.load(open(os.path.join(l, "index.json")))
d = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"][0]
man = json.load(open(os.path.join(l, "blobs", *d["digest"].split(":"))))
print(os.path.join(l, "blobs", *man["layers"][n]["digest"].split(":")))
P
}

echo "image-fixtures: busybox" >&2
base "$new/busybox"
umoci gc --layout "$new/busybox"

echo "image-fixtures: multi" >&2
l=$new/multi
base "$l"
b=$work/bundle-multi
umoci unpack --image "$l:latest" "$b"
r=$b/rootfs
mkdir -p "$r/data"/{dir,opq,gone/sub}
echo one >"$r/data/file"
ln "$r/data/file" "$r/data/hardlink"
ln -s file "$r/data/symlink"
mkfifo -m 0644 "$r/data/fifo"
echo setuid >"$r/data/suid"
chmod 4755 "$r/data/suid"
mkdir -m 1777 "$r/data/sticky"
echo owned >"$r/data/owned"
chown 1000:1000 "$r/data/owned"
chmod 0640 "$r/data/owned"
echo xattr >"$r/data/xattr"
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.berth", b"1")' "$r/data/xattr"
printf '#!/bin/sh\necho cap\n' >"$r/data/cap"
chmod 0755 "$r/data/cap"
if command -v setcap >/dev/null; then
    setcap cap_net_raw+ep "$r/data/cap"
else
    echo "image-fixtures: no setcap (libcap2-bin): /data/cap has no security.capability" >&2
fi
deep=$r/data/$(printf 'd%.0s' {1..60})/$(printf 'e%.0s' {1..60})
mkdir -p "$deep"
echo deep >"$deep/f"
deeper=$r/data/deep
for i in 1 2 3 4 5 6 7 8 9 10; do deeper=$deeper/$(printf "%02d" $i)$(printf 'x%.0s' {1..28}); done
mkdir -p "$deeper"
echo deeper >"$deeper/file"
echo long-name >"$r/data/$(printf 'n%.0s' {1..150})"
ln -s "/$(printf 'long/%.0s' {1..30})target" "$r/data/longlink"
echo unicode >"$r/data/ünïcode file"
echo a >"$r/data/opq/a"
echo b >"$r/data/opq/b"
echo gone >"$r/data/gone/file"
echo gone >"$r/data/gone/sub/x"
fixtime "$r"
umoci repack --history.created "$created" --history.created_by "berth image-fixtures: layer 2 (umoci)" \
    --image "$l:latest" "$b"
rm -rf "$b"
python3 "$py" multi-layer3 "$work/multi-3.tar.gz"
python3 "$addlayer" "$l" latest "$work/multi-3.tar.gz" --created-by "berth image-fixtures: layer 3 (whiteouts)" >/dev/null
python3 "$py" multi-layer4 "$work/multi-4.tar"
zstd -q -3 "$work/multi-4.tar" -o "$work/multi-4.tar.zst"
config_fix "$l"
# the twin with layer 4 uncompressed, for umoci unpack
cp -a "$l" "$work/multi-twin"
python3 "$addlayer" "$l" latest "$work/multi-4.tar.zst" --created-by "berth image-fixtures: layer 4 (zstd)" >/dev/null
python3 "$addlayer" "$work/multi-twin" latest "$work/multi-4.tar" --created-by "berth image-fixtures: layer 4 (zstd)" >/dev/null
umoci gc --layout "$l"

echo "image-fixtures: index" >&2
s=$work/platforms
cp -a "$new/busybox" "$s"
specs=()
for p in linux/amd64 linux/arm64 linux/arm/v7; do
    t=${p//\//-}
    python3 "$py" platform-layer "$work/$t.tar.gz" "$p"
    python3 "$addlayer" "$s" latest "$work/$t.tar.gz" --tag "$t" --created-by "berth image-fixtures: $p" >/dev/null
    specs+=("$s:$t=$p")
done
python3 "$addlayer" --index "$new/index" latest "${specs[@]}" >/dev/null

for size in small large; do
    echo "image-fixtures: bench-$size" >&2
    l=$new/bench-$size
    umoci init --layout "$l"
    umoci new --image "$l:latest"
    cp "$(layer_blob "$new/busybox" 0)" "$work/bench-$size-01.tar.gz"
    python3 "$addlayer" "$l" latest "$work/bench-$size-01.tar.gz" --created-by "berth image-fixtures: busybox-static rootfs" >/dev/null
    python3 "$py" bench-layers "$size" "$work/bench-$size"
    for f in "$work/bench-$size"/*.tar.gz; do
        python3 "$addlayer" "$l" latest "$f" --created-by "berth image-fixtures: bench layer $(basename "$f" .tar.gz)" >/dev/null
    done
    config_fix "$l"
done

echo "image-fixtures: checking" >&2
for name in busybox multi bench-small bench-large; do
    umoci stat --image "$new/$name:latest" >/dev/null
    skopeo inspect "oci:$new/$name:latest" >/dev/null
    src=$new/$name
    [[ $name == multi ]] && src=$work/multi-twin
    umoci unpack --image "$src:latest" "$work/unpacked-$name" >/dev/null
    python3 "$py" verify "$new/$name" latest "$work/unpacked-$name/rootfs" >&2
    rm -rf "$work/unpacked-$name"
done
for arch in amd64 arm64 arm; do
    got=$(skopeo --override-arch "$arch" inspect "oci:$new/index:latest" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Architecture"])')
    [[ $got == "$arch" ]] || { echo "image-fixtures: index: asked for $arch, skopeo chose $got" >&2; exit 1; }
done
skopeo copy -q --all --preserve-digests "oci:$new/index:latest" "oci:$work/index-copy:latest"

python3 "$py" expected "$new" "$version"
chmod -R a+rX "$new"
echo "$version" >"$new/.done"
rm -rf "$out"
mv "$new" "$out"
echo "image-fixtures: images ready in $out ($version)" >&2
