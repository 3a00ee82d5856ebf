#!/bin/bash
# cgroup-v2-vm.sh: tests berth-runtime's cgroup v2 driver on a real v2-only kernel, under QEMU (TCG, no KVM).
#
# Boots Debian's kernel (/boot/vmlinuz-*) with cgroup_no_v1=all and an initramfs that holds busybox-static,
# the static berth-runtime, the fixture rootfs (/bundle-rootfs, read-only, shared by every bundle) and
# bundles generated here from `berth-runtime spec`. In the VM, /init copies itself to a tmpfs and
# switch_roots to it (pivot_root cannot leave the initramfs), busybox init reaps orphans, and /etc/rc mounts
# cgroup2 at /sys/fs/cgroup, enables the controllers and runs /tests.sh, which drives berth-runtime and
# checks the cgroup files from the VM's side. Each check prints `PASS name` or `FAIL name: why`; the last
# line is `N passed, N failed`. The VM powers itself off; a hard timeout bounds it.
#
# Usage: sudo scripts/cgroup-v2-vm.sh        (exit 0: all passed)
# Env: BERTH_RUNTIME=PATH  use this static runtime instead of `make runtime`
#      KERNEL=PATH         kernel image (default: the newest /boot/vmlinuz-*)
#      VM_TIMEOUT=600      seconds for the whole VM run
#      KEEP=1              keep the work directory (initramfs, serial log)
# Needs root (apt-get, mknod /dev/console in the initramfs tree). Never touches the host's cgroups.
# No kernel modules go into the initramfs: Debian's kernel has cgroups, namespaces, BPF and devtmpfs built in.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
start_s=$(date +%s)
[[ $(id -u) == 0 ]] || { echo "cgroup-v2-vm: needs root" >&2; exit 2; }

