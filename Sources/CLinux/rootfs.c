// The container's root filesystem: mounts resolved inside the rootfs (openat2 RESOLVE_IN_ROOT,
// mounting onto /proc/self/fd/N, never onto a re-resolved string path), devices, pivot_root,
// readonly and masked paths.
#define _GNU_SOURCE
#include "internal.h"
#include "sys.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define IN_ROOT (BL_RESOLVE_IN_ROOT | BL_RESOLVE_NO_MAGICLINKS)

static void fdpath(char *buf, size_t len, int fd) { snprintf(buf, len, "/proc/self/fd/%d", fd); }

// Opens `path` inside the root, creating what is missing: directories, and a last component that is
// a regular file when !is_dir. A dangling symlink met on the way is followed inside the root.
static int open_in_root(int rootfd, const char *path, int is_dir, int depth) {
    if (depth > 40) { errno = ELOOP; return -1; }
    int fd = bl_openat2(rootfd, path, O_PATH, 0, IN_ROOT);
    if (fd >= 0 || errno != ENOENT) return fd;
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    strcpy(buf, path);
    char prefix[PATH_MAX] = "";
    int cur = dup(rootfd);
    if (cur < 0) return -1;
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        size_t pl = strlen(prefix);
        if (pl + strlen(c) + 2 >= sizeof prefix) { close(cur); errno = ENAMETOOLONG; return -1; }
        char parent[PATH_MAX];
        strcpy(parent, prefix);
        strcat(prefix, "/");
        strcat(prefix, c);
        int next = bl_openat2(rootfd, prefix, O_PATH, 0, IN_ROOT);
        if (next >= 0) { close(cur); cur = next; continue; }
        if (errno != ENOENT) { int e = errno; close(cur); errno = e; return -1; }
        const char *rest = save && *save ? save : NULL;
        int last = rest == NULL;
        int r;
        if (last && !is_dir) {
            r = openat(cur, c, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (r >= 0) close(r);
        } else {
            r = mkdirat(cur, c, 0755);
        }
        if (r < 0 && errno == EEXIST) {
            // a dangling symlink: create its target inside the root, then go on from there
            char target[PATH_MAX];
            ssize_t n = readlinkat(cur, c, target, sizeof target - 1);
            if (n < 0) { int e = errno; close(cur); errno = e; return -1; }
            target[n] = 0;
            char resolved[PATH_MAX * 2];
            if (target[0] == '/') snprintf(resolved, sizeof resolved, "%s%s%s", target, rest ? "/" : "", rest ? rest : "");
            else snprintf(resolved, sizeof resolved, "%s/%s%s%s", parent, target, rest ? "/" : "", rest ? rest : "");
            close(cur);
            if (strlen(resolved) >= PATH_MAX) { errno = ENAMETOOLONG; return -1; }
            return open_in_root(rootfd, resolved, is_dir, depth + 1);
        }
        if (r < 0) { int e = errno; close(cur); errno = e; return -1; }
        next = bl_openat2(rootfd, prefix, O_PATH, 0, IN_ROOT);
        if (next < 0) { int e = errno; close(cur); errno = e; return -1; }
        close(cur);
        cur = next;
    }
    return cur;
}

static unsigned long locked_flags(const char *path) {
    struct statvfs s;
    unsigned long f = 0;
    if (statvfs(path, &s) < 0) return 0;
    if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (s.f_flag & ST_NODEV) f |= MS_NODEV;
    if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (s.f_flag & ST_RDONLY) f |= MS_RDONLY;
    if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

// Remounts a bind mount with flags; where the kernel refuses to drop flags it locked (mounts
// from a less privileged namespace), keeps those.
static int remount_bind(const char *path, unsigned long flags) {
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags, NULL) == 0) return 0;
    if (errno != EPERM) return -1;
    return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags | locked_flags(path), NULL);
}

