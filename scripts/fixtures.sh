#!/bin/bash
# fixtures.sh [CACHE]: builds the test fixtures offline into CACHE (default fixtures/cache, gitignored):
#   CACHE/probe    static probe (tests/probe/probe.c), rebuilt when the source is newer
#   CACHE/rootfs/  busybox-static rootfs: /bin/busybox + applet links, /etc/passwd and /etc/group
#                  (root, nobody/nogroup 65534), /tmp, /proc, /sys, /dev, and the probe at /probe
# Needs gcc, libc6-dev and busybox-static (scripts/install-deps.sh). Idempotent; rebuilds the rootfs when
# the probe or this script changed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$repo/fixtures/cache}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
busybox=${BUSYBOX:-/bin/busybox}

probe=$cache/probe
src=$repo/tests/probe/probe.c
if [[ ! -x $probe || $src -nt $probe ]]; then
    gcc -static -O2 -Wall -Wextra -o "$probe.tmp" "$src"
    mv -f "$probe.tmp" "$probe"
fi

rootfs=$cache/rootfs
stamp=$cache/.rootfs-stamp
if [[ -f $stamp && $stamp -nt $probe && $stamp -nt $0 && -x $rootfs/bin/busybox ]]; then
    exit 0
fi

if ! file_out=$("$busybox" --list-full 2>/dev/null) || [[ -z $file_out ]]; then
    echo "fixtures: $busybox is not a working busybox (install busybox-static)" >&2
    exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
    echo "fixtures: $busybox is dynamically linked; need busybox-static" >&2
    exit 1
fi

tmp=$(mktemp -d "$cache/.rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
r=$tmp/rootfs
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,run,mnt,var/tmp,home}
chmod 1777 "$r/tmp" "$r/var/tmp"
chmod 0700 "$r/root"
install -m 0755 "$busybox" "$r/bin/busybox"
while read -r applet; do
    [[ $applet == bin/busybox ]] && continue
    dir=$(dirname "$applet")
    mkdir -p "$r/$dir"
    # relative links, so the rootfs works wherever it is copied
    rel=$(realpath -m -s --relative-to="/$dir" /bin/busybox)
    ln -sf "$rel" "$r/$applet"
done <<<"$file_out"
[[ -e $r/bin/sh ]] || ln -s busybox "$r/bin/sh"
cat >"$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$r/etc/group" <<'G'
root:x:0:
tty:x:5:
nogroup:x:65534:
G
echo berth >"$r/etc/hostname"
: >"$r/etc/hosts"
: >"$r/etc/resolv.conf"
install -m 0755 "$probe" "$r/probe"

rm -rf "$rootfs.old"
[[ -d $rootfs ]] && mv "$rootfs" "$rootfs.old"
mv "$r" "$rootfs"
rm -rf "$rootfs.old"
touch "$stamp"
echo "fixtures: rootfs ready in $rootfs"
