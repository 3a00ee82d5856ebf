// In C because libseccomp is a C library and its filter is loaded between fork and exec: the filter is
// built in the runtime before the fork (errors name the profile's field), loaded in the container's process.
#define _GNU_SOURCE
#include "bl_seccomp.h"
#include "internal.h"
#include "sys.h"
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint32_t action_value(uint32_t action, uint32_t errno_ret) {
    switch (action) {
    case BL_SECCOMP_ACT_KILL_THREAD: return SCMP_ACT_KILL_THREAD;
    case BL_SECCOMP_ACT_KILL_PROCESS: return SCMP_ACT_KILL_PROCESS;
    case BL_SECCOMP_ACT_TRAP: return SCMP_ACT_TRAP;
    case BL_SECCOMP_ACT_ERRNO: return SCMP_ACT_ERRNO(errno_ret);
    case BL_SECCOMP_ACT_TRACE: return SCMP_ACT_TRACE(errno_ret);
    case BL_SECCOMP_ACT_LOG: return SCMP_ACT_LOG;
    case BL_SECCOMP_ACT_ALLOW: return SCMP_ACT_ALLOW;
    case BL_SECCOMP_ACT_NOTIFY: return SCMP_ACT_NOTIFY;
    default: return SCMP_ACT_KILL_THREAD;
    }
}

// The kernel knows a filter flag when seccomp(SET_MODE_FILTER, flag, NULL) fails with EFAULT (not EINVAL).
static int kernel_has_flag(unsigned int flag) {
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL);
    return r < 0 && errno == EFAULT;
}

uint32_t bl_seccomp_supported_flags(void) {
    unsigned int api = seccomp_api_get();
    uint32_t f = 0;
    if (api >= 2 && kernel_has_flag(SECCOMP_FILTER_FLAG_TSYNC)) f |= BL_SECCOMP_FLAG_TSYNC;
    if (api >= 3 && kernel_has_flag(SECCOMP_FILTER_FLAG_LOG)) f |= BL_SECCOMP_FLAG_LOG;
    if (api >= 4 && kernel_has_flag(SECCOMP_FILTER_FLAG_SPEC_ALLOW)) f |= BL_SECCOMP_FLAG_SPEC_ALLOW;
    // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs libseccomp 2.6 (SCMP_FLTATR_CTL_WAITKILL)
    return f;
}

void bl_seccomp_version(char *buf, size_t len) {
    const struct scmp_version *v = seccomp_version();
    snprintf(buf, len, "%u.%u.%u", v->major, v->minor, v->micro);
}

static const char *flag_name(uint32_t f) {
    switch (f) {
    case BL_SECCOMP_FLAG_TSYNC: return "SECCOMP_FILTER_FLAG_TSYNC";
    case BL_SECCOMP_FLAG_LOG: return "SECCOMP_FILTER_FLAG_LOG";
    case BL_SECCOMP_FLAG_SPEC_ALLOW: return "SECCOMP_FILTER_FLAG_SPEC_ALLOW";
    default: return "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";
    }
}

static int add_rule(scmp_filter_ctx ctx, uint32_t act, int nr, const struct bl_seccomp_rule *r) {
    struct scmp_arg_cmp cmps[6];
    int per_index[6] = {0};
    int n = r->nargs < 6 ? r->nargs : 6;
    int repeated = 0;
    for (int i = 0; i < n; i++) {
        cmps[i] = (struct scmp_arg_cmp){ .arg = r->args[i].index, .op = (enum scmp_compare)r->args[i].op,
                                         .datum_a = r->args[i].value, .datum_b = r->args[i].value_two };
        if (r->args[i].index < 6 && ++per_index[r->args[i].index] > 1) repeated = 1;
    }
    if (n == 0) return seccomp_rule_add_array(ctx, act, nr, 0, NULL);
    // libseccomp ANDs the comparisons of one rule, but refuses two on the same argument: like runc,
    // those become one rule per comparison (so they OR)
    if (!repeated) return seccomp_rule_add_array(ctx, act, nr, (unsigned int)n, cmps);
    for (int i = 0; i < n; i++) {
        int rc = seccomp_rule_add_array(ctx, act, nr, 1, &cmps[i]);
        if (rc < 0) return rc;
    }
    return 0;
}

