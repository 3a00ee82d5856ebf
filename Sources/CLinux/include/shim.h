// shim.h: process plumbing for berth-shim (docs/shim.md) that Swift's Glibc module hides or makes awkward:
// the double fork, posix_spawn with reset signals and closed fds, pipe2/accept4 with close-on-exec.
#pragma once
#include <sys/types.h>

/// Detaches (docs/shim.md, Invocation): forks; the first process waits for the middle one and _exits 0
/// (1 if a fork failed); the middle one calls setsid(), forks again and _exits. Returns 0 in the grandchild
/// only, with stdio on /dev/null and every fd but keep_fd closed (keep_fd: close-on-exec; -1 for none).
int bl_shim_daemonize(int keep_fd);

/// posix_spawn of path (argv, the caller's environ) with fd0/fd1/fd2 as its stdio, every other fd closed,
/// an empty signal mask and every signal at its default. The pid, or -1 with errno.
pid_t bl_shim_spawn(const char *path, char *const argv[], int fd0, int fd1, int fd2);

/// pipe2(O_CLOEXEC); fds[0] read end, fds[1] write end. 0 or -1.
int bl_shim_pipe(int fds[2]);
/// A listening unix stream socket (close-on-exec, non-blocking) at path, replacing a stale one. fd or -1.
int bl_shim_listen(const char *path);
/// accept4(SOCK_CLOEXEC | SOCK_NONBLOCK); fd or -1 (EAGAIN when none is waiting).
int bl_shim_accept(int fd);
/// Sets O_NONBLOCK. 0 or -1.
int bl_shim_nonblock(int fd);
/// A non-blocking signalfd (close-on-exec) for every signal, all blocked; SIGPIPE ignored. fd or -1.
int bl_shim_signalfd(void);
/// shutdown(fd, SHUT_WR).
int bl_shim_shutdown_write(int fd);
/// waitpid(-1, WNOHANG): the pid (status in *code as exit code or 128+signal), 0 when none, -1 (ECHILD).
pid_t bl_shim_reap(int *code);
/// For an idle shim: gives free heap back (malloc_trim) and drops this process's resident pages of its own
/// program text (the r-xp mapping holding this code: never written, so the pages come back from the page
/// cache on their next use). Start-up touches most of a static Swift binary's text and fault-around keeps it
/// mapped, while the idle loop needs a few pages of it. 0 or -1.
int bl_shim_trim(void);
