// What the engine needs from libc that Swift's Glibc module does not export.
#pragma once
#include <sys/epoll.h>
#include <sys/vfs.h>
#include <sys/random.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>

/// epoll_ctl ADD for reading (EPOLLIN|EPOLLRDHUP) with the fd as the data.
int be_epoll_add(int epfd, int fd);
/// Waits; writes up to max ready fds to out; returns their count or -1.
int be_epoll_wait(int epfd, int *out, int max);
/// f_type of the file system at path, or 0.
int64_t be_fs_type(const char *path);
/// Brings up the loopback interface of the calling thread's network namespace.
int be_loopback_up(void);
/// unshare(CLONE_NEWNET) for the calling thread.
int be_unshare_net(void);
/// pipe2(O_CLOEXEC).
int be_pipe_cloexec(int fds[2]);
/// An unnamed O_TMPFILE in dir (close-on-exec), or -1.
int be_tmpfile(const char *dir);
/// open(path, O_PATH|O_DIRECTORY|O_CLOEXEC).
int be_open_dir_path(const char *path);
/// O_PATH and AT_EMPTY_PATH, which Glibc's Swift module hides.
int be_o_path(void);
int be_at_empty_path(void);
unsigned int be_major(uint64_t dev);
unsigned int be_minor(uint64_t dev);
