// Shared between the C files of the init; not exported to Swift.
#pragma once
#include "init.h"

extern int bl_sync_fd;
__attribute__((noreturn, format(printf, 2, 3))) void bl_fail(int err, const char *fmt, ...);

/// Mounts, devices; returns an O_PATH fd of the rootfs (before pivot_root).
int bl_prepare_rootfs(const struct bl_init_config *cfg);
/// pivot_root (or MS_MOVE + chroot), then the readonly root.
void bl_enter_rootfs(const struct bl_init_config *cfg, int rootfd);
/// After sysctl: readonly and masked paths.
void bl_finish_rootfs(const struct bl_init_config *cfg);
/// Console, rlimits, user, capabilities, cwd, fds, exec fifo, then execve. Never returns.
__attribute__((noreturn)) void bl_setup_process(const struct bl_process *p, const struct bl_hook *start_hooks,
                                                int nstart_hooks, const char *state);
