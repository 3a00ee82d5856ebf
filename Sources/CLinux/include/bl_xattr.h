// bl_xattr.h: Swift's Glibc module does not include <sys/xattr.h>; the layer unpacker needs fsetxattr and
// lsetxattr (security.capability, overlay opaque markers, SCHILY.xattr.* of image layers).
#pragma once
#include <sys/types.h>
#include <sys/xattr.h>
