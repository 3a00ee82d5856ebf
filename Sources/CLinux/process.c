// The container process, from its namespaces to execve: console, rlimits, ioprio, keyring, user,
// capabilities, no_new_privs, fds, cwd, the exec fifo.
#define _GNU_SOURCE
#include "internal.h"
#include "sys.h"
#include "bl_seccomp.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1

static int last_cap(void) {
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 40;
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? atoi(buf) : 40;
}

static void setup_console(const struct bl_process *p) {
    int ptm = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (ptm < 0) bl_fail(errno, "open /dev/ptmx in the container");
    int unlock = 0;
    if (ioctl(ptm, TIOCSPTLCK, &unlock) < 0) bl_fail(errno, "unlock pty");
    int n = 0;
    if (ioctl(ptm, TIOCGPTN, &n) < 0) bl_fail(errno, "get pty number");
    char name[64];
    snprintf(name, sizeof name, "/dev/pts/%d", n);
    int pts = ioctl(ptm, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (pts < 0) bl_fail(errno, "open %s", name);
    if (p->console_rows || p->console_cols) {
        struct winsize ws = { .ws_row = p->console_rows, .ws_col = p->console_cols };
        ioctl(pts, TIOCSWINSZ, &ws);
    }
    if (fchown(pts, p->uid, p->gid) < 0 && errno != EPERM && errno != EINVAL) bl_fail(errno, "chown %s", name);
    // /dev/console is the pty, as runc makes it
    struct stat st;
    if (stat("/dev", &st) == 0) {
        int c = open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (c >= 0) {
            close(c);
            char pp[64];
            snprintf(pp, sizeof pp, "/proc/self/fd/%d", pts);
            mount(name, "/dev/console", NULL, MS_BIND, NULL);
        }
    }
    if (bl_send_fd(p->console_socket, ptm, name) < 0) bl_fail(errno, "send pty master to the console socket");
    close(ptm);
    close(p->console_socket);
    if (ioctl(pts, TIOCSCTTY, 0) < 0) bl_fail(errno, "set controlling terminal");
    for (int fd = 0; fd < 3; fd++)
        if (dup3(pts, fd, 0) < 0) bl_fail(errno, "dup pty to fd %d", fd);
    if (pts > 2) close(pts);
}

static void apply_rlimits(const struct bl_process *p) {
    for (int i = 0; i < p->nrlimits; i++) {
        const struct bl_rlimit *r = &p->rlimits[i];
        struct rlimit l = { .rlim_cur = r->soft, .rlim_max = r->hard };
        if (prlimit(0, r->resource, &l, NULL) < 0) {
            int e = errno;
            struct rlimit cur;
            if (e == EPERM && prlimit(0, r->resource, NULL, &cur) == 0 && r->hard > cur.rlim_max)
                bl_fail(e, "set %s to soft %llu hard %llu (raising the hard limit above %llu needs CAP_SYS_RESOURCE)",
                        r->name, (unsigned long long)r->soft, (unsigned long long)r->hard,
                        (unsigned long long)cur.rlim_max);
            bl_fail(e, "set %s to soft %llu hard %llu", r->name, (unsigned long long)r->soft,
                    (unsigned long long)r->hard);
        }
    }
}

static void apply_user_and_caps(const struct bl_process *p) {
    if (p->has_caps) {
        int last = last_cap();
        for (int c = 0; c <= last; c++) {
            if (p->cap_bounding & (1ULL << c)) continue;
            if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) bl_fail(errno, "drop capability %d from the bounding set", c);
        }
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) bl_fail(errno, "keep capabilities");
    }
    if (p->ngroups >= 0 && setgroups((size_t)p->ngroups, (const gid_t *)p->groups) < 0) {
        // setgroups is denied in a user namespace whose setgroups file says so; nothing to set then
        if (!(errno == EPERM && p->ngroups == 0)) bl_fail(errno, "setgroups");
    }
    if (setresgid(p->gid, p->gid, p->gid) < 0) bl_fail(errno, "setgid %u", p->gid);
    if (setresuid(p->uid, p->uid, p->uid) < 0) bl_fail(errno, "setuid %u", p->uid);
    if (p->has_caps) {
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) bl_fail(errno, "clear keepcaps");
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        for (int i = 0; i < 2; i++) {
            data[i].effective = (uint32_t)(p->cap_effective >> (32 * i));
            data[i].permitted = (uint32_t)(p->cap_permitted >> (32 * i));
            data[i].inheritable = (uint32_t)(p->cap_inheritable >> (32 * i));
        }
        if (syscall(SYS_capset, &hdr, data) < 0) bl_fail(errno, "set capabilities");
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
            bl_fail(errno, "clear ambient capabilities");
        for (int c = 0; c < 64; c++) {
            if (!(p->cap_ambient & (1ULL << c))) continue;
            // an ambient cap must also be permitted and inheritable: like runc, one that is not is skipped
            if (!(p->cap_inheritable & (1ULL << c)) || !(p->cap_permitted & (1ULL << c))) continue;
            if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) bl_fail(errno, "raise ambient capability %d", c);
        }
    }
}

