// The container's first child, its init and exec'd processes: namespaces, handshake, exec.
// Runs after fork in a single-threaded process: straight-line syscalls on data prepared by Swift.
// Every failure is sent to the parent as one BL_MSG_ERROR ("operation object: cause") and exits 1.
#define _GNU_SOURCE
#include "init.h"
#include "sys.h"
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int bl_msg_send(int fd, int type, int err, int64_t value, const char *text) {
    struct bl_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.err = err;
    m.value = value;
    if (text) {
        strncpy(m.text, text, sizeof m.text - 1);
    }
    ssize_t r;
    do { r = send(fd, &m, sizeof m, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof m ? 0 : -1;
}

int bl_msg_recv(int fd, struct bl_msg *m) {
    ssize_t r;
    do { r = recv(fd, m, sizeof *m, 0); } while (r < 0 && errno == EINTR);
    if (r == 0) { errno = 0; return -1; }
    if (r != (ssize_t)sizeof *m) { if (r > 0) errno = EBADMSG; return -1; }
    m->text[sizeof m->text - 1] = 0;
    return 0;
}

int bl_sync_fd = -1;

void bl_fail(int err, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (err && n >= 0 && (size_t)n < sizeof buf) {
        snprintf(buf + n, sizeof buf - (size_t)n, ": %s", strerror(err));
    }
    if (bl_sync_fd >= 0) bl_msg_send(bl_sync_fd, BL_MSG_ERROR, err, 0, buf);
    _exit(1);
}

// Waits for BL_MSG_GO; exits quietly when the parent went away or told us to stop.
static void wait_go(const char *stage) {
    struct bl_msg m;
    if (bl_msg_recv(bl_sync_fd, &m) < 0) _exit(1);
    if (m.type != BL_MSG_GO) bl_fail(0, "%s: unexpected message %d from the runtime", stage, m.type);
}

static pid_t clone_parent(void) {
    return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
}

static const char *ns_name(int type) {
    switch (type) {
    case CLONE_NEWUSER: return "user";
    case CLONE_NEWNS: return "mount";
    case CLONE_NEWPID: return "pid";
    case CLONE_NEWNET: return "network";
    case CLONE_NEWIPC: return "ipc";
    case CLONE_NEWUTS: return "uts";
    case CLONE_NEWCGROUP: return "cgroup";
    case CLONE_NEWTIME: return "time";
    default: return "unknown";
    }
}

static void join_namespaces(const int *fds, const int *types, int n, int users) {
    for (int i = 0; i < n; i++) {
        if ((types[i] == CLONE_NEWUSER) != users) continue;
        if (setns(fds[i], types[i]) < 0) bl_fail(errno, "join %s namespace", ns_name(types[i]));
        close(fds[i]);
    }
}

static void write_file(const char *path, const char *data) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) bl_fail(errno, "open %s", path);
    size_t len = strlen(data);
    ssize_t r = write(fd, data, len);
    if (r < 0) bl_fail(errno, "write %s", path);
    if ((size_t)r != len) bl_fail(EIO, "write %s", path);
    close(fd);
}

// ---- the state JSON for in-container hooks, received from the parent in chunks

static char *hook_state;

static void receive_state(void) {
    size_t len = 0, cap = 4096;
    hook_state = malloc(cap);
    if (!hook_state) bl_fail(ENOMEM, "receive state");
    hook_state[0] = 0;
    for (;;) {
        struct bl_msg m;
        if (bl_msg_recv(bl_sync_fd, &m) < 0) _exit(1);
        if (m.type != BL_MSG_STATE) bl_fail(0, "receive state: unexpected message %d", m.type);
        size_t n = strlen(m.text);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(hook_state, cap);
            if (!p) bl_fail(ENOMEM, "receive state");
            hook_state = p;
        }
        memcpy(hook_state + len, m.text, n + 1);
        len += n;
        if (m.value == 1) break;
    }
}

static void run_hooks(const struct bl_hook *hooks, int n, const char *kind) {
    for (int i = 0; i < n; i++) {
        char err[768];
        if (bl_run_hook(&hooks[i], hook_state ? hook_state : "{}", err, sizeof err) != 0)
            bl_fail(0, "%s hook #%d: %s", kind, i, err);
    }
}

// ---- init (the container's pid 1)

