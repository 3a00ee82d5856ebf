#!/bin/bash
# registry.sh start DIR [--htpasswd USER:PASS] | stop DIR
#   start: runs Debian's `docker-registry serve` (distribution 2.8) on 127.0.0.1 on a free port, plain HTTP,
#          config, storage and log in DIR (created; must not hold a running registry), detached (setsid).
#          Writes DIR/port, DIR/pid and DIR/config.yml; prints HOST:PORT on stdout once GET /v2/ answers
#          (200, or 401 with --htpasswd: basic auth, bcrypt htpasswd file DIR/htpasswd, realm "berth").
#          On failure the registry is killed, DIR/log is shown and the exit status is 1.
#   stop:  kills the registry of DIR/pid (TERM, then KILL after 5 s) and removes DIR.
# Env: REGISTRY_WAIT (seconds to wait for /v2/, default 20).
set -euo pipefail
usage() { echo "usage: registry.sh start DIR [--htpasswd USER:PASS] | stop DIR" >&2; exit 2; }
cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || usage

stop() {
    local d=$1 pid
    if [[ -f $d/pid ]]; then
        pid=$(cat "$d/pid")
        # only a registry started for this DIR (its command line names DIR/config.yml)
        if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$d/config.yml"; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$d"
}

case $cmd in
stop)
    [[ -e $dir ]] || exit 0
    stop "$(cd "$dir" && pwd)"
    ;;
start)
    auth=
    if [[ ${3:-} == --htpasswd ]]; then
        auth=${4:?--htpasswd needs USER:PASS}
        [[ $auth == *:* ]] || usage
    elif [[ -n ${3:-} ]]; then
        usage
    fi
    command -v docker-registry >/dev/null || { echo "registry: docker-registry missing (scripts/install-deps.sh)" >&2; exit 1; }
    command -v curl >/dev/null || { echo "registry: curl missing" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -f $dir/pid ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        echo "registry: $dir already has a running registry (pid $(cat "$dir/pid"))" >&2
        exit 1
    fi
    mkdir -p "$dir/storage"
    ok=
    trap '[[ -n $ok ]] || stop "$dir"' EXIT
    auth_yaml=
    if [[ -n $auth ]]; then
        command -v htpasswd >/dev/null || { echo "registry: htpasswd missing (apache2-utils)" >&2; exit 1; }
        htpasswd -Bbn "${auth%%:*}" "${auth#*:}" >"$dir/htpasswd"
        auth_yaml="auth:
  htpasswd:
    realm: berth
    path: $dir/htpasswd"
    fi
    for attempt in 1 2 3; do
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$port
  secret: berth-test-registry
  headers:
    X-Content-Type-Options: [nosniff]
$auth_yaml
EOF
        setsid docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$dir/pid"
        echo "$port" >"$dir/port"
        code=
        for _ in $(seq $((${REGISTRY_WAIT:-20} * 20))); do
            kill -0 "$pid" 2>/dev/null || break
            code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" 2>/dev/null) || code=
            [[ $code == 200 || $code == 401 ]] && break
            sleep 0.05
        done
        if [[ $code == 200 || $code == 401 ]]; then
            ok=1
            echo "127.0.0.1:$port"
            exit 0
        fi
        kill -9 "$pid" 2>/dev/null || true
        # the port may have been taken between the probe and the bind: try another
        grep -q "address already in use" "$dir/log" || break
    done
    echo "registry: docker-registry did not answer on 127.0.0.1:$port:" >&2
    tail -20 "$dir/log" >&2
    exit 1
    ;;
*)
    usage
    ;;
esac
