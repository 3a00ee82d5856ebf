#!/bin/bash
# oci-image.sh ROOTFS OUT.tar [NAME]: builds, offline, a one-layer OCI image archive (oci-layout, index.json,
# blobs/sha256/{layer,config,manifest}) from the directory ROOTFS, for `ctr image import` and
# `podman load -i`. NAME defaults to docker.io/library/berth-busybox:latest; index.json carries it both as
# io.containerd.image.name (containerd) and org.opencontainers.image.ref.name (podman, skopeo).
# The layer is an uncompressed tar (application/vnd.oci.image.layer.v1.tar), owned by root, mtimes kept.
set -euo pipefail
rootfs=${1:?usage: oci-image.sh ROOTFS OUT.tar [NAME]}
out=${2:?usage: oci-image.sh ROOTFS OUT.tar [NAME]}
name=${3:-docker.io/library/berth-busybox:latest}
[[ -d $rootfs ]] || { echo "oci-image: $rootfs is not a directory" >&2; exit 1; }

tmp=$(mktemp -d /tmp/berth-oci.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
blobs=$tmp/blobs/sha256
mkdir -p "$blobs"

# blob FILE: moves FILE into blobs/ under its digest, prints "DIGEST SIZE"
blob() {
    local d s
    d=$(sha256sum "$1" | cut -d' ' -f1)
    s=$(stat -c %s "$1")
    mv -f "$1" "$blobs/$d"
    echo "sha256:$d $s"
}

tar --numeric-owner --owner=0 --group=0 --sort=name -C "$rootfs" -cf "$tmp/layer" .
read -r layer layer_size < <(blob "$tmp/layer")

cat >"$tmp/config" <<EOF
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["$layer"]},"history":[{"created_by":"berth scripts/oci-image.sh"}]}
EOF
read -r config config_size < <(blob "$tmp/config")

cat >"$tmp/manifest" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$config","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$layer","size":$layer_size}]}
EOF
read -r manifest manifest_size < <(blob "$tmp/manifest")

cat >"$tmp/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$manifest","size":$manifest_size,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"$name"}}]}
EOF
echo '{"imageLayoutVersion":"1.0.0"}' >"$tmp/oci-layout"

tar --numeric-owner --owner=0 --group=0 -C "$tmp" -cf "$out.tmp" oci-layout index.json blobs
mv -f "$out.tmp" "$out"