// Copies the tree under directory `from` into directory `to` (both O_DIRECTORY fds): files, directories,
// symlinks and special files, with their owner, mode and times (runc's tmpcopyup). Fails the init on error.
static void copy_tree(int from, int to, const char *dest, int depth) {
    if (depth > 64) bl_fail(ELOOP, "tmpcopyup %s: directory tree too deep", dest);
    int dupfd = dup(from);
    if (dupfd < 0) bl_fail(errno, "tmpcopyup %s", dest);
    DIR *d = fdopendir(dupfd);
    if (!d) bl_fail(errno, "tmpcopyup %s: read directory", dest);
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..")) continue;
        struct stat st;
        if (fstatat(from, n, &st, AT_SYMLINK_NOFOLLOW) < 0) bl_fail(errno, "tmpcopyup %s: stat %s", dest, n);
        mode_t perm = st.st_mode & 07777;
        if (S_ISDIR(st.st_mode)) {
            if (mkdirat(to, n, 0700) < 0 && errno != EEXIST) bl_fail(errno, "tmpcopyup %s: mkdir %s", dest, n);
            int sf = openat(from, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int df = openat(to, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sf < 0 || df < 0) bl_fail(errno, "tmpcopyup %s: open %s", dest, n);
            copy_tree(sf, df, dest, depth + 1);
            close(sf);
            close(df);
        } else if (S_ISREG(st.st_mode)) {
            int sf = openat(from, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (sf < 0) bl_fail(errno, "tmpcopyup %s: open %s", dest, n);
            int df = openat(to, n, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (df < 0) bl_fail(errno, "tmpcopyup %s: create %s", dest, n);
            char buf[65536];
            for (;;) {
                ssize_t r = read(sf, buf, sizeof buf);
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) bl_fail(errno, "tmpcopyup %s: read %s", dest, n);
                if (r == 0) break;
                for (ssize_t off = 0; off < r;) {
                    ssize_t w = write(df, buf + off, (size_t)(r - off));
                    if (w < 0 && errno == EINTR) continue;
                    if (w < 0) bl_fail(errno, "tmpcopyup %s: write %s", dest, n);
                    off += w;
                }
            }
            close(sf);
            close(df);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t len = readlinkat(from, n, target, sizeof target - 1);
            if (len < 0) bl_fail(errno, "tmpcopyup %s: readlink %s", dest, n);
            target[len] = 0;
            if (symlinkat(target, to, n) < 0) bl_fail(errno, "tmpcopyup %s: symlink %s", dest, n);
        } else {
            if (mknodat(to, n, st.st_mode, st.st_rdev) < 0) bl_fail(errno, "tmpcopyup %s: mknod %s", dest, n);
        }
        if (fchownat(to, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EINVAL)
            bl_fail(errno, "tmpcopyup %s: chown %s", dest, n);
        if (!S_ISLNK(st.st_mode) && fchmodat(to, n, perm, 0) < 0) bl_fail(errno, "tmpcopyup %s: chmod %s", dest, n);
        struct timespec times[2] = { st.st_atim, st.st_mtim };
        utimensat(to, n, times, AT_SYMLINK_NOFOLLOW);
    }
    closedir(d);
}

static void mount_one(int rootfd, const struct bl_mount *m) {
    char dst[64], src[64];
    if (m->kind == BL_MOUNT_REMOUNT) {
        int fd = bl_openat2(rootfd, m->dest, O_PATH, 0, IN_ROOT);
        if (fd < 0) bl_fail(errno, "open mount %s", m->dest);
        fdpath(dst, sizeof dst, fd);
        if (mount(NULL, dst, NULL, MS_REMOUNT | m->flags, NULL) < 0) bl_fail(errno, "remount %s", m->dest);
        close(fd);
        return;
    }
    int srcfd = -1, is_dir = 1;
    if (m->kind == BL_MOUNT_BIND) {
        srcfd = open(m->source, O_PATH | O_CLOEXEC);
        if (srcfd < 0) {
            if (errno == ENOENT && m->ignore_missing_source) return;
            bl_fail(errno, "bind mount %s to %s: open source", m->source, m->dest);
        }
        struct stat st;
        if (fstat(srcfd, &st) < 0) bl_fail(errno, "stat %s", m->source);
        is_dir = S_ISDIR(st.st_mode);
    }
    int dfd = open_in_root(rootfd, m->dest, is_dir, 0);
    if (dfd < 0) bl_fail(errno, "create mount destination %s in rootfs", m->dest);
    fdpath(dst, sizeof dst, dfd);
    // tmpcopyup: a directory fd opened before the mount still reads the covered contents
    int copyfrom = -1;
    if (m->tmpcopyup && m->kind == BL_MOUNT_FS && m->fstype && !strcmp(m->fstype, "tmpfs")) {
        copyfrom = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (copyfrom < 0) bl_fail(errno, "tmpcopyup %s: open the mount point", m->dest);
    }
    if (m->kind == BL_MOUNT_BIND) {
        fdpath(src, sizeof src, srcfd);
        if (mount(src, dst, NULL, MS_BIND | (m->recursive ? MS_REC : 0), NULL) < 0)
            bl_fail(errno, "bind mount %s to %s", m->source, m->dest);
        close(srcfd);
    } else {
        // a read-only tmpfs is filled first, then made read-only
        unsigned long fl = copyfrom >= 0 ? m->flags & ~(unsigned long)MS_RDONLY : m->flags;
        if (mount(m->source, dst, m->fstype, fl, m->data) < 0)
            bl_fail(errno, "mount %s (%s) to %s", m->source ? m->source : "none", m->fstype, m->dest);
    }
    close(dfd);
    if (copyfrom >= 0) {
        int nfd = bl_openat2(rootfd, m->dest, O_PATH, 0, IN_ROOT);
        if (nfd < 0) bl_fail(errno, "tmpcopyup %s: reopen the mount", m->dest);
        char np[64];
        fdpath(np, sizeof np, nfd);
        int to = open(np, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (to < 0) bl_fail(errno, "tmpcopyup %s: open the new mount", m->dest);
        copy_tree(copyfrom, to, m->dest, 0);
        // the tmpfs root takes the covered directory's owner and mode unless mode= says otherwise
        struct stat st;
        if (fstat(copyfrom, &st) == 0) {
            if (fchown(to, st.st_uid, st.st_gid) < 0) bl_fail(errno, "tmpcopyup %s: chown", m->dest);
            if (!(m->data && (strstr(m->data, "mode=") == m->data || strstr(m->data, ",mode="))) &&
                fchmod(to, st.st_mode & 07777) < 0)
                bl_fail(errno, "tmpcopyup %s: chmod", m->dest);
        }
        close(to);
        close(copyfrom);
        if ((m->flags & MS_RDONLY) && mount(NULL, np, NULL, MS_REMOUNT | m->flags, m->data) < 0)
            bl_fail(errno, "tmpcopyup %s: remount read-only", m->dest);
        close(nfd);
    }
    unsigned long extra = m->flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT);
    int need_remount = m->kind == BL_MOUNT_BIND && extra;
    if (!need_remount && !m->npropagation && !m->attr_set && !m->attr_clr) return;
    // reopen: the fd we mounted onto names the covered directory, not the new mount
    dfd = bl_openat2(rootfd, m->dest, O_PATH, 0, IN_ROOT);
    if (dfd < 0) bl_fail(errno, "reopen mount %s", m->dest);
    fdpath(dst, sizeof dst, dfd);
    if (need_remount && remount_bind(dst, extra) < 0) bl_fail(errno, "remount %s", m->dest);
    for (int i = 0; i < m->npropagation; i++)
        if (mount(NULL, dst, NULL, m->propagation[i], NULL) < 0) bl_fail(errno, "set propagation of %s", m->dest);
    if (m->attr_set || m->attr_clr) {
        struct mount_attr a = { .attr_set = m->attr_set, .attr_clr = m->attr_clr };
        if (syscall(SYS_mount_setattr, dfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
            bl_fail(errno, "mount_setattr %s", m->dest);
    }
    close(dfd);
}

static void make_device(int rootfd, const struct bl_device *d) {
    char parent[PATH_MAX];
    strncpy(parent, d->path, sizeof parent - 1);
    parent[sizeof parent - 1] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash || !slash[1]) bl_fail(EINVAL, "device path %s", d->path);
    const char *base = d->path + (slash - parent) + 1;
    if (slash == parent) strcpy(parent, "/");
    else *slash = 0;
    int pfd = open_in_root(rootfd, parent, 1, 0);
    if (pfd < 0) bl_fail(errno, "create %s in rootfs", parent);
    // reopen as a real directory fd: mknodat needs one
    char pp[64];
    fdpath(pp, sizeof pp, pfd);
    int dirfd = open(pp, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dirfd < 0) bl_fail(errno, "open %s in rootfs", parent);
    close(pfd);
    if (mknodat(dirfd, base, d->mode, makedev(d->major, d->minor)) < 0) {
        if (errno == EEXIST) {
            // a leftover node in the image: replace it (never follow a symlink there)
            if (unlinkat(dirfd, base, 0) < 0) bl_fail(errno, "replace device %s", d->path);
            if (mknodat(dirfd, base, d->mode, makedev(d->major, d->minor)) < 0)
                bl_fail(errno, "mknod %s", d->path);
        } else if (errno == EPERM) {
            // in a user namespace: bind the host's node onto an empty file
            int f = openat(dirfd, base, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (f < 0) bl_fail(errno, "create %s", d->path);
            close(f);
            int tfd = openat(dirfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (tfd < 0) bl_fail(errno, "open %s", d->path);
            char tp[64];
            fdpath(tp, sizeof tp, tfd);
            if (mount(d->path, tp, NULL, MS_BIND, NULL) < 0) bl_fail(errno, "bind mount device %s", d->path);
            close(tfd);
            close(dirfd);
            return;
        } else {
            bl_fail(errno, "mknod %s", d->path);
        }
    }
    if (fchownat(dirfd, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0) bl_fail(errno, "chown %s", d->path);
    close(dirfd);
}

static void make_symlink(int rootfd, const char *target, const char *dir, const char *name) {
    int pfd = open_in_root(rootfd, dir, 1, 0);
    if (pfd < 0) bl_fail(errno, "create %s in rootfs", dir);
    char pp[64];
    fdpath(pp, sizeof pp, pfd);
    int dirfd = open(pp, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dirfd < 0) bl_fail(errno, "open %s in rootfs", dir);
    close(pfd);
    if (symlinkat(target, dirfd, name) < 0 && errno != EEXIST) bl_fail(errno, "symlink %s/%s", dir, name);
    close(dirfd);
}

int bl_prepare_rootfs(const struct bl_init_config *cfg) {
    unsigned long prop = cfg->root_propagation ? cfg->root_propagation : (MS_SLAVE | MS_REC);
    if (mount(NULL, "/", NULL, prop, NULL) < 0) bl_fail(errno, "set propagation of /");
    if (prop & MS_SHARED) {
        // pivot_root refuses a rootfs whose parent mount is shared: make that one mount private
        // (the requested propagation is applied to the new "/" after pivot_root)
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", cfg->rootfs);
        for (;;) {
            char *slash = strrchr(parent, '/');
            if (!slash) break;
            if (slash == parent) { strcpy(parent, "/"); }
            else *slash = 0;
            if (mount(NULL, parent, NULL, MS_PRIVATE, NULL) == 0) break;
            if (errno != EINVAL) bl_fail(errno, "make the parent mount of the rootfs private");
            if (strcmp(parent, "/") == 0) break;
        }
    }
    if (mount(cfg->rootfs, cfg->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        bl_fail(errno, "bind mount rootfs %s", cfg->rootfs);
    int rootfd = open(cfg->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) bl_fail(errno, "open rootfs %s", cfg->rootfs);
    for (int i = 0; i < cfg->nmounts; i++) mount_one(rootfd, &cfg->mounts[i]);
    for (int i = 0; i < cfg->ndevices; i++) make_device(rootfd, &cfg->devices[i]);
    if (cfg->default_devices) {
        make_symlink(rootfd, "/proc/self/fd", "/dev", "fd");
        make_symlink(rootfd, "/proc/self/fd/0", "/dev", "stdin");
        make_symlink(rootfd, "/proc/self/fd/1", "/dev", "stdout");
        make_symlink(rootfd, "/proc/self/fd/2", "/dev", "stderr");
        if (access("/proc/kcore", F_OK) == 0) make_symlink(rootfd, "/proc/kcore", "/dev", "core");
        // /dev/ptmx → pts/ptmx, replacing what an image may carry
        int pfd = open_in_root(rootfd, "/dev", 1, 0);
        if (pfd >= 0) {
            char pp[64];
            fdpath(pp, sizeof pp, pfd);
            int dirfd = open(pp, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
            if (dirfd >= 0) {
                struct stat st;
                if (fstatat(dirfd, "ptmx", &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode))
                    unlinkat(dirfd, "ptmx", 0);
                if (symlinkat("pts/ptmx", dirfd, "ptmx") < 0 && errno != EEXIST) bl_fail(errno, "symlink /dev/ptmx");
                close(dirfd);
            }
            close(pfd);
        }
    }
    return rootfd;
}

static int pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

void bl_enter_rootfs(const struct bl_init_config *cfg, int rootfd) {
    close(rootfd);
    if (cfg->no_pivot) {
        if (chdir(cfg->rootfs) < 0) bl_fail(errno, "chdir %s", cfg->rootfs);
        if (mount(cfg->rootfs, "/", NULL, MS_MOVE, NULL) < 0) bl_fail(errno, "move rootfs to /");
        if (chroot(".") < 0) bl_fail(errno, "chroot");
        if (chdir("/") < 0) bl_fail(errno, "chdir /");
    } else {
        int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (oldroot < 0) bl_fail(errno, "open /");
        int newroot = open(cfg->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (newroot < 0) bl_fail(errno, "open %s", cfg->rootfs);
        if (fchdir(newroot) < 0) bl_fail(errno, "chdir rootfs");
        if (pivot_root(".", ".") < 0) bl_fail(errno, "pivot_root %s", cfg->rootfs);
        if (fchdir(oldroot) < 0) bl_fail(errno, "chdir old root");
        // never let the unmount of the old root propagate back to the host
        if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) bl_fail(errno, "make old root slave");
        if (umount2(".", MNT_DETACH) < 0) bl_fail(errno, "unmount old root");
        if (chdir("/") < 0) bl_fail(errno, "chdir /");
        close(oldroot);
        close(newroot);
    }
    if (cfg->root_propagation && mount(NULL, "/", NULL, cfg->root_propagation, NULL) < 0)
        bl_fail(errno, "apply rootfsPropagation to /");
    // a missing cwd is created, inside the new root (runc does the same)
    const char *cwd = cfg->process.cwd;
    if (cwd && cwd[0] == '/' && cwd[1]) {
        char buf[PATH_MAX];
        snprintf(buf, sizeof buf, "%s", cwd);
        for (char *c = buf + 1;; c++) {
            if (*c == '/' || *c == 0) {
                char saved = *c;
                *c = 0;
                if (mkdir(buf, 0755) < 0 && errno != EEXIST) bl_fail(errno, "create cwd %s", buf);
                *c = saved;
                if (!saved) break;
            }
        }
    }
    if (cfg->readonly_root && remount_bind("/", MS_RDONLY) < 0) bl_fail(errno, "remount / read-only");
}

void bl_finish_rootfs(const struct bl_init_config *cfg) {
    for (int i = 0; i < cfg->nreadonly; i++) {
        const char *p = cfg->readonly[i];
        if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT) continue;
            bl_fail(errno, "bind mount readonly path %s", p);
        }
        if (remount_bind(p, MS_RDONLY | MS_REC) < 0) bl_fail(errno, "remount readonly path %s", p);
    }
    for (int i = 0; i < cfg->nmasked; i++) {
        const char *p = cfg->masked[i];
        if (mount("/dev/null", p, NULL, MS_BIND, NULL) == 0) continue;
        if (errno == ENOENT) continue;
        if (errno == ENOTDIR) {
            if (mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL) < 0) bl_fail(errno, "mask %s", p);
            continue;
        }
        bl_fail(errno, "mask %s", p);
    }
}
