// berth-shim's process plumbing (include/shim.h).
#define _GNU_SOURCE
#include "shim.h"
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void close_from(int first) {
    if (syscall(SYS_close_range, (unsigned)first, ~0u, 0) == 0) return;
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = first; fd < max; fd++) close(fd);
}

int bl_shim_daemonize(int keep_fd) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid > 0) {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
    }
    if (setsid() < 0) _exit(1);
    pid = fork();
    if (pid < 0) _exit(1);
    if (pid > 0) _exit(0);
    int null = open("/dev/null", O_RDWR);
    if (null < 0) return -1;
    for (int fd = 0; fd < 3; fd++)
        if (null != fd) dup2(null, fd);
    if (null > 2 && null != keep_fd) close(null);
    if (keep_fd > 2) {
        // keep_fd is above 2: close 3..keep-1 and keep+1..
        for (int fd = 3; fd < keep_fd; fd++) close(fd);
        close_from(keep_fd + 1);
        fcntl(keep_fd, F_SETFD, FD_CLOEXEC);
    } else {
        close_from(3);
    }
    return 0;
}

pid_t bl_shim_spawn(const char *path, char *const argv[], int fd0, int fd1, int fd2) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    int fds[3] = { fd0, fd1, fd2 };
    // dup2 onto itself would keep FD_CLOEXEC: move such sources up first
    int moved[3] = { -1, -1, -1 };
    for (int i = 0; i < 3; i++) {
        if (fds[i] >= 0 && fds[i] < 3) {
            moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
            fds[i] = moved[i];
        }
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&fa, fds[i], i);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 3; i++)
        if (moved[i] >= 0) close(moved[i]);
    if (rc != 0) { errno = rc; return -1; }
    return pid;
}

int bl_shim_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int bl_shim_listen(const char *path) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof a.sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int bl_shim_accept(int fd) {
    int r;
    do { r = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); } while (r < 0 && errno == EINTR);
    return r;
}

int bl_shim_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int bl_shim_signalfd(void) {
    signal(SIGPIPE, SIG_IGN);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGPIPE);
    if (sigprocmask(SIG_BLOCK, &all, NULL) < 0) return -1;
    return signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
}

int bl_shim_shutdown_write(int fd) { return shutdown(fd, SHUT_WR); }

pid_t bl_shim_reap(int *code) {
    int st = 0;
    pid_t pid;
    do { pid = waitpid(-1, &st, WNOHANG); } while (pid < 0 && errno == EINTR);
    if (pid > 0) *code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    return pid;
}

int bl_shim_trim(void) {
    malloc_trim(0);
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[8192];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            close(fd);
            return -1;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    unsigned long self = (unsigned long)(void *)&bl_shim_trim;
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        unsigned long lo, hi;
        char perms[8] = {0};
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo <= self && self < hi) {
            if (strcmp(perms, "r-xp") != 0) return -1;  // only text that is never written
            return madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
        line = next;
    }
    errno = ENOENT;
    return -1;
}
