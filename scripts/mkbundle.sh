#!/bin/bash
# mkbundle.sh DEST [ARGS...]: makes an OCI bundle: DEST/config.json (a `runc spec`-like template written here,
# with process.args = ARGS, default "/probe true", and terminal false) and DEST/rootfs (a copy of the cached
# fixture rootfs). The cache is $BERTH_FIXTURES or fixtures/cache; it is built first if missing.
# Env: BUNDLE_HOSTNAME (default berth), BUNDLE_READONLY (true|false, default true),
#      BUNDLE_CGROUPS_PATH (default none: the runtime picks one).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
    echo "usage: $0 DEST [ARGS...]" >&2
    exit 2
fi
dest=$1
shift
(($# > 0)) || set -- /probe true
cache=${BERTH_FIXTURES:-$repo/fixtures/cache}
[[ -x $cache/rootfs/probe ]] || "$repo/scripts/fixtures.sh" "$cache" >&2

json_string() { # $1 -> a JSON string literal
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}
args=""
for a in "$@"; do
    args+="${args:+, }$(json_string "$a")"
done
cgroups=""
if [[ -n ${BUNDLE_CGROUPS_PATH:-} ]]; then
    cgroups="\"cgroupsPath\": $(json_string "$BUNDLE_CGROUPS_PATH"),"
fi

mkdir -p "$dest"
rm -rf "$dest/rootfs"
cp -a "$cache/rootfs" "$dest/rootfs"
cat >"$dest/config.json.tmp" <<JSON
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": [ $args ],
    "env": [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" ],
    "cwd": "/",
    "capabilities": {
      "bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "ambient": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
    },
    "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": ${BUNDLE_READONLY:-true} },
  "hostname": $(json_string "${BUNDLE_HOSTNAME:-berth}"),
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": [ "nosuid", "noexec", "nodev" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
  ],
  "linux": {
    $cgroups
    "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
    "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ],
    "maskedPaths": [ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                     "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi" ],
    "readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
  }
}
JSON
mv -f "$dest/config.json.tmp" "$dest/config.json"
