// init.h: the container's init and exec'd processes, from fork to execve.
// Swift builds a bl_init_config (every string and array allocated before the fork); the C code
// here forks, joins/creates namespaces, sets up the rootfs and the process, and execs. Progress and
// failures go to the parent as fixed-size bl_msg records over a SOCK_SEQPACKET socket.
#pragma once
#include <stdint.h>
#include <sys/types.h>

enum bl_msg_type {
    BL_MSG_USERNS_READY = 1, // child1 -> parent: value = 1 when uid/gid maps must be written
    BL_MSG_GO = 2,           // parent -> child1 / init: continue
    BL_MSG_INIT_PID = 3,     // child1 -> parent: value = the init's pid (parent's pid namespace)
    BL_MSG_HOOKS = 4,        // init -> parent: run createRuntime/prestart hooks now (value 0)
    BL_MSG_READY = 5,        // init -> parent: set up, blocked on the exec fifo (or about to exec)
    BL_MSG_ERROR = 6,        // any -> parent: err = errno (0 if none), text = message
    BL_MSG_STATE = 7,        // parent -> init: text = state JSON for in-container hooks (may be chunked)
    BL_MSG_SECCOMP_FD = 8,   // init/exec -> parent: the seccomp notify fd attached (SCM_RIGHTS); parent answers GO
};

struct bl_seccomp;           // bl_seccomp.h

struct bl_msg {
    int32_t type;
    int32_t err;
    int64_t value;
    char text[1024];
};

enum bl_mount_kind { BL_MOUNT_FS = 0, BL_MOUNT_BIND = 1, BL_MOUNT_REMOUNT = 2 /* flags onto an earlier mount */ };

struct bl_mount {
    const char *source;      // bind: host path; fs: the source string ("proc", "tmpfs", ...)
    const char *dest;        // absolute path inside the rootfs
    const char *fstype;      // NULL for binds
    const char *data;        // comma-joined fs options or NULL
    unsigned long flags;     // MS_* (without propagation)
    unsigned long propagation[4];
    int npropagation;
    int kind;                // bl_mount_kind
    int recursive;           // rbind
    int source_is_dir;       // binds: whether to create a dir (1) or a file (0) at dest
    uint64_t attr_set;       // mount_setattr(AT_RECURSIVE) for r* options
    uint64_t attr_clr;
    int ignore_missing_source;
    int tmpcopyup;           // runc's "tmpcopyup": copy the covered directory's contents into the new mount
};

struct bl_device {
    const char *path;        // absolute, inside the rootfs
    unsigned int mode;       // S_IF* | permission bits
    unsigned int major, minor;
    unsigned int uid, gid;
};

struct bl_rlimit { int resource; uint64_t soft, hard; const char *name; };

struct bl_hook {
    const char *path;
    char *const *argv;
    char *const *envp;
    int timeout;             // seconds, 0 = none
};

struct bl_process {
    char *const *argv;
    char *const *envp;
    const char *cwd;
    uint32_t uid, gid;
    int ngroups;             // -1: leave supplementary groups alone
    const uint32_t *groups;
    int umask;               // -1 unset
    int has_caps;
    uint64_t cap_bounding, cap_effective, cap_inheritable, cap_permitted, cap_ambient;
    int no_new_privs;
    const struct bl_rlimit *rlimits;
    int nrlimits;
    int ioprio_set;
    int ioprio;              // already encoded (class << 13 | data)
    int terminal;
    int console_socket;      // fd or -1
    unsigned short console_rows, console_cols;
    int preserve_fds;        // fds 3 .. 3+n-1 stay open
    int exec_fifo_fd;        // O_PATH fd of exec.fifo, or -1 (exec: no fifo)
    int sync_fd;             // SOCK_SEQPACKET to the parent
    int parent_fd;           // the parent's end of the socket: closed in the child, or -1
    int self_exe_check;      // refuse to exec the runtime's own binary
    int setsid;
    int new_keyring;
    const struct bl_seccomp *seccomp; // built before the fork (bl_seccomp.h), or NULL
};

struct bl_init_config {
    int new_ns_flags;        // CLONE_NEW* to create (without CLONE_NEWUSER)
    int new_userns;
    int join_fds[8];         // fds of namespaces to join (opened by the parent), -1 = none
    int join_types[8];       // CLONE_NEW* of each
    int njoin;
    const char *timens_offsets; // "monotonic S N\nboottime S N\n" or NULL
    // rootfs
    const char *rootfs;      // absolute host path
    unsigned long root_propagation; // MS_* for "/" (default MS_SLAVE|MS_REC)
    int readonly_root;
    int no_pivot;
    int has_mount_ns;
    const struct bl_mount *mounts;
    int nmounts;
    int default_devices;     // create the default /dev nodes and symlinks
    const struct bl_device *devices;
    int ndevices;
    const char *const *masked;
    int nmasked;
    const char *const *readonly;
    int nreadonly;
    const char *hostname;
    const char *domainname;
    const char *const *sysctl_keys;
    const char *const *sysctl_values;
    int nsysctl;
    const struct bl_hook *create_container_hooks;
    int ncreate_container_hooks;
    const struct bl_hook *start_container_hooks;
    int nstart_container_hooks;
    int wants_hook_state;    // init waits for BL_MSG_STATE before running in-container hooks
    struct bl_process process;
};

/// Forks the container's first child (child1) which creates/joins the namespaces, forks the init
/// with CLONE_PARENT (so it is the caller's child) and exits. Returns child1's pid or -1.
pid_t bl_spawn_init(const struct bl_init_config *cfg);

struct bl_exec_config {
    int ns_fds[8];           // namespaces of the container to join, user first
    int ns_types[8];
    int nns;
    const char *root_fallback; // unused when a mount namespace is joined
    struct bl_process process;
};

/// Forks child1 that joins the container's namespaces, forks the exec'd process with
/// CLONE_PARENT and exits. Returns child1's pid or -1.
pid_t bl_spawn_exec(const struct bl_exec_config *cfg);

/// Runs a hook: fork+execve with `state` on stdin; waits up to hook->timeout seconds.
/// Returns 0 on success; otherwise writes a message to err.
int bl_run_hook(const struct bl_hook *hook, const char *state, char *err, size_t errlen);

int bl_msg_send(int fd, int type, int err, int64_t value, const char *text);
/// Receives one message; returns 0, or -1 on EOF / error (errno set; EOF → errno 0).
int bl_msg_recv(int fd, struct bl_msg *msg);