// Closes every fd except 0-2, the preserved ones and those in keep[] (really closed, not CLOEXEC:
// a leaked directory fd must not be reachable as /proc/self/fd/N when cwd is resolved).
static void close_other_fds(const struct bl_process *p, const int *keep, int nkeep) {
    int top = 3 + p->preserve_fds;
    int ks[8];
    int n = 0;
    for (int i = 0; i < nkeep; i++) if (keep[i] >= top) ks[n++] = keep[i];
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (ks[j] < ks[i]) { int t = ks[i]; ks[i] = ks[j]; ks[j] = t; }
    unsigned int from = (unsigned int)top;
    for (int i = 0; i < n; i++) {
        if ((unsigned int)ks[i] > from) bl_close_range(from, (unsigned int)ks[i] - 1, 0);
        from = (unsigned int)ks[i] + 1;
    }
    bl_close_range(from, ~0U, 0);
    for (int fd = 3; fd < top; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0) fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
}

static const char *env_get(char *const *envp, const char *name) {
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=') return *envp + n + 1;
    return NULL;
}

// PATH lookup with the container's PATH (not the runtime's), before we report ready.
static void lookup(const struct bl_process *p, char *out, size_t outlen) {
    const char *name = p->argv[0];
    if (!name || !*name) bl_fail(EINVAL, "exec: empty process.args[0]");
    if (strchr(name, '/')) {
        struct stat st;
        if (stat(name, &st) < 0) bl_fail(errno, "exec: \"%s\"", name);
        if (S_ISDIR(st.st_mode)) bl_fail(EACCES, "exec: \"%s\": is a directory", name);
        snprintf(out, outlen, "%s", name);
        return;
    }
    const char *path = env_get(p->envp, "PATH");
    if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    const char *s = path;
    int denied = 0;
    for (;;) {
        const char *e = strchr(s, ':');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        char cand[PATH_MAX];
        if (len == 0) snprintf(cand, sizeof cand, "./%s", name);
        else snprintf(cand, sizeof cand, "%.*s/%s", (int)len, s, name);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(cand, X_OK) == 0 || getuid() == 0) {
                snprintf(out, outlen, "%s", cand);
                return;
            }
            denied = 1;
        }
        if (!e) break;
        s = e + 1;
    }
    if (denied) bl_fail(EACCES, "exec: \"%s\"", name);
    bl_fail(0, "exec: \"%s\": executable file not found in $PATH", name);
}

void bl_setup_process(const struct bl_process *p, const struct bl_hook *start_hooks, int nstart_hooks,
                      const char *state) {
    if (p->new_keyring) {
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS && errno != EACCES &&
            errno != EPERM && errno != EDQUOT)
            bl_fail(errno, "join session keyring");
    }
    if (p->terminal) {
        if (p->console_socket < 0) bl_fail(EINVAL, "terminal requested but no console socket");
        setup_console(p);
    }
    if (p->ioprio_set && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, p->ioprio) < 0)
        bl_fail(errno, "set io priority");
    apply_rlimits(p);

    int keep[2] = { p->sync_fd, p->exec_fifo_fd };
    close_other_fds(p, keep, p->exec_fifo_fd >= 0 ? 2 : 1);

    // without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the capabilities go (as runc)
    if (p->seccomp && !p->no_new_privs) bl_seccomp_apply(p->seccomp, p->sync_fd);
    apply_user_and_caps(p);
    if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) bl_fail(errno, "set no_new_privs");

    const char *cwd = p->cwd && *p->cwd ? p->cwd : "/";
    if (chdir(cwd) < 0) bl_fail(errno, "chdir to cwd (\"%s\") set in config.json", cwd);
    char real[PATH_MAX];
    if (!getcwd(real, sizeof real) || real[0] != '/')
        bl_fail(EPERM, "cwd \"%s\" is outside the container's root", cwd);

    char exe[PATH_MAX];
    lookup(p, exe, sizeof exe);
    for (int i = 0; i < nstart_hooks; i++) {
        char err[768];
        if (bl_run_hook(&start_hooks[i], state ? state : "{}", err, sizeof err) != 0)
            bl_fail(0, "startContainer hook #%d: %s", i, err);
    }
    umask(p->umask >= 0 ? (mode_t)p->umask : 022);
    // otherwise as late as possible: only the ready message, the exec fifo and execve come after it
    if (p->seccomp && p->no_new_privs) bl_seccomp_apply(p->seccomp, p->sync_fd);

    if (bl_msg_send(p->sync_fd, BL_MSG_READY, 0, 0, NULL) < 0) _exit(1);
    if (p->exec_fifo_fd >= 0) {
        char fp[64];
        snprintf(fp, sizeof fp, "/proc/self/fd/%d", p->exec_fifo_fd);
        int w;
        do { w = open(fp, O_WRONLY | O_CLOEXEC); } while (w < 0 && errno == EINTR);
        if (w < 0) bl_fail(errno, "open exec fifo");
        if (write(w, "0", 1) != 1) bl_fail(errno, "write exec fifo");
        close(w);
        close(p->exec_fifo_fd);
    }
    execve(exe, p->argv, p->envp);
    bl_fail(errno, "exec %s", exe);
}
