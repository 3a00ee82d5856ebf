// mounts[].options → mount(2) flags, propagation changes, mount_setattr(2) attributes and fs data,
// as runc's parseMountOptions does. Kernel constants are spelled out here so OCI stays libc-free.

public struct MountFlags: Sendable, Equatable {
    /// MS_* flags to pass to mount(2)
    public var flags: UInt = 0
    /// MS_* flags the options explicitly turned off ("rw", "suid", "dev", ...); a bind remount keeps the others
    public var clearFlags: UInt = 0
    /// propagation changes in order (MS_SHARED, MS_PRIVATE | MS_REC, ...), each its own mount(2) call
    public var propagation: [UInt] = []
    /// options mount(2) does not know as flags ("mode=755", "size=65536k"): fs-specific data
    public var data: [String] = []
    /// "rbind"
    public var recursive = false
    /// "bind" or "rbind"
    public var isBind = false
    /// MOUNT_ATTR_* to set with mount_setattr(2) recursively ("rro", "rnosuid", ...)
    public var attrSet: UInt64 = 0
    /// MOUNT_ATTR_* to clear with mount_setattr(2) recursively ("rrw", "rsuid", ...)
    public var attrClear: UInt64 = 0
    /// "tmpcopyup" (runc extension): copy the directory's old contents into the new tmpfs
    public var tmpcopyup = false
    /// "idmap" or "ridmap": make an id-mapped mount (with the mount's uid/gidMappings)
    public var idmap = false
    /// "ridmap": id-map the whole tree
    public var recursiveIdmap = false

    public init() {}

    /// the data argument for mount(2): fs-specific options joined by ','
    public var dataString: String { data.joined(separator: ",") }

    public static func parse(_ options: [String]) -> MountFlags {
        var m = MountFlags()
        for option in options {
            if let (clear, flag) = flagOption(option) {
                if clear { m.flags &= ~flag; m.clearFlags |= flag } else { m.flags |= flag; m.clearFlags &= ~flag }
                if flag & MS_BIND != 0 { m.isBind = true; if flag & MS_REC != 0 { m.recursive = true } }
            } else if let p = propagationOption(option) {
                m.propagation.append(p)
            } else if let (clear, attr) = attrOption(option) {
                if clear {
                    m.attrClear |= attr; m.attrSet &= ~attr
                } else {
                    m.attrSet |= attr; m.attrClear &= ~attr
                    // mount_setattr(2): an access-time setting needs MOUNT_ATTR__ATIME in attr_clr
                    if attr & MOUNT_ATTR__ATIME == attr { m.attrClear |= MOUNT_ATTR__ATIME }
                }
            } else {
                switch option {
                case "tmpcopyup": m.tmpcopyup = true
                case "idmap": m.idmap = true
                case "ridmap": m.idmap = true; m.recursiveIdmap = true
                case "": break
                default: m.data.append(option)
                }
            }
        }
        return m
    }

    /// every option name `parse` turns into something other than fs data (for `features`), sorted
    public static let knownOptions: [String] = [
        "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap", "iversion", "lazytime",
        "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
        "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime",
        "relatime", "remount", "rexec", "ridmap", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime",
        "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared",
        "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
        "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
    ]

    /// (clear, flag) for options that are mount(2) flags
    static func flagOption(_ option: String) -> (Bool, UInt)? {
        switch option {
        case "defaults": (false, 0)
        case "ro": (false, MS_RDONLY)
        case "rw": (true, MS_RDONLY)
        case "nosuid": (false, MS_NOSUID)
        case "suid": (true, MS_NOSUID)
        case "nodev": (false, MS_NODEV)
        case "dev": (true, MS_NODEV)
        case "noexec": (false, MS_NOEXEC)
        case "exec": (true, MS_NOEXEC)
        case "sync": (false, MS_SYNCHRONOUS)
        case "async": (true, MS_SYNCHRONOUS)
        case "dirsync": (false, MS_DIRSYNC)
        case "remount": (false, MS_REMOUNT)
        case "mand": (false, MS_MANDLOCK)
        case "nomand": (true, MS_MANDLOCK)
        case "noatime": (false, MS_NOATIME)
        case "atime": (true, MS_NOATIME)
        case "nodiratime": (false, MS_NODIRATIME)
        case "diratime": (true, MS_NODIRATIME)
        case "relatime": (false, MS_RELATIME)
        case "norelatime": (true, MS_RELATIME)
        case "strictatime": (false, MS_STRICTATIME)
        case "nostrictatime": (true, MS_STRICTATIME)
        case "lazytime": (false, MS_LAZYTIME)
        case "nolazytime": (true, MS_LAZYTIME)
        case "iversion": (false, MS_I_VERSION)
        case "noiversion": (true, MS_I_VERSION)
        case "silent": (false, MS_SILENT)
        case "loud": (true, MS_SILENT)
        case "nosymfollow": (false, MS_NOSYMFOLLOW)
        case "symfollow": (true, MS_NOSYMFOLLOW)
        case "bind": (false, MS_BIND)
        case "rbind": (false, MS_BIND | MS_REC)
        default: nil
        }
    }

