#!/bin/bash
# install-deps.sh: installs, with apt, what the tests, the demo and the benches need, if missing. Fast when
# everything is there (dpkg -s only). Debian 12, as root. Never installs `busybox` (the glibc build), which
# conflicts with busybox-static. The Swift toolchain is not installed here.
set -euo pipefail
# podman's recommended helpers are listed explicitly: --no-install-recommends would leave them out, and the
# engine tests were written against podman with them (network backend, init, id mapping).
# Images: zlib, zstd and OpenSSL headers for the Swift module; registry, skopeo, umoci, zstd, htpasswd, setcap,
# curl and python3 for the image fixtures (scripts/image-fixtures.sh), the test registry and bench/pull.
pkgs=(libsqlite3-dev tini busybox-static runc crun libseccomp-dev hyperfine gcc libc6-dev make jq time util-linux procps containerd podman
      conmon netavark aardvark-dns containernetworking-plugins slirp4netns catatonit uidmap fuse-overlayfs
      docker-registry skopeo umoci apache2-utils libzstd-dev zstd zlib1g-dev libssl-dev libcap2-bin curl python3 python3-cryptography)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root (sudo make ...)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
