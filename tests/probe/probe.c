/* probe: the container process of berth's integration tests and benches.
 *
 * One static binary (gcc -static -O2 -o probe probe.c), in the style of crun's tests/init.c: argv[1] names a
 * check, the result goes to stdout as plain text, exit 0 on success; on failure a message "probe: CMD: ..." goes
 * to stderr and the exit status is non-zero. Static so that it runs in any rootfs. Usage: probe help.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static const char *cmd = "probe";

static const char *errno_name(int e) {
    switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD) E(EAGAIN)
    E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
    E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE)
    E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(EOPNOTSUPP) E(ENODATA)
#undef E
    default: return "E?";
    }
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "probe: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* "open PATH: ENOENT (No such file or directory)"; the errno name is what tests match on. */
static void die_errno(const char *op, const char *path) __attribute__((noreturn));
static void die_errno(const char *op, const char *path) {
    int e = errno;
    die("%s %s: %s (%s)", op, path, errno_name(e), strerror(e));
}

static void need(int argc, int n, const char *usage) {
    if (argc < n) die("usage: probe %s", usage);
}

static void cat_fd(int fd, const char *path) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die_errno("read", path);
        if (n == 0) return;
        fwrite(buf, 1, (size_t)n, stdout);
    }
}

static void cat_path(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die_errno("open", path);
    cat_fd(fd, path);
    close(fd);
}

/* Reads a whole small file into a static buffer (NUL terminated). */
static char *slurp(const char *path) {
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die_errno("open", path);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die_errno("read", path);
        if (n == 0 || len + (size_t)n >= sizeof buf - 1) { len += n > 0 ? (size_t)n : 0; break; }
        len += (size_t)n;
    }
    buf[len] = 0;
    close(fd);
    return buf;
}

static const char *sig_name(int s) {
    static char other[16];
    switch (s) {
#define S(x) case x: return #x;
    S(SIGHUP) S(SIGINT) S(SIGQUIT) S(SIGILL) S(SIGTRAP) S(SIGABRT) S(SIGBUS) S(SIGFPE) S(SIGUSR1) S(SIGSEGV)
    S(SIGUSR2) S(SIGPIPE) S(SIGALRM) S(SIGTERM) S(SIGSTKFLT) S(SIGCHLD) S(SIGCONT) S(SIGTSTP) S(SIGTTIN)
    S(SIGTTOU) S(SIGURG) S(SIGXCPU) S(SIGXFSZ) S(SIGVTALRM) S(SIGPROF) S(SIGWINCH) S(SIGIO) S(SIGPWR) S(SIGSYS)
#undef S
    default: snprintf(other, sizeof other, "SIG%d", s); return other;
    }
}

static const struct { const char *name; int res; } rlimits[] = {
    {"CPU", RLIMIT_CPU}, {"FSIZE", RLIMIT_FSIZE}, {"DATA", RLIMIT_DATA}, {"STACK", RLIMIT_STACK},
    {"CORE", RLIMIT_CORE}, {"RSS", RLIMIT_RSS}, {"NPROC", RLIMIT_NPROC}, {"NOFILE", RLIMIT_NOFILE},
    {"MEMLOCK", RLIMIT_MEMLOCK}, {"AS", RLIMIT_AS}, {"LOCKS", RLIMIT_LOCKS}, {"SIGPENDING", RLIMIT_SIGPENDING},
    {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE}, {"RTPRIO", RLIMIT_RTPRIO}, {"RTTIME", RLIMIT_RTTIME},
};

static void print_limit(rlim_t v) {
    if (v == RLIM_INFINITY) printf("unlimited");
    else printf("%llu", (unsigned long long)v);
}

/* Unescapes mountinfo's octal escapes (\040 for space) in place. */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; ) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
            *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 4;
        } else *w++ = *r++;
    }
    *w = 0;
}

/* mount-options PATH: "MOUNT_OPTS,SUPER_OPTS" of the mount that holds PATH (the last, i.e. topmost, entry in
 * mountinfo whose mount point is the longest prefix of PATH's real path). */
