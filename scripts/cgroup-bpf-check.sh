#!/bin/bash
# Checks the cgroup v2 device filter (Sources/CLinux/cgroup_bpf.c) on the real kernel, as root: builds a
# small C driver against it, attaches rule sets to a scratch cgroup2 directory of its own, and opens
# devices from a child placed in it. Works on a v2-only host and on a hybrid host's /sys/fs/cgroup/unified.
# Prints PASS/FAIL lines; exits non-zero on a failure. Usage: sudo scripts/cgroup-bpf-check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root"; exit 1; }
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then base=/sys/fs/cgroup; else base=/sys/fs/cgroup/unified; fi
[ -f "$base/cgroup.procs" ] || { echo "SKIP: no cgroup2 mount"; exit 0; }
[ -e /dev/loop-control ] || { echo "SKIP: no /dev/loop-control"; exit 0; }
work=$(mktemp -d)
cg="$base/berth-bpf-check-$$"
trap 'rmdir "$cg" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/t.c" <<'C'
#include "cgroup_bpf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
static const char *cg; static int failed;
static int try_open(const char *p, int flags) { int fd = open(p, flags); if (fd < 0) return errno; close(fd); return 0; }
// expected: 0 opens, else the errno (EPERM)
static void check(const char *label, int null_rw, int loop_r, int zero_w) {
    pid_t c = fork();
    if (c == 0) {
        char path[512], b[32]; snprintf(path, sizeof path, "%s/cgroup.procs", cg); snprintf(b, sizeof b, "%d", getpid());
        int fd = open(path, O_WRONLY); if (fd < 0 || write(fd, b, strlen(b)) < 0) _exit(2); close(fd);
        int a = try_open("/dev/null", O_RDWR), l = try_open("/dev/loop-control", O_RDONLY), z = try_open("/dev/zero", O_WRONLY);
        _exit(a == null_rw && l == loop_r && z == zero_w ? 0 : 1);
    }
    int st; waitpid(c, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("%s: %s\n", ok ? "PASS" : "FAIL", label); failed |= !ok;
}
static void attach(int d, const struct bl_dev_rule *r, int n, int def) {
    char log[8192];
    if (bl_cgroup_devices_attach(d, r, n, def, log, sizeof log) != 0) { printf("FAIL: attach: %s %s\n", strerror(errno), log); failed = 1; }
}
int main(int argc, char **argv) {
    cg = argv[1];
    if (mkdir(cg, 0755) != 0) { perror("mkdir"); return 1; }
    int d = open(cg, O_RDONLY | O_DIRECTORY);
    struct bl_dev_rule r1[] = { {1, 'c', 1, 3, 7}, {1, 'c', 1, 5, 2} };
    attach(d, r1, 2, 0); check("deny all; allow c 1:3 rwm, c 1:5 r", 0, EPERM, EPERM);
    struct bl_dev_rule r2[] = { {0, 'c', 10, 237, 7} };
    attach(d, r2, 1, 1); check("update replaces: allow all; deny c 10:237", 0, EPERM, 0);
    struct bl_dev_rule r3[] = { {1, 'a', -1, -1, 7}, {0, 'c', 1, -1, 4} };
    attach(d, r3, 2, 0); check("allow a (in the list); deny c 1:* w", EPERM, 0, EPERM);
    struct bl_dev_rule r4[] = { {0, 'a', -1, -1, 7}, {1, 'b', -1, -1, 1}, {1, 'c', 10, 237, 2}, {1, 'c', 1, -1, 6} };
    attach(d, r4, 4, 1); check("deny a; allow b *:* m, c 10:237 r, c 1:* rw", 0, 0, 0);
    close(d);
    return failed;
}
C
gcc -O2 -Wall -I"$here/Sources/CLinux/include" -o "$work/t" "$work/t.c" "$here/Sources/CLinux/cgroup_bpf.c"
"$work/t" "$cg"
