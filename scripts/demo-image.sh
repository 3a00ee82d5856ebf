#!/bin/bash
# demo-image.sh BERTH_IMAGE BERTH_RUNTIME [ARGS...]: the image path end to end, offline. Starts a local
# docker-registry, pushes the busybox image built from Debian's busybox-static (scripts/image-fixtures.sh),
# pulls it with berth-image into a scratch store, mounts a container snapshot of it as a bundle's rootfs and
# runs ARGS (default: echo hello from a pulled image) in it with berth-runtime. Everything it starts or
# mounts is removed on exit, also on failure.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
image_tool=${1:?usage: demo-image.sh BERTH_IMAGE BERTH_RUNTIME [ARGS...]}
runtime=${2:?usage: demo-image.sh BERTH_IMAGE BERTH_RUNTIME [ARGS...]}
shift 2
(($# > 0)) || set -- echo hello from a pulled image
fixtures=${BERTH_FIXTURES:-$repo/fixtures/cache}
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
id=demo-$$

cleanup() {
    "$runtime" --root "$work/runtime" delete --force "$id" >/dev/null 2>&1 || true
    umount -l "$work/bundle/rootfs" 2>/dev/null || true
    "$repo/scripts/registry.sh" stop "$work/registry" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

host=$("$repo/scripts/registry.sh" start "$work/registry")
"$repo/scripts/push-fixtures.sh" "$host" "$fixtures/images" busybox >/dev/null
"$image_tool" --root "$work/store" pull "$host/busybox"
mounts=$("$image_tool" --root "$work/store" prepare "$id" "$host/busybox")
BERTH_FIXTURES=$fixtures BUNDLE_READONLY=false "$repo/scripts/mkbundle.sh" "$work/bundle" "$@"
rm -rf "$work/bundle/rootfs"
mkdir "$work/bundle/rootfs"
type=$(jq -r '.[0].type' <<<"$mounts")
if [[ $type == overlay ]]; then
    mount -t overlay overlay -o "$(jq -r '.[0].options | join(",")' <<<"$mounts")" "$work/bundle/rootfs"
else
    mount --bind "$(jq -r '.[0].source' <<<"$mounts")" "$work/bundle/rootfs"
fi
cd "$work/bundle"
"$runtime" --root "$work/runtime" run "$id"
