// cgroup v2 device rules: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program attached with BPF_CGROUP_DEVICE
// (as runc and crun do). In C because Swift's Glibc has no bpf(2) and no struct bpf_insn.
#pragma once
#include <stdint.h>

struct bl_dev_rule {
    int allow;          // 1 allow, 0 deny
    char type;          // 'a', 'c' or 'b'
    int64_t major;      // -1: any
    int64_t minor;      // -1: any
    unsigned access;    // BL_DEV_MKNOD | BL_DEV_READ | BL_DEV_WRITE
};

#define BL_DEV_MKNOD 1u
#define BL_DEV_READ 2u
#define BL_DEV_WRITE 4u

// Builds the program for `rules` (the last matching rule decides; nothing matching: denied, unless
// default_allow), loads it, attaches it to the cgroup directory `dirfd` and detaches the programs that
// were attached before (an update replaces the rules). 0 or -1 with errno; `log` gets the verifier's text.
int bl_cgroup_devices_attach(int dirfd, const struct bl_dev_rule *rules, int nrules, int default_allow,
                             char *log, unsigned loglen);
// The number of instructions the program for these rules has (for tests).
int bl_cgroup_devices_program_len(const struct bl_dev_rule *rules, int nrules);

// An eventfd (EFD_CLOEXEC) for cgroup v1 notifications (cgroup.event_control); Glibc's module has none.
int bl_eventfd_cloexec(void);
