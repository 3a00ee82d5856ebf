#!/bin/bash
# push-fixtures.sh REGISTRY_HOSTPORT IMAGES_DIR [NAME...]: pushes the OCI layouts of IMAGES_DIR
# (scripts/image-fixtures.sh) to a plain-HTTP registry (scripts/registry.sh): every tag of IMAGES_DIR/NAME
# goes to docker://REGISTRY_HOSTPORT/NAME:TAG, with `skopeo copy --preserve-digests` so the registry serves the
# very manifests, configs and blobs the layouts hold (EXPECTED.json's digests); an image index is copied with
# --all. NAMEs default to every layout in IMAGES_DIR. Env: REGISTRY_CREDS=USER:PASS for a registry started
# with --htpasswd; PUSH_PREFIX (e.g. "berth/") goes before NAME.
set -euo pipefail
reg=${1:?usage: push-fixtures.sh REGISTRY_HOSTPORT IMAGES_DIR [NAME...]}
images=${2:?usage: push-fixtures.sh REGISTRY_HOSTPORT IMAGES_DIR [NAME...]}
shift 2
command -v skopeo >/dev/null || { echo "push-fixtures: skopeo missing (scripts/install-deps.sh)" >&2; exit 1; }
[[ -f $images/EXPECTED.json ]] || { echo "push-fixtures: $images has no EXPECTED.json (scripts/image-fixtures.sh)" >&2; exit 1; }
names=("$@")
if ((${#names[@]} == 0)); then
    for d in "$images"/*/; do
        [[ -f $d/index.json ]] && names+=("$(basename "$d")")
    done
fi
creds=()
[[ -n ${REGISTRY_CREDS:-} ]] && creds=(--dest-creds "$REGISTRY_CREDS")

for name in "${names[@]}"; do
    l=$images/$name
    [[ -f $l/index.json ]] || { echo "push-fixtures: $l is not an OCI layout" >&2; exit 1; }
    # TAG MEDIATYPE per line
    while read -r tag mt; do
        all=()
        [[ $mt == *index* ]] && all=(--all)
        skopeo copy -q --preserve-digests "${all[@]}" --dest-tls-verify=false "${creds[@]}" \
            "oci:$l:$tag" "docker://$reg/${PUSH_PREFIX:-}$name:$tag"
        echo "push-fixtures: $reg/${PUSH_PREFIX:-}$name:$tag" >&2
    done < <(python3 -c '
import json, sys
for d in json.load(open(sys.argv[1]))["manifests"]:
    t = d.get("annotations", {}).get("org.opencontainers.image.ref.name")
    if t:
        print(t, d.get("mediaType", "application/vnd.oci.image.manifest.v1+json"))
' "$l/index.json")
done
