#define _GNU_SOURCE
#include "cengine.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/sysmacros.h>

int be_epoll_add(int epfd, int fd) {
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int be_epoll_wait(int epfd, int *out, int max) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, evs, max, -1);
    for (int i = 0; i < n; i++) out[i] = evs[i].data.fd;
    return n;
}

int64_t be_fs_type(const char *path) {
    struct statfs st;
    if (statfs(path, &st) != 0) return 0;
    return (int64_t)st.f_type;
}

int be_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(s);
    errno = e;
    return r;
}

int be_unshare_net(void) { return unshare(CLONE_NEWNET); }

int be_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int be_tmpfile(const char *dir) { return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600); }

int be_open_dir_path(const char *path) { return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC); }

int be_o_path(void) { return O_PATH; }
int be_at_empty_path(void) { return AT_EMPTY_PATH; }
unsigned int be_major(uint64_t dev) { return major(dev); }
unsigned int be_minor(uint64_t dev) { return minor(dev); }
