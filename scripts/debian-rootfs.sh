#!/bin/bash
# debian-rootfs.sh [CACHE]: a minimal Debian 12 rootfs in CACHE/debian (default fixtures/cache), made once with
# debootstrap from the configured Debian mirror, plus the probe at /probe. Optional: no default test uses it.
# Exits 0 with a note when debootstrap is not installed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$repo/fixtures/cache}
dest=$cache/debian
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if ! command -v debootstrap >/dev/null; then
    echo "debian-rootfs: debootstrap not installed (apt-get install debootstrap); skipping" >&2
    exit 0
fi
if [[ -x $dest/bin/sh && -f $dest/.complete ]]; then
    exit 0
fi
"$repo/scripts/fixtures.sh" "$cache" >/dev/null
rm -rf "$dest.tmp"
debootstrap --variant=minbase bookworm "$dest.tmp" "$mirror"
install -m 0755 "$cache/probe" "$dest.tmp/probe"
touch "$dest.tmp/.complete"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "debian-rootfs: ready in $dest"