    static func propagationOption(_ option: String) -> UInt? {
        switch option {
        case "shared": MS_SHARED
        case "rshared": MS_SHARED | MS_REC
        case "slave": MS_SLAVE
        case "rslave": MS_SLAVE | MS_REC
        case "private": MS_PRIVATE
        case "rprivate": MS_PRIVATE | MS_REC
        case "unbindable": MS_UNBINDABLE
        case "runbindable": MS_UNBINDABLE | MS_REC
        default: nil
        }
    }

    /// (clear, attribute) for the recursive mount_setattr(2) options
    static func attrOption(_ option: String) -> (Bool, UInt64)? {
        switch option {
        case "rro": (false, MOUNT_ATTR_RDONLY)
        case "rrw": (true, MOUNT_ATTR_RDONLY)
        case "rnosuid": (false, MOUNT_ATTR_NOSUID)
        case "rsuid": (true, MOUNT_ATTR_NOSUID)
        case "rnodev": (false, MOUNT_ATTR_NODEV)
        case "rdev": (true, MOUNT_ATTR_NODEV)
        case "rnoexec": (false, MOUNT_ATTR_NOEXEC)
        case "rexec": (true, MOUNT_ATTR_NOEXEC)
        case "rnodiratime": (false, MOUNT_ATTR_NODIRATIME)
        case "rdiratime": (true, MOUNT_ATTR_NODIRATIME)
        case "rrelatime": (false, MOUNT_ATTR_RELATIME)
        case "rnorelatime": (true, MOUNT_ATTR_RELATIME)
        case "rnoatime": (false, MOUNT_ATTR_NOATIME)
        case "ratime": (true, MOUNT_ATTR_NOATIME)
        case "rstrictatime": (false, MOUNT_ATTR_STRICTATIME)
        case "rnostrictatime": (true, MOUNT_ATTR_STRICTATIME)
        case "rnosymfollow": (false, MOUNT_ATTR_NOSYMFOLLOW)
        case "rsymfollow": (true, MOUNT_ATTR_NOSYMFOLLOW)
        default: nil
        }
    }

    // mount(2) flags, <linux/mount.h>
    public static let MS_RDONLY: UInt = 1
    public static let MS_NOSUID: UInt = 2
    public static let MS_NODEV: UInt = 4
    public static let MS_NOEXEC: UInt = 8
    public static let MS_SYNCHRONOUS: UInt = 16
    public static let MS_REMOUNT: UInt = 32
    public static let MS_MANDLOCK: UInt = 64
    public static let MS_DIRSYNC: UInt = 128
    public static let MS_NOSYMFOLLOW: UInt = 256
    public static let MS_NOATIME: UInt = 1024
    public static let MS_NODIRATIME: UInt = 2048
    public static let MS_BIND: UInt = 4096
    public static let MS_MOVE: UInt = 8192
    public static let MS_REC: UInt = 16384
    public static let MS_SILENT: UInt = 32768
    public static let MS_UNBINDABLE: UInt = 1 << 17
    public static let MS_PRIVATE: UInt = 1 << 18
    public static let MS_SLAVE: UInt = 1 << 19
    public static let MS_SHARED: UInt = 1 << 20
    public static let MS_RELATIME: UInt = 1 << 21
    public static let MS_I_VERSION: UInt = 1 << 23
    public static let MS_STRICTATIME: UInt = 1 << 24
    public static let MS_LAZYTIME: UInt = 1 << 25

    // mount_setattr(2) attributes, <linux/mount.h>
    public static let MOUNT_ATTR_RDONLY: UInt64 = 0x1
    public static let MOUNT_ATTR_NOSUID: UInt64 = 0x2
    public static let MOUNT_ATTR_NODEV: UInt64 = 0x4
    public static let MOUNT_ATTR_NOEXEC: UInt64 = 0x8
    public static let MOUNT_ATTR__ATIME: UInt64 = 0x70
    public static let MOUNT_ATTR_RELATIME: UInt64 = 0x0
    public static let MOUNT_ATTR_NOATIME: UInt64 = 0x10
    public static let MOUNT_ATTR_STRICTATIME: UInt64 = 0x20
    public static let MOUNT_ATTR_NODIRATIME: UInt64 = 0x80
    public static let MOUNT_ATTR_IDMAP: UInt64 = 0x100000
    public static let MOUNT_ATTR_NOSYMFOLLOW: UInt64 = 0x200000
}