static void init_main(const struct bl_init_config *cfg) {
    const struct bl_process *p = &cfg->process;
    umask(0);
    if (p->setsid && setsid() < 0) bl_fail(errno, "setsid");
    // mounts and devices first, while the runtime places us in our cgroup and runs createRuntime hooks
    // (those come before pivot_root, which waits for the go-ahead)
    int rootfd = -1;
    if (cfg->has_mount_ns) rootfd = bl_prepare_rootfs(cfg);
    if (cfg->wants_hook_state) receive_state();
    wait_go("init");

    if (cfg->has_mount_ns) {
        run_hooks(cfg->create_container_hooks, cfg->ncreate_container_hooks, "createContainer");
        bl_enter_rootfs(cfg, rootfd);
    } else {
        if (chroot(cfg->rootfs) < 0) bl_fail(errno, "chroot %s", cfg->rootfs);
        if (chdir("/") < 0) bl_fail(errno, "chdir /");
    }
    if (cfg->hostname && sethostname(cfg->hostname, strlen(cfg->hostname)) < 0)
        bl_fail(errno, "sethostname %s", cfg->hostname);
    if (cfg->domainname && setdomainname(cfg->domainname, strlen(cfg->domainname)) < 0)
        bl_fail(errno, "setdomainname %s", cfg->domainname);
    for (int i = 0; i < cfg->nsysctl; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "/proc/sys/%s", cfg->sysctl_keys[i]);
        for (char *c = path + 10; *c; c++) if (*c == '.') *c = '/';
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) bl_fail(errno, "set sysctl %s", cfg->sysctl_keys[i]);
        size_t len = strlen(cfg->sysctl_values[i]);
        if (write(fd, cfg->sysctl_values[i], len) != (ssize_t)len)
            bl_fail(errno, "set sysctl %s=%s", cfg->sysctl_keys[i], cfg->sysctl_values[i]);
        close(fd);
    }
    if (cfg->has_mount_ns) bl_finish_rootfs(cfg);
    bl_setup_process(p, cfg->start_container_hooks, cfg->nstart_container_hooks, hook_state);
}

