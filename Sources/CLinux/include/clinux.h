// CLinux: what Swift's Glibc module cannot reach, and everything that runs between fork and exec.
// berth-runtime is single-threaded; the code behind init.h runs in forked children and only makes
// straight-line syscalls on data the Swift side prepared before the fork.
#pragma once
#include "sys.h"
#include "init.h"
#include "bl_seccomp.h"