struct bl_seccomp *bl_seccomp_build(const struct bl_seccomp_config *cfg, char *err, size_t errlen) {
    uint32_t def = action_value(cfg->default_action, cfg->default_errno_ret);
    scmp_filter_ctx ctx = seccomp_init(def);
    if (!ctx) {
        snprintf(err, errlen, "linux.seccomp.defaultAction: libseccomp cannot make a filter with it on this kernel");
        return NULL;
    }
    int rc;
#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); seccomp_release(ctx); return NULL; } while (0)
    // the runtime sets no_new_privs itself (process.noNewPrivileges); real errnos from the kernel
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
        FAIL("linux.seccomp: clear the filter's no_new_privs attribute: %s", strerror(-rc));
    seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
    for (int i = 0; i < cfg->narchs; i++) {
        // SCMP_ARCH_X86_64 is libseccomp's "x86_64"
        char name[32] = "";
        const char *s = cfg->archs[i];
        if (strncmp(s, "SCMP_ARCH_", 10) == 0 && strlen(s + 10) < sizeof name)
            for (size_t k = 0; s[10 + k]; k++) name[k] = (char)((s[10 + k] >= 'A' && s[10 + k] <= 'Z') ? s[10 + k] + 32 : s[10 + k]);
        uint32_t a = name[0] ? seccomp_arch_resolve_name(name) : 0;
        if (a == 0) FAIL("linux.seccomp.architectures[%d]: unknown architecture \"%s\"", i, cfg->archs[i]);
        rc = seccomp_arch_add(ctx, a);
        if (rc < 0 && rc != -EEXIST) FAIL("linux.seccomp.architectures[%d]: add \"%s\": %s", i, cfg->archs[i], strerror(-rc));
    }
    uint32_t supported = bl_seccomp_supported_flags();
    static const struct { uint32_t flag; enum scmp_filter_attr attr; } attrs[] = {
        { BL_SECCOMP_FLAG_TSYNC, SCMP_FLTATR_CTL_TSYNC },
        { BL_SECCOMP_FLAG_LOG, SCMP_FLTATR_CTL_LOG },
        { BL_SECCOMP_FLAG_SPEC_ALLOW, SCMP_FLTATR_CTL_SSB },
    };
    if (cfg->flags & BL_SECCOMP_FLAG_WAIT_KILLABLE_RECV)
        FAIL("linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported (libseccomp %u.%u.%u; needs 2.6)",
             seccomp_version()->major, seccomp_version()->minor, seccomp_version()->micro);
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        if (!(cfg->flags & attrs[i].flag)) continue;
        if (!(supported & attrs[i].flag))
            FAIL("linux.seccomp.flags: %s is not supported by this kernel and libseccomp", flag_name(attrs[i].flag));
        if ((rc = seccomp_attr_set(ctx, attrs[i].attr, 1)) < 0)
            FAIL("linux.seccomp.flags: set %s: %s", flag_name(attrs[i].flag), strerror(-rc));
    }
    // flags absent (not empty): SPEC_ALLOW when available, as runc does
    if (!cfg->flags_given && (supported & BL_SECCOMP_FLAG_SPEC_ALLOW)) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
    // binary tree of syscalls for long profiles (libseccomp <= 2.5.4 misbehaves with it and no rules)
    if (cfg->nrules > 32) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

    int notify = 0;
    for (int i = 0; i < cfg->nrules; i++) {
        const struct bl_seccomp_rule *r = &cfg->rules[i];
        uint32_t act = action_value(r->action, r->errno_ret);
        if (act == def) continue;  // libseccomp refuses a rule that is the default action
        int nr = seccomp_syscall_resolve_name(r->name);
        if (nr == __NR_SCMP_ERROR) continue;  // unknown to libseccomp: ignored, as runc does
        rc = add_rule(ctx, act, nr, r);
        if (rc < 0) FAIL("linux.seccomp.syscalls[%d]: add rule for \"%s\": %s", r->entry, r->name, strerror(-rc));
        if (r->action == BL_SECCOMP_ACT_NOTIFY) notify = 1;
    }
#undef FAIL
    struct bl_seccomp *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "linux.seccomp: %s", strerror(ENOMEM));
        seccomp_release(ctx);
        return NULL;
    }
    f->ctx = ctx;
    f->notify = notify;
    f->listener_path = cfg->listener_path;
    f->listener_metadata = cfg->listener_metadata;
    return f;
}

static int send_msg_fd(int sock, int type, int fd) {
    struct bl_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    return bl_sendmsg_fd(sock, &m, sizeof m, fd) == (ssize_t)sizeof m ? 0 : -1;
}