static int mount_options(const char *path) {
    char real[PATH_MAX];
    if (!realpath(path, real)) die_errno("realpath", path);
    char *text = slurp("/proc/self/mountinfo");
    char best[8192] = "";
    size_t best_len = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char copy[8192];
        snprintf(copy, sizeof copy, "%s", line);
        char *f[7] = {0};
        char *save = NULL, *tok = strtok_r(copy, " ", &save);
        int i = 0;
        for (; tok && i < 6; tok = strtok_r(NULL, " ", &save)) f[i++] = tok;  /* id parent dev root mnt opts */
        if (i < 6) continue;
        while (tok && strcmp(tok, "-") != 0) tok = strtok_r(NULL, " ", &save); /* optional fields */
        if (!tok) continue;
        strtok_r(NULL, " ", &save);                                             /* fstype */
        strtok_r(NULL, " ", &save);                                             /* source */
        char *super = strtok_r(NULL, " ", &save);
        char mnt[PATH_MAX];
        snprintf(mnt, sizeof mnt, "%s", f[4]);
        unescape(mnt);
        size_t n = strlen(mnt);
        int covers = strcmp(mnt, "/") == 0 ||
                     (strncmp(real, mnt, n) == 0 && (real[n] == 0 || real[n] == '/'));
        if (!covers) continue;
        if (strcmp(mnt, "/") == 0) n = 0;
        if (n >= best_len) {
            best_len = n;
            snprintf(best, sizeof best, "%s,%s", f[5], super ? super : "");
        }
    }
    if (!best[0]) die("no mount holds %s", real);
    printf("%s\n", best);
    return 0;
}

static int cmd_stat(const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0) die_errno("lstat", path);
    const char *type = S_ISREG(st.st_mode) ? "reg" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "lnk"
                     : S_ISCHR(st.st_mode) ? "chr" : S_ISBLK(st.st_mode) ? "blk" : S_ISFIFO(st.st_mode) ? "fifo"
                     : S_ISSOCK(st.st_mode) ? "sock" : "unknown";
    printf("%s %04o %u %u", type, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        printf(" %u:%u", major(st.st_rdev), minor(st.st_rdev));
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n >= 0) { target[n] = 0; printf(" -> %s", target); }
    }
    printf("\n");
    return 0;
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cmd_ls(const char *path) {
    DIR *d = opendir(path);
    if (!d) die_errno("opendir", path);
    static char *names[65536];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 65536; ) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmpstr);
    for (size_t i = 0; i < n; i++) printf("%s\n", names[i]);
    return 0;
}

/* fds: "FD TARGET" for each open fd, without the one opendir uses. */
static int cmd_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) die_errno("opendir", "/proc/self/fd");
    int self = dirfd(d);
    int fds[4096];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096; ) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd != self) fds[n++] = fd;
    }
    for (size_t i = 1; i < n; i++)  /* insertion sort: readdir order is not numeric */
        for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--) { int t = fds[j]; fds[j] = fds[j - 1]; fds[j - 1] = t; }
    for (size_t i = 0; i < n; i++) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fds[i]);
        ssize_t len = readlinkat(self, link + strlen("/proc/self/fd/"), target, sizeof target - 1);
        if (len < 0) snprintf(target, sizeof target, "?%s", errno_name(errno));
        else target[len] = 0;
        printf("%d %s\n", fds[i], target);
    }
    closedir(d);
    return 0;
}

/* exe-write: opening our own executable or pid 1's for writing must fail (CVE-2019-5736 class). One line per
 * path, "PATH: ERRNO" or "PATH: opened"; exit 0 either way, the test decides. */
static int cmd_exe_write(void) {
    const char *paths[] = {"/proc/self/exe", "/proc/1/exe"};
    for (size_t i = 0; i < 2; i++) {
        int fd = open(paths[i], O_WRONLY | O_CLOEXEC);
        if (fd >= 0) { printf("%s: opened\n", paths[i]); close(fd); }
        else printf("%s: %s\n", paths[i], errno_name(errno));
    }
    return 0;
}

/* exe-catch SECONDS OUT: the CVE-2019-5736 attack. For SECONDS, scans /proc for new processes and opens the
 * executable of any that is neither this probe nor busybox (a runtime process that entered the container:
 * exec's child before its execve) read-only; then, once they are gone, tries to reopen each for writing
 * through /proc/self/fd/N (retrying up to 10 s while it is busy). Writes "caught N" and one "writable" or "ERRNO" line per catch to OUT. */
