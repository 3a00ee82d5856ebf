// The cgroup v2 device filter (see include/cgroup_bpf.h). The program reads the request
// (type, access, major, minor) into R2..R5, then tests the rules from the last to the first; the first
// that matches returns its verdict; none: the default.
#define _GNU_SOURCE
#include "cgroup_bpf.h"
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

static int rule_len(const struct bl_dev_rule *r) {
    int n = 2; // mov r0, verdict; exit
    if (r->type != 'a') n += 1;
    if ((r->access & 7u) != 7u) n += 3;
    if (r->major >= 0) n += 1;
    if (r->minor >= 0) n += 1;
    return n;
}

static int emit_rule(struct bpf_insn *p, const struct bl_dev_rule *r) {
    int len = rule_len(r), i = 0;
    // a jump at index i skips to the end of the block: offset = len - i - 1
    if (r->type != 'a') {
        int t = r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
        p[i] = INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, len - i - 1, t); i++;
    }
    if ((r->access & 7u) != 7u) {
        p[i++] = INSN(BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0);          // r1 = requested access
        if (r->allow) {
            // the request must be within the rule: (req & ~acc) == 0
            p[i++] = INSN(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, (int32_t)(~r->access & 7u));
            p[i] = INSN(BPF_JMP | BPF_JNE | BPF_K, 1, 0, len - i - 1, 0); i++;
        } else {
            // a deny applies when the request touches it: (req & acc) != 0
            p[i++] = INSN(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, (int32_t)(r->access & 7u));
            p[i] = INSN(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, len - i - 1, 0); i++;
        }
    }
    if (r->major >= 0) { p[i] = INSN(BPF_JMP | BPF_JNE | BPF_K, 4, 0, len - i - 1, (int32_t)r->major); i++; }
    if (r->minor >= 0) { p[i] = INSN(BPF_JMP | BPF_JNE | BPF_K, 5, 0, len - i - 1, (int32_t)r->minor); i++; }
    p[i++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r->allow ? 1 : 0);
    p[i++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    return i;
}

int bl_cgroup_devices_program_len(const struct bl_dev_rule *rules, int nrules) {
    int n = 6 + 2; // prologue (four loads, and, shift) + the default verdict
    for (int k = 0; k < nrules; k++) n += rule_len(&rules[k]);
    return n;
}

static int build(const struct bl_dev_rule *rules, int nrules, int default_allow, struct bpf_insn **out) {
    int n = bl_cgroup_devices_program_len(rules, nrules);
    struct bpf_insn *p = calloc((size_t)n, sizeof *p);
    if (!p) return -1;
    int i = 0;
    // struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }
    p[i++] = INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0);
    p[i++] = INSN(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xFFFF);
    p[i++] = INSN(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 0, 0);
    p[i++] = INSN(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16);
    p[i++] = INSN(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0);
    p[i++] = INSN(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0);
    int decided = 0;
    for (int k = nrules - 1; k >= 0 && !decided; k--) {
        i += emit_rule(p + i, &rules[k]);
        // a rule for every device and access ends the program: what comes before it is unreachable
        decided = rule_len(&rules[k]) == 2;
    }
    if (!decided) {
        p[i++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, default_allow ? 1 : 0);
        p[i++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }
    *out = p;
    return i;
}

int bl_cgroup_devices_attach(int dirfd, const struct bl_dev_rule *rules, int nrules, int default_allow,
                             char *log, unsigned loglen) {
    struct bpf_insn *insns = NULL;
    int n = build(rules, nrules, default_allow, &insns);
    if (n < 0) return -1;
    if (log && loglen) log[0] = 0;

    // the programs attached now, to detach once ours is in place
    uint32_t old_ids[64];
    uint32_t nold = 0;
    {
        union bpf_attr q;
        memset(&q, 0, sizeof q);
        q.query.target_fd = (uint32_t)dirfd;
        q.query.attach_type = BPF_CGROUP_DEVICE;
        q.query.prog_ids = (uint64_t)(uintptr_t)old_ids;
        q.query.prog_cnt = 64;
        if (sys_bpf(BPF_PROG_QUERY, &q) == 0) nold = q.query.prog_cnt;
    }

    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.insn_cnt = (uint32_t)n;
    a.license = (uint64_t)(uintptr_t)"Apache";
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = log ? loglen : 0;
    a.log_level = log && loglen ? 1 : 0;
    int prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
    if (prog < 0 && errno == ENOSPC && log) {
        // the log was too small; load again without it
        a.log_buf = 0; a.log_size = 0; a.log_level = 0;
        prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
    }
    int e = errno;
    free(insns);
    if (prog < 0) { errno = e; return -1; }

    memset(&a, 0, sizeof a);
    a.target_fd = (uint32_t)dirfd;
    a.attach_bpf_fd = (uint32_t)prog;
    a.attach_type = BPF_CGROUP_DEVICE;
    a.attach_flags = BPF_F_ALLOW_MULTI;
    if (sys_bpf(BPF_PROG_ATTACH, &a) != 0) {
        e = errno;
        close(prog);
        errno = e;
        return -1;
    }
    close(prog); // the attachment holds the program
    for (uint32_t k = 0; k < nold && k < 64; k++) {
        union bpf_attr g;
        memset(&g, 0, sizeof g);
        g.prog_id = old_ids[k];
        int fd = (int)sys_bpf(BPF_PROG_GET_FD_BY_ID, &g);
        if (fd < 0) continue;
        union bpf_attr d;
        memset(&d, 0, sizeof d);
        d.target_fd = (uint32_t)dirfd;
        d.attach_bpf_fd = (uint32_t)fd;
        d.attach_type = BPF_CGROUP_DEVICE;
        sys_bpf(BPF_PROG_DETACH, &d);
        close(fd);
    }
    return 0;
}

#include <sys/eventfd.h>
int bl_eventfd_cloexec(void) { return eventfd(0, EFD_CLOEXEC); }
