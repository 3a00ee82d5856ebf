// sys.h: syscall wrappers glibc 2.36 does not export (openat2, pidfd_*, close_range flags,
// mount_setattr, memfd re-exec) and the fd-passing helpers of the console-socket protocol.
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

struct bl_open_how { uint64_t flags; uint64_t mode; uint64_t resolve; };
#define BL_RESOLVE_NO_XDEV 0x01
#define BL_RESOLVE_NO_MAGICLINKS 0x02
#define BL_RESOLVE_NO_SYMLINKS 0x04
#define BL_RESOLVE_BENEATH 0x08
#define BL_RESOLVE_IN_ROOT 0x10

/// openat2(2); returns fd or -1 with errno.
int bl_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);
int bl_pidfd_open(pid_t pid, unsigned int flags);
int bl_pidfd_send_signal(int pidfd, int sig);
int bl_close_range(unsigned int first, unsigned int last, unsigned int flags);
/// Makes sure this process runs from a sealed memfd copy of its own binary (CVE-2019-5736):
/// returns 0 when already so; otherwise re-execs (argv/envp) and only returns -1 on error.
int bl_ensure_cloned_binary(char *const argv[], char *const envp[]);
/// 1 when /proc/self/exe is a sealed memfd.
int bl_is_cloned_binary(void);
/// Sends fd over a unix socket with SCM_RIGHTS and `name` as the data (runc's recvtty protocol).
int bl_send_fd(int sock, int fd, const char *name);
/// sendmsg of `data` with `fd` attached (SCM_RIGHTS); the byte count or -1.
ssize_t bl_sendmsg_fd(int sock, const void *data, size_t len, int fd);
/// Receives one fd; returns it or -1.
int bl_recv_fd(int sock, char *name, size_t namelen);
int bl_connect_unix(const char *path);
/// The signal number of a signal name ("KILL", "SIGKILL", "9"); -1 when unknown.
int bl_signal_number(const char *name);
int bl_waitpid(pid_t pid, int *status, int flags);
int bl_wifexited(int status);
int bl_wexitstatus(int status);
int bl_wifsignaled(int status);
int bl_wtermsig(int status);
/// Blocks every signal and returns a signalfd for them (the foreground `run`/`exec` forwarder).
int bl_signalfd_all(void);
/// Reads one signal from a signalfd; returns its number, 0 on EAGAIN, -1 on error.
int bl_signalfd_read(int fd, int *pid);
int bl_set_subreaper(void);
int bl_get_winsize(int fd, unsigned short *rows, unsigned short *cols);
int bl_set_winsize(int fd, unsigned short rows, unsigned short cols);
int bl_make_raw(int fd, void **saved);
void bl_restore_termios(int fd, void *saved);
int bl_mkfifo(const char *path, unsigned int mode);
int bl_errno(void);

// clone(2) namespace flags: Swift's Glibc module hides them behind _GNU_SOURCE.
enum {
    BL_CLONE_NEWTIME = 0x00000080,
    BL_CLONE_NEWNS = 0x00020000,
    BL_CLONE_NEWCGROUP = 0x02000000,
    BL_CLONE_NEWUTS = 0x04000000,
    BL_CLONE_NEWIPC = 0x08000000,
    BL_CLONE_NEWUSER = 0x10000000,
    BL_CLONE_NEWPID = 0x20000000,
    BL_CLONE_NEWNET = 0x40000000,
};
/// Forks a child that keeps moving itself into its own cgroup (`procs`, a cgroup.procs file): no-op
/// moves that take the kernel's cgroup-migration lock, whose first taker waits ~10 ms for an RCU grace
/// period and which stays cheap for one grace period after each use. Started early, the wait overlaps
/// the runtime's own work and the container's cgroup.procs writes find it cheap. Returns the child's pid
/// (kill and reap it once the container is placed) or -1.
pid_t bl_prime_cgroup_attach(const char *procs);
/// statfs(2) f_type of a path, or 0.
unsigned long bl_fs_type(const char *path);
enum { BL_O_PATH = 010000000 };