static int cmd_exe_catch(int seconds, const char *out) {
    struct stat self, bb;
    if (stat("/proc/self/exe", &self) < 0) die_errno("stat", "/proc/self/exe");
    int have_bb = stat("/bin/busybox", &bb) == 0;
    int fds[64];
    int n = 0;
    pid_t seen[4096];
    int nseen = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= seconds) break;
        DIR *d = opendir("/proc");
        if (!d) die_errno("opendir", "/proc");
        struct dirent *e;
        while ((e = readdir(d))) {
            pid_t pid = atoi(e->d_name);
            if (pid <= 1 || pid == getpid()) continue;
            int known = 0;
            for (int i = 0; i < nseen; i++) if (seen[i] == pid) { known = 1; break; }
            if (known) continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            struct stat st;
            if (fstat(fd, &st) == 0 && !(st.st_ino == self.st_ino && st.st_dev == self.st_dev) &&
                !(have_bb && st.st_ino == bb.st_ino && st.st_dev == bb.st_dev) && n < 64) {
                fds[n++] = fd;
            } else {
                close(fd);
            }
            if (nseen < 4096) seen[nseen++] = pid;
        }
        closedir(d);
    }
    FILE *f = fopen(out, "w");
    if (!f) die_errno("fopen", out);
    fprintf(f, "caught %d\n", n);
    for (int i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        // the attacker waits for the runtime to be gone: while anything still runs the binary, ETXTBSY
        int w = -1;
        for (int tries = 0; tries < 200; tries++) {
            w = open(path, O_WRONLY | O_CLOEXEC);
            if (w >= 0 || errno != ETXTBSY) break;
            usleep(50000);
        }
        if (w >= 0) { fprintf(f, "writable\n"); close(w); }
        else fprintf(f, "%s\n", errno_name(errno));
    }
    fclose(f);
    return 0;
}

/* signal-wait [COUNT]: blocks every catchable signal, prints "ready", then one signal name per line; exits 0
 * after COUNT signals (default: never). */
static int cmd_signal_wait(int count) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    printf("ready\n");
    fflush(stdout);
    for (int seen = 0; count <= 0 || seen < count; ) {
        siginfo_t info;
        int s = sigwaitinfo(&all, &info);
        if (s < 0) { if (errno == EINTR) continue; die_errno("sigwaitinfo", "-"); }
        printf("%s\n", sig_name(s));
        fflush(stdout);
        seen++;
    }
    return 0;
}