int bl_msg_recv_fd(int sock, struct bl_msg *m, int *fd) {
    *fd = -1;
    char buf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { .iov_base = m, .iov_len = sizeof *m };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf };
    ssize_t r;
    do { r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    if (r == 0) { errno = 0; return -1; }
    if (r != (ssize_t)sizeof *m) {
        if (*fd >= 0) { close(*fd); *fd = -1; }
        errno = EBADMSG;
        return -1;
    }
    m->text[sizeof m->text - 1] = 0;
    return 0;
}

int bl_seccomp_export(struct bl_seccomp *f, char *err, size_t errlen) {
    scmp_filter_ctx ctx = (scmp_filter_ctx)f->ctx;
    int mfd = memfd_create("berth-seccomp", MFD_CLOEXEC);
    if (mfd < 0) { snprintf(err, errlen, "linux.seccomp: memfd_create: %s", strerror(errno)); return -1; }
    int rc = seccomp_export_bpf(ctx, mfd);
    if (rc < 0) { close(mfd); snprintf(err, errlen, "linux.seccomp: generate the filter: %s", strerror(-rc)); return -1; }
    off_t len = lseek(mfd, 0, SEEK_END);
    if (len <= 0 || len % 8 != 0) { close(mfd); snprintf(err, errlen, "linux.seccomp: generated filter has %lld bytes", (long long)len); return -1; }
    char *buf = malloc((size_t)len);
    if (!buf) { close(mfd); snprintf(err, errlen, "linux.seccomp: %s", strerror(ENOMEM)); return -1; }
    ssize_t n = pread(mfd, buf, (size_t)len, 0);
    close(mfd);
    if (n != len) { free(buf); snprintf(err, errlen, "linux.seccomp: read the generated filter"); return -1; }
    unsigned int flags = 0;
    uint32_t v = 0;
    if (seccomp_attr_get(ctx, SCMP_FLTATR_CTL_TSYNC, &v) == 0 && v) flags |= SECCOMP_FILTER_FLAG_TSYNC;
    v = 0;
    if (seccomp_attr_get(ctx, SCMP_FLTATR_CTL_LOG, &v) == 0 && v) flags |= SECCOMP_FILTER_FLAG_LOG;
    v = 0;
    if (seccomp_attr_get(ctx, SCMP_FLTATR_CTL_SSB, &v) == 0 && v) flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    if (f->notify) {
        // the runtime is single-threaded: TSYNC adds nothing, and the kernel refuses it with a listener
        flags &= ~(unsigned int)SECCOMP_FILTER_FLAG_TSYNC;
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    f->bpf = buf;
    f->bpf_len = (size_t)len;
    f->load_flags = flags;
    return 0;
}

struct bl_seccomp *bl_seccomp_from_bpf(const void *bpf, size_t len, unsigned int load_flags, int notify,
                                       const char *listener_path, const char *listener_metadata) {
    struct bl_seccomp *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->bpf = bpf;
    f->bpf_len = len;
    f->load_flags = load_flags;
    f->notify = notify;
    f->listener_path = listener_path;
    f->listener_metadata = listener_metadata;
    return f;
}

void bl_seccomp_apply(const struct bl_seccomp *f, int sync_fd) {
    int fd = -1;
    if (f->bpf) {
        struct sock_fprog prog = { .len = (unsigned short)(f->bpf_len / 8), .filter = (struct sock_filter *)f->bpf };
        long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f->load_flags, &prog);
        if (r < 0) bl_fail(errno, "load seccomp filter");
        if (!f->notify) return;
        fd = (int)r;
    } else {
        int rc = seccomp_load((scmp_filter_ctx)f->ctx);
        if (rc < 0) bl_fail(-rc, "load seccomp filter");
        if (!f->notify) return;
        fd = seccomp_notify_fd((scmp_filter_ctx)f->ctx);
        if (fd < 0) bl_fail(-fd, "get the seccomp notify fd");
    }
    // from here on only sendmsg, recvfrom and close before the caller goes on (NOTIFY on sendmsg is refused)
    if (send_msg_fd(sync_fd, BL_MSG_SECCOMP_FD, fd) < 0) bl_fail(errno, "send the seccomp notify fd to the runtime");
    struct bl_msg m;
    if (bl_msg_recv(sync_fd, &m) < 0) _exit(1);
    if (m.type != BL_MSG_GO) bl_fail(0, "seccomp: unexpected message %d from the runtime", m.type);
    close(fd);
}
