// bl_seccomp.h: linux.seccomp through libseccomp, whose API is C and whose filter must be loaded in the
// container's process, between fork and exec. (Not "seccomp.h": that name is libseccomp's own header.)
// Swift fills a bl_seccomp_config from the spec; the filter is built here in the runtime before the
// fork (so a bad profile leaves nothing behind) and only loaded in the child.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "init.h"

enum bl_seccomp_action {
    BL_SECCOMP_ACT_KILL_THREAD = 1, // SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD
    BL_SECCOMP_ACT_KILL_PROCESS = 2,
    BL_SECCOMP_ACT_TRAP = 3,
    BL_SECCOMP_ACT_ERRNO = 4,       // errno_ret (EPERM unless given)
    BL_SECCOMP_ACT_TRACE = 5,       // errno_ret is the tracer's value (EPERM unless given)
    BL_SECCOMP_ACT_LOG = 6,
    BL_SECCOMP_ACT_ALLOW = 7,
    BL_SECCOMP_ACT_NOTIFY = 8,
};

// The values of libseccomp's enum scmp_compare.
enum bl_seccomp_op {
    BL_SECCOMP_CMP_NE = 1,
    BL_SECCOMP_CMP_LT = 2,
    BL_SECCOMP_CMP_LE = 3,
    BL_SECCOMP_CMP_EQ = 4,
    BL_SECCOMP_CMP_GE = 5,
    BL_SECCOMP_CMP_GT = 6,
    BL_SECCOMP_CMP_MASKED_EQ = 7,   // (arg & value) == value_two
};

enum bl_seccomp_flag {
    BL_SECCOMP_FLAG_TSYNC = 1,
    BL_SECCOMP_FLAG_LOG = 2,
    BL_SECCOMP_FLAG_SPEC_ALLOW = 4,
    BL_SECCOMP_FLAG_WAIT_KILLABLE_RECV = 8, // libseccomp >= 2.6 only
};

struct bl_seccomp_arg {
    uint32_t index;          // 0..5
    uint32_t op;             // bl_seccomp_op
    uint64_t value;
    uint64_t value_two;
};

/// One syscall name of a syscalls[] entry (runc's unit: one rule per name).
struct bl_seccomp_rule {
    const char *name;
    uint32_t action;         // bl_seccomp_action
    uint32_t errno_ret;
    const struct bl_seccomp_arg *args;
    int nargs;
    int entry;               // index in linux.seccomp.syscalls, for messages
};

struct bl_seccomp_config {
    uint32_t default_action;
    uint32_t default_errno_ret;
    const char *const *archs;     // the spec's names ("SCMP_ARCH_X86_64", ...)
    int narchs;
    uint32_t flags;               // bl_seccomp_flag
    int flags_given;              // 0: flags absent, SPEC_ALLOW when supported (as runc)
    const struct bl_seccomp_rule *rules;
    int nrules;
    const char *listener_path;
    const char *listener_metadata;
};

/// A built filter, ready to load after fork.
struct bl_seccomp {
    void *ctx;                    // scmp_filter_ctx
    int notify;                   // some rule is SCMP_ACT_NOTIFY: the child sends the listener fd
    const char *listener_path;
    const char *listener_metadata;
    const void *bpf;              // the exported program (struct sock_filter[]): loaded with seccomp(2)
    size_t bpf_len;               // bytes
    unsigned int load_flags;      // SECCOMP_FILTER_FLAG_* for seccomp(2)
};

/// Builds (never loads) the filter. NULL with a message in err when libseccomp refuses it.
struct bl_seccomp *bl_seccomp_build(const struct bl_seccomp_config *cfg, char *err, size_t errlen);

/// Generates the BPF program of a built filter in the runtime (before the fork), so that the child
/// only makes one seccomp(2) call and the program can be cached. 0, or -1 with a message.
int bl_seccomp_export(struct bl_seccomp *f, char *err, size_t errlen);

/// A filter from a cached program (no libseccomp work at all).
struct bl_seccomp *bl_seccomp_from_bpf(const void *bpf, size_t len, unsigned int load_flags, int notify,
                                       const char *listener_path, const char *listener_metadata);

/// Loads the filter in the container's process (bl_fail on error). With a NOTIFY rule it sends the
/// listener fd to the parent as BL_MSG_SECCOMP_FD (SCM_RIGHTS) on sync_fd, waits for BL_MSG_GO, and
/// closes its copy.
void bl_seccomp_apply(const struct bl_seccomp *f, int sync_fd);

/// Receives one bl_msg from the sync socket with an fd attached (-1 in *fd when none).
/// Returns 0, or -1 on EOF (errno 0) / error.
int bl_msg_recv_fd(int sock, struct bl_msg *msg, int *fd);

/// The BL_SECCOMP_FLAG_* this libseccomp and kernel support.
uint32_t bl_seccomp_supported_flags(void);
/// libseccomp's runtime version, "2.5.4".
void bl_seccomp_version(char *buf, size_t len);