static int usage(void) {
    fputs("usage: probe true | exit N | echo ARGS... | sleep SECONDS | pause | ns TYPE... | status FIELD | ids\n"
          "  | hostname | domainname | cwd | env [NAME] | rlimit NAME | umask | mounts | mount-options PATH\n"
          "  | stat PATH | cat PATH | write PATH TEXT | ls PATH | fds | isatty FD | pid | oom-score-adj | ioprio\n"
          "  | sysctl NAME | exe-write | exe-catch SECONDS OUT | signal-wait [COUNT] | tty-size | exec PATH ARGS...\n", stderr);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    cmd = argv[1];
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    int rc = 0;

    if (!strcmp(cmd, "true")) {
    } else if (!strcmp(cmd, "exit")) {
        need(argc, 3, "exit N");
        return atoi(argv[2]);
    } else if (!strcmp(cmd, "echo")) {
        for (int i = 2; i < argc; i++) printf("%s%s", i > 2 ? " " : "", argv[i]);
        printf("\n");
    } else if (!strcmp(cmd, "sleep")) {
        need(argc, 3, "sleep SECONDS");
        double s = atof(argv[2]);
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    } else if (!strcmp(cmd, "pause")) {
        for (;;) pause();
    } else if (!strcmp(cmd, "ns")) {
        need(argc, 3, "ns TYPE...");
        for (int i = 2; i < argc; i++) {
            char path[128], target[256];
            snprintf(path, sizeof path, "/proc/self/ns/%s", argv[i]);
            ssize_t n = readlink(path, target, sizeof target - 1);
            if (n < 0) die_errno("readlink", path);
            target[n] = 0;
            printf("%s\n", target);
        }
    } else if (!strcmp(cmd, "status")) {
        need(argc, 3, "status FIELD");
        char *text = slurp("/proc/self/status");
        size_t n = strlen(argv[2]);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            if (strncmp(line, argv[2], n) == 0 && line[n] == ':') {
                char *v = line + n + 1;
                while (*v == ' ' || *v == '\t') v++;
                printf("%s\n", v);  /* the value only, e.g. "0000000000000000" for CapInh */
                goto out;
            }
        }
        die("no field %s in /proc/self/status", argv[2]);
    } else if (!strcmp(cmd, "ids")) {
        gid_t groups[NGROUPS_MAX];
        int n = getgroups(NGROUPS_MAX, groups);
        if (n < 0) die_errno("getgroups", "-");
        printf("uid=%u gid=%u euid=%u egid=%u groups=", getuid(), getgid(), geteuid(), getegid());
        for (int i = 0; i < n; i++) printf("%s%u", i ? "," : "", (unsigned)groups[i]);
        printf("\n");
    } else if (!strcmp(cmd, "hostname") || !strcmp(cmd, "domainname")) {
        struct utsname u;
        if (uname(&u) < 0) die_errno("uname", "-");
        printf("%s\n", cmd[0] == 'h' ? u.nodename : u.domainname);
    } else if (!strcmp(cmd, "cwd")) {
        char buf[PATH_MAX];
        if (!getcwd(buf, sizeof buf)) die_errno("getcwd", ".");
        printf("%s\n", buf);
    } else if (!strcmp(cmd, "env")) {
        if (argc >= 3) {
            const char *v = getenv(argv[2]);
            if (!v) die("%s is not set", argv[2]);
            printf("%s\n", v);
        } else {
            for (char **e = environ; *e; e++) printf("%s\n", *e);
        }
    } else if (!strcmp(cmd, "rlimit")) {
        need(argc, 3, "rlimit NAME");
        const char *name = argv[2];
        if (!strncmp(name, "RLIMIT_", 7)) name += 7;
        for (size_t i = 0; i < sizeof rlimits / sizeof *rlimits; i++) {
            if (strcasecmp(name, rlimits[i].name)) continue;
            struct rlimit rl;
            if (getrlimit(rlimits[i].res, &rl) < 0) die_errno("getrlimit", name);
            print_limit(rl.rlim_cur); printf(" "); print_limit(rl.rlim_max); printf("\n");
            goto out;
        }
        die("unknown rlimit %s", argv[2]);
    } else if (!strcmp(cmd, "umask")) {
        mode_t m = umask(0);
        umask(m);
        printf("%04o\n", (unsigned)m);
    } else if (!strcmp(cmd, "mounts")) {
        cat_path("/proc/self/mountinfo");
    } else if (!strcmp(cmd, "mount-options")) {
        need(argc, 3, "mount-options PATH");
        rc = mount_options(argv[2]);
    } else if (!strcmp(cmd, "stat")) {
        need(argc, 3, "stat PATH");
        rc = cmd_stat(argv[2]);
    } else if (!strcmp(cmd, "cat")) {
        need(argc, 3, "cat PATH");
        cat_path(argv[2]);
    } else if (!strcmp(cmd, "write")) {
        need(argc, 4, "write PATH TEXT");
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) die_errno("open", argv[2]);
        size_t len = strlen(argv[3]);
        if (write(fd, argv[3], len) != (ssize_t)len) die_errno("write", argv[2]);
        if (close(fd) < 0) die_errno("close", argv[2]);
    } else if (!strcmp(cmd, "ls")) {
        need(argc, 3, "ls PATH");
        rc = cmd_ls(argv[2]);
    } else if (!strcmp(cmd, "fds")) {
        fflush(stdout);
        rc = cmd_fds();
    } else if (!strcmp(cmd, "isatty")) {
        need(argc, 3, "isatty FD");
        printf("%s\n", isatty(atoi(argv[2])) ? "yes" : "no");
    } else if (!strcmp(cmd, "pid")) {
        printf("pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
    } else if (!strcmp(cmd, "oom-score-adj")) {
        cat_path("/proc/self/oom_score_adj");
    } else if (!strcmp(cmd, "ioprio")) {
        long v = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
        if (v < 0) die_errno("ioprio_get", "self");
        printf("class=%ld level=%ld\n", v >> 13, v & 0x1fff);
    } else if (!strcmp(cmd, "sysctl")) {
        need(argc, 3, "sysctl NAME");
        char path[512];
        int n = snprintf(path, sizeof path, "/proc/sys/");
        for (const char *p = argv[2]; *p && n < (int)sizeof path - 1; p++) path[n++] = *p == '.' ? '/' : *p;
        path[n] = 0;
        cat_path(path);
    } else if (!strcmp(cmd, "exe-catch") && argc == 4) {
        return cmd_exe_catch(atoi(argv[2]), argv[3]);
    } else if (!strcmp(cmd, "exe-write")) {
        rc = cmd_exe_write();
    } else if (!strcmp(cmd, "signal-wait")) {
        rc = cmd_signal_wait(argc >= 3 ? atoi(argv[2]) : 0);
    } else if (!strcmp(cmd, "tty-size")) {
        struct winsize ws;
        if (ioctl(0, TIOCGWINSZ, &ws) < 0) die_errno("ioctl TIOCGWINSZ", "fd 0");
        printf("%u %u\n", ws.ws_row, ws.ws_col);
    } else if (!strcmp(cmd, "exec")) {
        need(argc, 3, "exec PATH ARGS...");
        fflush(stdout);
        execvp(argv[2], argv + 2);  /* a name without '/' is looked up in PATH, like the runtime's args[0] */
        die_errno("exec", argv[2]);
    } else if (!strcmp(cmd, "help")) {
        usage();
        return 0;
    } else {
        return usage();
    }
out:
    if (fflush(stdout) != 0) die_errno("write", "stdout");
    return rc;
}
