// Syscall wrappers glibc does not export and small helpers the Swift side calls.
#define _GNU_SOURCE
#include "sys.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int bl_errno(void) { return errno; }

int bl_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct bl_open_how how = { .flags = flags | O_CLOEXEC, .mode = mode, .resolve = resolve };
    long r;
    do { r = syscall(SYS_openat2, dirfd, path, &how, sizeof how); } while (r < 0 && errno == EINTR);
    return (int)r;
}

int bl_pidfd_open(pid_t pid, unsigned int flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }

int bl_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int bl_close_range(unsigned int first, unsigned int last, unsigned int flags) {
    return (int)syscall(SYS_close_range, first, last, flags);
}

#define BL_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

#include <linux/mount.h>
#include <sys/statvfs.h>

// Protected: /proc/self/exe is a sealed memfd, or sits on a read-only mount (so that a container
// process that opens it through /proc/<pid>/exe cannot write the host's binary).
int bl_is_cloned_binary(void) {
    struct statvfs sv;
    if (statvfs("/proc/self/exe", &sv) == 0 && (sv.f_flag & ST_RDONLY)) return 1;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int seals = fcntl(fd, F_GET_SEALS);
    close(fd);
    return seals >= 0 && (seals & BL_SEALS) == BL_SEALS;
}

// Preferred: exec ourselves through a detached, read-only bind mount of our own binary
// (open_tree + mount_setattr): no copy, one execve. Fallback (no CAP_SYS_ADMIN): a sealed memfd copy.
int bl_ensure_cloned_binary(char *const argv[], char *const envp[]) {
    if (bl_is_cloned_binary()) return 0;
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree >= 0) {
        struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV };
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &a, sizeof a) == 0)
            syscall(SYS_execveat, tree, "", argv, envp, AT_EMPTY_PATH);
        close(tree);
    }
    int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (src < 0) return -1;
    struct stat st;
    if (fstat(src, &st) < 0) { close(src); return -1; }
    int mfd = memfd_create("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) { close(src); return -1; }
    off_t left = st.st_size;
    while (left > 0) {
        ssize_t n = sendfile(mfd, src, NULL, (size_t)left);
        if (n < 0) { if (errno == EINTR) continue; goto fail; }
        if (n == 0) break;
        left -= n;
    }
    close(src);
    src = -1;
    if (left != 0) { errno = EIO; goto fail; }
    if (fcntl(mfd, F_ADD_SEALS, BL_SEALS) < 0) goto fail;
    syscall(SYS_execveat, mfd, "", argv, envp, AT_EMPTY_PATH);
fail: {
        int e = errno;
        if (src >= 0) close(src);
        close(mfd);
        errno = e;
        return -1;
    }
}

ssize_t bl_sendmsg_fd(int sock, const void *data, size_t len, int fd) {
    char buf[CMSG_SPACE(sizeof(int))];
    memset(buf, 0, sizeof buf);
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r;
}

int bl_send_fd(int sock, int fd, const char *name) {
    size_t len = name ? strlen(name) : 0;
    char one = 0;
    return bl_sendmsg_fd(sock, len ? name : &one, len ? len : 1, fd) < 0 ? -1 : 0;
}