// The runtime blocks signals (its foreground forwarder); its children start from a clean slate.
static void reset_signals(void) {
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        sigaction(s, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void child1_main(const struct bl_init_config *cfg) {
    reset_signals();
    bl_sync_fd = cfg->process.sync_fd;
    if (cfg->process.parent_fd >= 0) close(cfg->process.parent_fd);
    join_namespaces(cfg->join_fds, cfg->join_types, cfg->njoin, 1);
    if (cfg->new_userns && unshare(CLONE_NEWUSER) < 0) bl_fail(errno, "create user namespace");
    if (bl_msg_send(bl_sync_fd, BL_MSG_USERNS_READY, 0, cfg->new_userns, NULL) < 0) _exit(1);
    wait_go("namespaces");
    if (cfg->new_userns) {
        // become root of the new user namespace (the parent wrote the maps)
        if (setresgid(0, 0, 0) < 0) bl_fail(errno, "setresgid 0 in user namespace (is gid 0 mapped?)");
        if (setresuid(0, 0, 0) < 0) bl_fail(errno, "setresuid 0 in user namespace (is uid 0 mapped?)");
        // the uid change made us non-dumpable, which makes /proc/self root-owned: we need
        // /proc/self/timens_offsets, and the init its /proc/self/fd/N of the exec fifo
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    join_namespaces(cfg->join_fds, cfg->join_types, cfg->njoin, 0);
    if (cfg->new_ns_flags && unshare(cfg->new_ns_flags) < 0) {
        int e = errno;
        for (int b = 0; b < 31; b++) {
            int f = 1 << b;
            if ((cfg->new_ns_flags & f) && unshare(f) < 0) bl_fail(errno, "create %s namespace", ns_name(f));
        }
        bl_fail(e, "create namespaces");
    }
    if (cfg->timens_offsets) write_file("/proc/self/timens_offsets", cfg->timens_offsets);
    pid_t pid = clone_parent();
    if (pid < 0) bl_fail(errno, "clone init");
    if (pid == 0) {
        init_main(cfg);
        _exit(1);
    }
    bl_msg_send(bl_sync_fd, BL_MSG_INIT_PID, 0, pid, NULL);
    _exit(0);
}

pid_t bl_spawn_init(const struct bl_init_config *cfg) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    child1_main(cfg);
    _exit(1);
}

// ---- exec into a running container

static void exec_main(const struct bl_exec_config *cfg) {
    const struct bl_process *p = &cfg->process;
    umask(0);
    if (p->setsid && setsid() < 0) bl_fail(errno, "setsid");
    wait_go("exec");
    bl_setup_process(p, NULL, 0, NULL);
}

pid_t bl_spawn_exec(const struct bl_exec_config *cfg) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    reset_signals();
    bl_sync_fd = cfg->process.sync_fd;
    if (cfg->process.parent_fd >= 0) close(cfg->process.parent_fd);
    join_namespaces(cfg->ns_fds, cfg->ns_types, cfg->nns, 1);
    for (int i = 0; i < cfg->nns; i++) {
        if (cfg->ns_types[i] == CLONE_NEWUSER) {
            if (setresgid(0, 0, 0) < 0) bl_fail(errno, "setresgid 0 in user namespace");
            if (setresuid(0, 0, 0) < 0) bl_fail(errno, "setresuid 0 in user namespace");
        }
    }
    join_namespaces(cfg->ns_fds, cfg->ns_types, cfg->nns, 0);
    pid_t child = clone_parent();
    if (child < 0) bl_fail(errno, "clone exec process");
    if (child == 0) {
        exec_main(cfg);
        _exit(1);
    }
    bl_msg_send(bl_sync_fd, BL_MSG_INIT_PID, 0, child, NULL);
    _exit(0);
}

// ---- hooks

int bl_run_hook(const struct bl_hook *hook, const char *state, char *err, size_t errlen) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0) { snprintf(err, errlen, "pipe: %s", strerror(errno)); return -1; }
    if (pipe2(out, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(in[0]); close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        char *empty[] = { NULL };
        char *argv0[] = { (char *)hook->path, NULL };
        execve(hook->path, hook->argv && hook->argv[0] ? hook->argv : argv0, hook->envp ? hook->envp : empty);
        dprintf(2, "exec %s: %s", hook->path, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    // the hook may not read stdin: a full pipe or EPIPE is not an error (SIGPIPE restored after,
    // so an ignored SIGPIPE never reaches the container's process)
    struct sigaction ign = { .sa_handler = SIG_IGN }, oldpipe;
    sigaction(SIGPIPE, &ign, &oldpipe);
    size_t len = strlen(state), off = 0;
    int fl = fcntl(in[1], F_GETFL);
    fcntl(in[1], F_SETFL, fl | O_NONBLOCK);
    while (off < len) {
        ssize_t w = write(in[1], state + off, len - off);
        if (w < 0) { if (errno == EINTR) continue; break; }
        off += (size_t)w;
    }
    close(in[1]);
    sigaction(SIGPIPE, &oldpipe, NULL);
    int pidfd = bl_pidfd_open(pid, 0);
    char outbuf[512];
    size_t outlen = 0;
    int timed_out = 0;
    long long deadline_ms = hook->timeout > 0 ? (long long)hook->timeout * 1000 : -1;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int out_open = 1;
    for (;;) {
        struct pollfd pf[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = out_open ? out[0] : -1, .events = POLLIN } };
        int wait_ms = -1;
        if (deadline_ms >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long el = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
            wait_ms = el >= deadline_ms ? 0 : (int)(deadline_ms - el);
        }
        int r = poll(pf, 2, wait_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) { timed_out = 1; break; }
        if (pf[1].revents) {
            char tmp[256];
            ssize_t n = read(out[0], tmp, sizeof tmp);
            if (n <= 0) out_open = 0;
            else for (ssize_t i = 0; i < n; i++) {
                if (outlen < sizeof outbuf - 1) outbuf[outlen++] = tmp[i];
            }
        }
        if (pf[0].revents) break;
    }
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    bl_waitpid(pid, &status, 0);
    if (pidfd >= 0) close(pidfd);
    // collect what is left of its output
    for (;;) {
        char tmp[256];
        int fl2 = fcntl(out[0], F_GETFL);
        fcntl(out[0], F_SETFL, fl2 | O_NONBLOCK);
        ssize_t n = read(out[0], tmp, sizeof tmp);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) if (outlen < sizeof outbuf - 1) outbuf[outlen++] = tmp[i];
    }
    close(out[0]);
    outbuf[outlen] = 0;
    while (outlen && (outbuf[outlen - 1] == '\n' || outbuf[outlen - 1] == ' ')) outbuf[--outlen] = 0;
    if (timed_out) {
        snprintf(err, errlen, "%s: timed out after %d s", hook->path, hook->timeout);
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFEXITED(status))
        snprintf(err, errlen, "%s: exit status %d%s%s", hook->path, WEXITSTATUS(status), outlen ? ", output: " : "", outbuf);
    else
        snprintf(err, errlen, "%s: killed by signal %d%s%s", hook->path, WTERMSIG(status), outlen ? ", output: " : "", outbuf);
    return -1;
}