# ---- 1. host packages
need_pkgs=()
ls /boot/vmlinuz-* >/dev/null 2>&1 || need_pkgs+=(linux-image-amd64)
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
{ [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; } || need_pkgs+=(busybox-static)
command -v cpio >/dev/null || need_pkgs+=(cpio)
if ((${#need_pkgs[@]})); then
    echo "cgroup-v2-vm: installing ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2 \
        || { apt-get update >&2 && apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2; }
fi
kernel=${KERNEL:-$(ls -1 /boot/vmlinuz-* | sort -V | tail -n 1)}
[[ -r $kernel ]] || { echo "cgroup-v2-vm: no kernel image ($kernel)" >&2; exit 2; }

# ---- 2. runtime and fixtures
if [[ -n ${BERTH_RUNTIME:-} ]]; then
    runtime=$BERTH_RUNTIME
else
    make -s runtime >&2
    runtime=$repo/.build-static/release/berth-runtime
fi
[[ -x $runtime ]] || { echo "cgroup-v2-vm: no runtime at $runtime" >&2; exit 2; }
if ldd "$runtime" >/dev/null 2>&1; then echo "cgroup-v2-vm: $runtime is not static" >&2; exit 2; fi
make -s fixtures >&2
fixtures=$repo/fixtures/cache
build_s=$(date +%s)

work=$(mktemp -d /tmp/berth-cgv2-vm.XXXXXX)
cleanup() { if [[ ${KEEP:-0} == 1 ]]; then echo "cgroup-v2-vm: kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,run,tmp,newroot,bundles}

# ---- 3. initramfs tree: busybox, runtime, rootfs, probe
install -m 0755 /bin/busybox "$root/bin/busybox"
while read -r applet; do
    [[ $applet == bin/busybox ]] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
done < <(/bin/busybox --list-full)
ln -sf /bin/busybox "$root/bin/sh"
install -m 0755 "$runtime" "$root/berth-runtime"
cp -a "$fixtures/rootfs" "$root/bundle-rootfs"
install -m 0755 "$fixtures/probe" "$root/probe"
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3

# ---- 4. bundles, from the runtime's own `spec` template
"$runtime" spec --bundle "$work"
python3 - "$work/config.json" "$root/bundles" <<'PY'
import copy, json, os, sys
base = json.load(open(sys.argv[1]))
out = sys.argv[2]
base["process"]["terminal"] = False
base["root"] = {"path": "/bundle-rootfs", "readonly": True}
base["hostname"] = "berth-vm"
M = 1024 * 1024
DEV_SCRIPT = r'''
t() { if out=$( { eval "$2"; } 2>&1 ); then echo "$1=ok"; else echo "$1=err:$out"; fi; }
t null-c '[ -c /dev/null ]'
t null-rw 'echo x > /dev/null && : < /dev/null'
t zero-r 'head -c 4 /dev/zero > /dev/null'
t mknod-c 'mknod /dev/kmsg2 c 1 11 && mknod /dev/x240 c 240 0'
t kmsg-w ': > /dev/kmsg2'
t x240-r ': < /dev/x240'
t x240-w ': > /dev/x240'
t mknod-b 'mknod /dev/loop9 b 7 9'
t loop-r ': < /dev/loop9'
'''
CG_SCRIPT = r'''
echo "selfcg=$(cat /proc/self/cgroup)"
echo "mnt=$(grep ' /sys/fs/cgroup ' /proc/mounts | cut -d' ' -f3,4)"
echo "memmax=$(cat /sys/fs/cgroup/memory.max)"
echo "procs=$(cat /sys/fs/cgroup/cgroup.procs | tr '\n' ',')"
echo "ctrls=$(cat /sys/fs/cgroup/cgroup.controllers)"
'''
def bundle(name, args, resources=None, cgroups_path=None, caps=(), namespaces=(), cgroup_mount=None):
    c = copy.deepcopy(base)
    c["process"]["args"] = args
    for k in caps:
        for s in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][s].append(k)
    lin = c["linux"]
    if resources is not None:
        r = copy.deepcopy(resources)
        r.setdefault("devices", base["linux"]["resources"]["devices"])
        lin["resources"] = r
    if cgroups_path:
        lin["cgroupsPath"] = cgroups_path
    for ns in namespaces:
        lin["namespaces"].append({"type": ns})
    if cgroup_mount:
        for m in c["mounts"]:
            if m["destination"] == "/sys/fs/cgroup":
                m["type"] = cgroup_mount
                m["source"] = cgroup_mount
    os.makedirs(os.path.join(out, name))
    with open(os.path.join(out, name, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
sh = lambda s: ["/bin/sh", "-c", s]
bundle("limits", ["sleep", "600"], {
    "memory": {"limit": 32 * M, "reservation": 8 * M, "swap": 32 * M},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 32}, "unified": {"memory.high": "31457280"}})
bundle("oom", sh("dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd-exit=$?; sleep 600"),
       {"memory": {"limit": 16 * M, "swap": 16 * M}})
bundle("pids", sh("i=0; while [ $i -lt 20 ]; do sleep 600 & i=$((i+1)); done; sleep 600"), {"pids": {"limit": 8}})
bundle("multi", sh("sleep 600 & sleep 600 & sleep 600 & wait"), {"pids": {"limit": 64}})
bundle("dev-default", sh(DEV_SCRIPT), caps=["CAP_MKNOD"])
bundle("dev-allow", sh(DEV_SCRIPT), {"devices": [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"},
    {"allow": True, "type": "c", "major": 240, "access": "r"}]}, caps=["CAP_MKNOD"])
bundle("dev-denyone", sh(DEV_SCRIPT), {"devices": [
    {"allow": True, "access": "rwm"},
    {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "w"},
    {"allow": False, "type": "b", "major": 7, "access": "rwm"}]}, caps=["CAP_MKNOD"])
mem32 = {"memory": {"limit": 32 * M}}
bundle("cgns", sh(CG_SCRIPT), mem32, namespaces=["cgroup"], cgroup_mount="cgroup2")
bundle("cgns-v1type", sh(CG_SCRIPT), mem32, namespaces=["cgroup"])
bundle("nocgns", sh(CG_SCRIPT), mem32, cgroup_mount="cgroup2")
bundle("nested", ["sleep", "600"], {"memory": {"limit": 32 * M}, "pids": {"limit": 16}},
       cgroups_path="/berth-vm/nested/c-nested")
bundle("io", ["sleep", "600"], {"blockIO": {"weight": 500}})
bundle("busy", sh("while :; do :; done & while :; do :; done"), {"pids": {"limit": 16}})
PY

# ---- 5. /init (stage 1), inittab, /etc/rc, /tests.sh
cat >"$root/init" <<'EOF'
#!/bin/sh
# stage 1: a tmpfs root (pivot_root refuses the initramfs), then busybox init
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t tmpfs -o mode=755 tmpfs /newroot
for e in bin sbin usr etc berth-runtime bundle-rootfs bundles probe tests.sh; do cp -a "/$e" /newroot/; done
mkdir -p /newroot/dev /newroot/proc /newroot/sys /newroot/run /newroot/tmp
mount -t devtmpfs devtmpfs /newroot/dev
exec switch_root /newroot /sbin/init
EOF
cat >"$root/etc/inittab" <<'EOF'
::sysinit:/etc/rc
::ctrlaltdel:/bin/poweroff -f
EOF
cat >"$root/etc/rc" <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in cpu memory pids io cpuset hugetlb; do
    grep -qw "$c" /sys/fs/cgroup/cgroup.controllers && echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control
done
echo "VM: kernel $(uname -r), cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
sh /tests.sh
echo "VM-EXIT $?"
poweroff -f
EOF
cat >"$root/tests.sh" <<'EOF'
#!/bin/sh
# the checks, run as root in the VM
R="timeout 60 /berth-runtime --root /run/berth"
CG=/sys/fs/cgroup
P=0; F=0
pass() { echo "PASS $1"; P=$((P+1)); }
fail() { echo "FAIL $1: $2"; F=$((F+1)); }
eq() { if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "want '$2', got '$3'"; fi; }
has() { case "$3" in *"$2"*) pass "$1" ;; *) fail "$1" "no '$2' in '$3'" ;; esac; }
rd() { cat "$1" 2>&1 | tr '\n' ' ' | sed 's/ *$//'; }
kv() { sed -n "s/^$2 //p" "$1" 2>/dev/null; }            # kv FILE KEY: the value of "KEY value"
waitfor() { n=$1; shift; while [ "$n" -gt 0 ]; do eval "$*" && return 0; sleep 0.1; n=$((n-1)); done; return 1; }
status() { $R state "$1" 2>/dev/null | tr -d ' \n\t' | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'; }
initpid() { $R state "$1" 2>/dev/null | tr -d ' \n\t' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'; }
nprocs() { wc -l <"$1/cgroup.procs" 2>/dev/null || echo -1; }
dev() { sed -n "s/^$2=//p" "$1"; }
# run -d: the container keeps the stdio it gets, so never a pipe of a $(...)
rund() { $R run -d --bundle "/bundles/$2" "$1" >"/tmp/$1.out" 2>&1; }

eq cgroup2-only "cgroup2" "$(awk '$2 == "/sys/fs/cgroup" {print $3}' /proc/mounts)"
eq no-v1-hierarchies "" "$(grep ' cgroup ' /proc/mounts)"

# --- limits written into the unified directory, update, stats, pause/resume, delete --force
c=c-limits; d=$CG/$c
if rund $c limits; then pass run-limits; else fail run-limits "$(rd /tmp/$c.out)"; fi
eq limits-status running "$(status $c)"
eq memory.max 33554432 "$(rd $d/memory.max)"
eq memory.low 8388608 "$(rd $d/memory.low)"
eq memory.swap.max 0 "$(rd $d/memory.swap.max)"
eq unified-memory.high 31457280 "$(rd $d/memory.high)"
eq pids.max 32 "$(rd $d/pids.max)"
eq cpu.max "50000 100000" "$(rd $d/cpu.max)"
eq cpu.weight-from-shares-512 20 "$(rd $d/cpu.weight)"
eq cpuset.cpus 0 "$(rd $d/cpuset.cpus)"
eq cpuset.mems 0 "$(rd $d/cpuset.mems)"
p=$(initpid $c)
if [ -n "$p" ] && grep -qx "$p" $d/cgroup.procs; then pass init-in-cgroup; else fail init-in-cgroup "pid '$p' not in $(rd $d/cgroup.procs)"; fi
eq init-proc-cgroup "0::/$c" "$(cat /proc/$p/cgroup 2>&1)"
has subtree-control-root-memory memory "$(rd $CG/cgroup.subtree_control)"
ev=$($R events --stats $c 2>&1)
has events-type '"type":"stats"' "$ev"
for k in memory pids cpu; do has "events-stats-$k" "\"$k\":{" "$ev"; done
has events-pids-limit '"limit":32' "$(echo "$ev" | grep -o '"pids":{[^}]*}')"
has events-pids-current '"current":1' "$(echo "$ev" | grep -o '"pids":{[^}]*}')"
has events-memory-limit '"limit":33554432' "$ev"
if out=$($R update --memory 64m $c 2>&1); then pass update-memory-rc; else fail update-memory-rc "$out"; fi
eq update-memory.max 67108864 "$(rd $d/memory.max)"
$R update --memory 64m --memory-swap 96m $c >/dev/null 2>&1; eq update-memory.swap.max 33554432 "$(rd $d/memory.swap.max)"
$R update --pids-limit 50 $c >/dev/null 2>&1; eq update-pids.max 50 "$(rd $d/pids.max)"
$R update --cpu-quota 20000 $c >/dev/null 2>&1; eq update-cpu.max "20000 100000" "$(rd $d/cpu.max)"
$R update --cpu-share 1024 $c >/dev/null 2>&1; eq update-cpu.weight-from-shares-1024 39 "$(rd $d/cpu.weight)"
if out=$($R pause $c 2>&1); then pass pause-rc; else fail pause-rc "$out"; fi
eq pause-status paused "$(status $c)"
eq pause-cgroup.freeze 1 "$(rd $d/cgroup.freeze)"
if waitfor 50 '[ "$(kv $d/cgroup.events frozen)" = 1 ]'; then pass pause-frozen; else fail pause-frozen "cgroup.events: $(rd $d/cgroup.events)"; fi
has events-while-paused '"type":"stats"' "$($R events --stats $c 2>&1)"
if $R exec $c true >/tmp/exec.out 2>&1; then fail exec-while-paused-refused "exec into a paused container ran"; else pass exec-while-paused-refused; fi
if out=$($R resume $c 2>&1); then pass resume-rc; else fail resume-rc "$out"; fi
eq resume-status running "$(status $c)"
eq exec-joins-cgroup "0::/$c" "$($R exec $c cat /proc/self/cgroup 2>&1)"
has ps-lists-init "$p" "$($R ps --format json $c 2>&1)"
if waitfor 50 '[ "$(kv $d/cgroup.events frozen)" = 0 ]'; then pass resume-thawed; else fail resume-thawed "cgroup.events: $(rd $d/cgroup.events)"; fi
$R pause $c >/dev/null 2>&1
eq repause-status paused "$(status $c)"
if out=$($R delete $c 2>&1); then fail delete-paused-refused "delete without --force succeeded"; else pass delete-paused-refused; fi
if out=$($R delete --force $c 2>&1); then pass delete-force-paused-rc; else fail delete-force-paused-rc "$out"; fi
if [ -e $d ]; then fail delete-force-no-cgroup "$d still exists: procs $(rd $d/cgroup.procs)"; else pass delete-force-no-cgroup; fi
if [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status; then fail delete-force-killed "pid $p alive"; else pass delete-force-killed; fi
if $R state $c >/dev/null 2>&1; then fail delete-force-state-gone "state still there"; else pass delete-force-state-gone; fi

# --- pause must return with the cgroup frozen, even with busy tasks
c=c-busy; d=$CG/$c
rund $c busy
waitfor 50 '[ "$(nprocs $d)" = 2 ]'
$R pause $c >/dev/null 2>&1
eq busy-frozen-when-pause-returns 1 "$(kv $d/cgroup.events frozen)"
u1=$(kv $d/cpu.stat usage_usec); sleep 0.5; u2=$(kv $d/cpu.stat usage_usec)
eq busy-no-cpu-while-frozen "$u1" "$u2"
$R resume $c >/dev/null 2>&1
eq busy-thawed-when-resume-returns 0 "$(kv $d/cgroup.events frozen)"
bad=""
for i in 1 2 3 4 5 6 7 8 9 10; do
    $R pause $c >/dev/null 2>&1; f=$(kv $d/cgroup.events frozen)
    $R resume $c >/dev/null 2>&1; t=$(kv $d/cgroup.events frozen)
    [ "$f$t" = 10 ] || bad="$bad #$i:frozen=$f,thawed=$t"
done
eq busy-pause-resume-x10 "" "$bad"
$R delete --force $c >/dev/null 2>&1
if [ -e $d ]; then fail busy-delete "$d still exists"; else pass busy-delete; fi

# --- memory limit enforced: OOM kill inside the container, memory.events oom_kill, the events stream
c=c-oom; d=$CG/$c
if $R create --bundle /bundles/oom $c >/tmp/oom.out 2>&1; then pass create-oom; else fail create-oom "$(cat /tmp/oom.out)"; fi
$R events --interval 30s $c >/tmp/oom.events 2>&1 &
evpid=$!
sleep 1
$R start $c >/dev/null 2>&1 || fail start-oom "start failed"
if waitfor 200 '[ "$(kv $d/memory.events oom_kill)" -ge 1 ] 2>/dev/null'; then pass oom-kill-counted; else fail oom-kill-counted "memory.events: $(rd $d/memory.events)"; fi
if waitfor 50 'grep -q "dd-exit=137" /tmp/oom.out'; then pass oom-killed-sigkill; else fail oom-killed-sigkill "output: $(rd /tmp/oom.out)"; fi
eq oom-memory.max 16777216 "$(rd $d/memory.max)"
if waitfor 50 'grep -q "\"type\":\"oom\"" /tmp/oom.events'; then pass events-stream-oom; else fail events-stream-oom "events: $(rd /tmp/oom.events)"; fi
has oom-stats-failcnt '"failcnt":' "$($R events --stats $c 2>&1)"
$R delete --force $c >/dev/null 2>&1
if [ -e $d ]; then fail oom-delete "$d still exists"; else pass oom-delete; fi
waitfor 30 '! [ -d /proc/$evpid ]' || kill $evpid 2>/dev/null

# --- pids limit enforced
c=c-pids; d=$CG/$c
rund $c pids || fail run-pids "$(rd /tmp/$c.out)"
if waitfor 100 '[ "$(kv $d/pids.events max)" -ge 1 ] 2>/dev/null'; then pass pids-limit-hit; else fail pids-limit-hit "pids.events: $(rd $d/pids.events), pids.current $(rd $d/pids.current)"; fi
cur=$(rd $d/pids.current)
if [ "${cur:-99}" -le 8 ] 2>/dev/null; then pass pids-current-within-limit; else fail pids-current-within-limit "pids.current $cur > 8"; fi
has pids-fork-failed "can't fork" "$(cat /tmp/$c.out)"
$R delete --force $c >/dev/null 2>&1
if [ -e $d ]; then fail pids-delete "$d still exists"; else pass pids-delete; fi

# --- kill --all
c=c-multi; d=$CG/$c
rund $c multi
if waitfor 50 '[ "$(nprocs $d)" = 4 ]'; then pass multi-4-procs; else fail multi-4-procs "cgroup.procs: $(rd $d/cgroup.procs)"; fi
if out=$($R kill --all $c KILL 2>&1); then pass kill-all-rc; else fail kill-all-rc "$out"; fi
if waitfor 50 '[ "$(nprocs $d)" = 0 ]'; then pass kill-all-empty; else fail kill-all-empty "cgroup.procs: $(rd $d/cgroup.procs)"; fi
if waitfor 50 '[ "$(status $c)" = stopped ]'; then pass kill-all-stopped; else fail kill-all-stopped "status $(status $c)"; fi
$R delete $c >/dev/null 2>&1
if [ -e $d ]; then fail kill-all-delete "$d still exists"; else pass kill-all-delete; fi

# --- devices: the eBPF filter
devrun() { $R run --bundle /bundles/$1 c-$1 >/tmp/$1.out 2>&1; echo "rc=$?" >>/tmp/$1.out; sed "s/^/  $1: /" /tmp/$1.out; }
devrun dev-default; o=/tmp/dev-default.out
eq dev-default-rc rc=0 "$(tail -n 1 $o)"
for k in null-c null-rw zero-r mknod-c mknod-b; do eq "dev-default-$k" ok "$(dev $o $k)"; done
for k in kmsg-w x240-r x240-w loop-r; do has "dev-default-$k-denied" "Operation not permitted" "$(dev $o $k)"; done
devrun dev-allow; o=/tmp/dev-allow.out
for k in null-rw zero-r mknod-c kmsg-w; do eq "dev-allow-$k" ok "$(dev $o $k)"; done
has dev-allow-x240-r-allowed "No such device or address" "$(dev $o x240-r)"
has dev-allow-x240-w-denied "Operation not permitted" "$(dev $o x240-w)"
has dev-allow-loop-r-denied "Operation not permitted" "$(dev $o loop-r)"
devrun dev-denyone; o=/tmp/dev-denyone.out
for k in null-rw zero-r mknod-c mknod-b; do eq "dev-denyone-$k" ok "$(dev $o $k)"; done
has dev-denyone-kmsg-w-denied "Operation not permitted" "$(dev $o kmsg-w)"
has dev-denyone-x240-r-allowed "No such device or address" "$(dev $o x240-r)"
has dev-denyone-x240-w-allowed "No such device or address" "$(dev $o x240-w)"
has dev-denyone-loop-r-denied "Operation not permitted" "$(dev $o loop-r)"
for b in dev-default dev-allow dev-denyone; do
    if [ -e $CG/c-$b ]; then fail "$b-cgroup-removed" "$CG/c-$b remains"; else pass "$b-cgroup-removed"; fi
done

# --- cgroup namespace and the cgroup2 mount inside
for b in cgns cgns-v1type nocgns; do
    $R run --bundle /bundles/$b c-$b >/tmp/$b.out 2>&1 || fail "$b-rc" "$(rd /tmp/$b.out)"
done
for b in cgns cgns-v1type; do
    o=/tmp/$b.out; sed "s/^/  $b: /" $o
    eq "$b-proc-self-cgroup" "0::/" "$(dev $o selfcg)"
    has "$b-mount-cgroup2" "cgroup2 ro," "$(dev $o mnt)"
    eq "$b-memory.max-inside" 33554432 "$(dev $o memmax)"
    has "$b-procs-inside" "1," "$(dev $o procs)"
    has "$b-controllers-inside" memory "$(dev $o ctrls)"
done
o=/tmp/nocgns.out; sed "s/^/  nocgns: /" $o
eq nocgns-proc-self-cgroup "0::/c-nocgns" "$(dev $o selfcg)"
has nocgns-mount-cgroup2 "cgroup2 ro," "$(dev $o mnt)"
eq nocgns-memory.max-inside 33554432 "$(dev $o memmax)"

# --- a nested cgroupsPath: the runtime enables the controllers down the chain
c=c-nested; d=$CG/berth-vm/nested/$c
if rund $c nested; then pass run-nested; else fail run-nested "$(rd /tmp/$c.out)"; fi
has nested-parent-subtree-memory memory "$(rd $CG/berth-vm/cgroup.subtree_control)"
has nested-parent-subtree-pids pids "$(rd $CG/berth-vm/nested/cgroup.subtree_control)"
eq nested-memory.max 33554432 "$(rd $d/memory.max)"
eq nested-pids.max 16 "$(rd $d/pids.max)"
$R pause $c >/dev/null 2>&1; eq nested-pause paused "$(status $c)"
$R delete --force $c >/dev/null 2>&1
if [ -e $d ]; then fail nested-delete "$d still exists"; else pass nested-delete; fi
rmdir $CG/berth-vm/nested $CG/berth-vm 2>/dev/null

# --- io weight (blkio weight 500 -> io.weight 4950, or io.bfq.weight 500)
c=c-io; d=$CG/$c
if rund $c io; then
    pass run-io
    if [ -e $d/io.bfq.weight ]; then has io.bfq.weight "500" "$(rd $d/io.bfq.weight)"; else eq io.weight "default 4950" "$(rd $d/io.weight)"; fi
else
    fail run-io "$(rd /tmp/$c.out) (io files: $(ls $CG/cgroup.subtree_control $CG/*/io.* 2>/dev/null | tr '\n' ' '))"
fi
$R delete --force $c >/dev/null 2>&1

left=$(ls -d $CG/c-* 2>/dev/null)
eq no-cgroups-left "" "$left"
echo "$P passed, $F failed"
[ "$F" = 0 ]
EOF
chmod 0755 "$root/init" "$root/etc/rc" "$root/tests.sh"

initrd=$work/initrd.gz
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$initrd"
echo "cgroup-v2-vm: kernel $kernel, initramfs $(du -h "$initrd" | cut -f1), build $((build_s - start_s)) s" >&2

# ---- 6. boot
log=$work/serial.log
vm_start=$(date +%s)
set +e
timeout "${VM_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 -nographic -no-reboot -nic none \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 quiet cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 panic=-1" \
    </dev/null 2>&1 | tr -d '\r' | tee "$log"
qrc=${PIPESTATUS[0]}
set -e
vm_s=$(($(date +%s) - vm_start))

passed=$(grep -c '^PASS ' "$log" || true)
failed=$(grep -c '^FAIL ' "$log" || true)
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
echo "cgroup-v2-vm: qemu exit $qrc, VM ${vm_s} s, total $(($(date +%s) - start_s)) s; $passed PASS, $failed FAIL lines" >&2
if [[ $qrc == 124 ]]; then echo "cgroup-v2-vm: timed out after ${VM_TIMEOUT:-600} s" >&2; exit 1; fi
if [[ -z $summary ]]; then echo "cgroup-v2-vm: no summary line from the VM" >&2; exit 1; fi
[[ $failed == 0 && $summary == "$passed passed, 0 failed" ]]