int bl_recv_fd(int sock, char *name, size_t namelen) {
    struct msghdr msg = {0};
    char buf[CMSG_SPACE(sizeof(int))];
    char data[4096];
    struct iovec iov = { .iov_base = data, .iov_len = sizeof data - 1 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf;
    msg.msg_controllen = sizeof buf;
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    if (name && namelen) {
        size_t n = (size_t)r < namelen - 1 ? (size_t)r : namelen - 1;
        memcpy(name, data, n);
        name[n] = 0;
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) { errno = EBADMSG; return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

int bl_connect_unix(const char *path) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int r;
    do { r = connect(fd, (struct sockaddr *)&a, sizeof a); } while (r < 0 && errno == EINTR);
    if (r < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

static const struct { const char *name; int num; } signals[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL}, {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"IOT", SIGIOT}, {"BUS", SIGBUS}, {"FPE", SIGFPE}, {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL}, {"PWR", SIGPWR}, {"SYS", SIGSYS},
};

int bl_signal_number(const char *name) {
    if (!name || !*name) return -1;
    if (name[0] >= '0' && name[0] <= '9') {
        char *end;
        long v = strtol(name, &end, 10);
        if (*end || v <= 0 || v > SIGRTMAX) return -1;
        return (int)v;
    }
    const char *n = name;
    if (strncasecmp(n, "SIG", 3) == 0) n += 3;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (strcasecmp(n, signals[i].name) == 0) return signals[i].num;
    if (strncasecmp(n, "RTMIN", 5) == 0 || strncasecmp(n, "RTMAX", 5) == 0) {
        int base = strncasecmp(n, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX;
        const char *rest = n + 5;
        if (!*rest) return base;
        char *end;
        long off = strtol(rest, &end, 10);
        if (*end) return -1;
        long v = base + off;
        return v >= SIGRTMIN && v <= SIGRTMAX ? (int)v : -1;
    }
    return -1;
}

int bl_waitpid(pid_t pid, int *status, int flags) {
    int r;
    do { r = waitpid(pid, status, flags | __WALL); } while (r < 0 && errno == EINTR);
    return r;
}
int bl_wifexited(int s) { return WIFEXITED(s); }
int bl_wexitstatus(int s) { return WEXITSTATUS(s); }
int bl_wifsignaled(int s) { return WIFSIGNALED(s); }
int bl_wtermsig(int s) { return WTERMSIG(s); }

int bl_signalfd_all(void) {
    sigset_t all;
    sigfillset(&all);
    if (sigprocmask(SIG_BLOCK, &all, NULL) < 0) return -1;
    return signalfd(-1, &all, SFD_CLOEXEC);
}

int bl_signalfd_read(int fd, int *pid) {
    struct signalfd_siginfo si;
    ssize_t r;
    do { r = read(fd, &si, sizeof si); } while (r < 0 && errno == EINTR);
    if (r < 0) return errno == EAGAIN ? 0 : -1;
    if (r != sizeof si) { errno = EIO; return -1; }
    if (pid) *pid = (int)si.ssi_pid;
    return (int)si.ssi_signo;
}

int bl_set_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int bl_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return -1;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return 0;
}

int bl_set_winsize(int fd, unsigned short rows, unsigned short cols) {
    struct winsize ws = { .ws_row = rows, .ws_col = cols };
    return ioctl(fd, TIOCSWINSZ, &ws);
}

int bl_make_raw(int fd, void **saved) {
    struct termios *t = malloc(sizeof *t);
    if (!t) return -1;
    if (tcgetattr(fd, t) < 0) { free(t); return -1; }
    struct termios raw = *t;
    cfmakeraw(&raw);
    raw.c_oflag |= OPOST; // keep output post-processing like runc's console proxy
    if (tcsetattr(fd, TCSANOW, &raw) < 0) { free(t); return -1; }
    *saved = t;
    return 0;
}

void bl_restore_termios(int fd, void *saved) {
    if (!saved) return;
    tcsetattr(fd, TCSANOW, (struct termios *)saved);
    free(saved);
}

int bl_mkfifo(const char *path, unsigned int mode) { return mkfifo(path, mode); }

#include <sys/vfs.h>
unsigned long bl_fs_type(const char *path) {
    struct statfs s;
    if (statfs(path, &s) < 0) return 0;
    return (unsigned long)s.f_type;
}

pid_t bl_prime_cgroup_attach(const char *procs) {
    pid_t p = fork();
    if (p != 0) return p;
    // keeps the window open until the runtime kills us (at most ~200 ms): a move within one grace
    // period of the last one does not wait again
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) _exit(0);
    for (int i = 0; i < 100; i++) {
        if (write(fd, "0", 1) < 0) break;
        usleep(2000);
    }
    _exit(0);
}
