import Testing
@testable import OCI

@Suite struct MountFlagsTests {
    typealias M = MountFlags

    @Test(arguments: [
        ("ro", M.MS_RDONLY), ("nosuid", M.MS_NOSUID), ("nodev", M.MS_NODEV), ("noexec", M.MS_NOEXEC),
        ("sync", M.MS_SYNCHRONOUS), ("remount", M.MS_REMOUNT), ("mand", M.MS_MANDLOCK), ("dirsync", M.MS_DIRSYNC),
        ("noatime", M.MS_NOATIME), ("nodiratime", M.MS_NODIRATIME), ("relatime", M.MS_RELATIME),
        ("strictatime", M.MS_STRICTATIME), ("lazytime", M.MS_LAZYTIME), ("iversion", M.MS_I_VERSION),
        ("silent", M.MS_SILENT), ("nosymfollow", M.MS_NOSYMFOLLOW), ("bind", M.MS_BIND), ("rbind", M.MS_BIND | M.MS_REC),
    ])
    func setFlags(option: String, flag: UInt) {
        let m = MountFlags.parse([option])
        #expect(m.flags == flag)
        #expect(m.clearFlags == 0)
        #expect(m.data.isEmpty && m.propagation.isEmpty)
    }

    @Test(arguments: [
        ("rw", "ro", M.MS_RDONLY), ("suid", "nosuid", M.MS_NOSUID), ("dev", "nodev", M.MS_NODEV),
        ("exec", "noexec", M.MS_NOEXEC), ("async", "sync", M.MS_SYNCHRONOUS), ("nomand", "mand", M.MS_MANDLOCK),
        ("atime", "noatime", M.MS_NOATIME), ("diratime", "nodiratime", M.MS_NODIRATIME),
        ("norelatime", "relatime", M.MS_RELATIME), ("nostrictatime", "strictatime", M.MS_STRICTATIME),
        ("nolazytime", "lazytime", M.MS_LAZYTIME), ("noiversion", "iversion", M.MS_I_VERSION),
        ("loud", "silent", M.MS_SILENT), ("symfollow", "nosymfollow", M.MS_NOSYMFOLLOW),
    ])
    func clearFlags(option: String, opposite: String, flag: UInt) {
        let cleared = MountFlags.parse([opposite, option])
        #expect(cleared.flags == 0)
        #expect(cleared.clearFlags == flag)
        let set = MountFlags.parse([option, opposite])
        #expect(set.flags == flag)
        #expect(set.clearFlags == 0)
    }

    @Test func runcDevPts() {
        let m = MountFlags.parse(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        #expect(m.flags == M.MS_NOSUID | M.MS_NOEXEC)
        #expect(m.data == ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        #expect(m.dataString == "newinstance,ptmxmode=0666,mode=0620,gid=5")
        #expect(!m.isBind && !m.recursive)
    }

    @Test func defaultsIsNothing() {
        #expect(MountFlags.parse(["defaults"]) == MountFlags())
        #expect(MountFlags.parse([]) == MountFlags())
    }

    @Test func bindAndRbind() {
        let bind = MountFlags.parse(["bind", "ro"])
        #expect(bind.isBind && !bind.recursive)
        #expect(bind.flags == M.MS_BIND | M.MS_RDONLY)
        let rbind = MountFlags.parse(["rbind", "nosuid", "noexec", "nodev", "ro"])
        #expect(rbind.isBind && rbind.recursive)
        #expect(rbind.flags == M.MS_BIND | M.MS_REC | M.MS_NOSUID | M.MS_NOEXEC | M.MS_NODEV | M.MS_RDONLY)
    }

    @Test func propagationInOrder() {
        let m = MountFlags.parse(["rprivate", "shared", "rslave", "unbindable", "private", "rshared", "slave", "runbindable"])
        #expect(m.propagation == [M.MS_PRIVATE | M.MS_REC, M.MS_SHARED, M.MS_SLAVE | M.MS_REC, M.MS_UNBINDABLE,
                                  M.MS_PRIVATE, M.MS_SHARED | M.MS_REC, M.MS_SLAVE, M.MS_UNBINDABLE | M.MS_REC])
        #expect(m.flags == 0)
    }

    @Test func recursiveAttributes() {
        let m = MountFlags.parse(["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"])
        #expect(m.attrSet == M.MOUNT_ATTR_RDONLY | M.MOUNT_ATTR_NOSUID | M.MOUNT_ATTR_NODEV | M.MOUNT_ATTR_NOEXEC
                | M.MOUNT_ATTR_NODIRATIME | M.MOUNT_ATTR_NOSYMFOLLOW)
        #expect(m.attrClear == 0)
        let cleared = MountFlags.parse(["rro", "rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"])
        #expect(cleared.attrSet == 0)
        #expect(cleared.attrClear == M.MOUNT_ATTR_RDONLY | M.MOUNT_ATTR_NOSUID | M.MOUNT_ATTR_NODEV
                | M.MOUNT_ATTR_NOEXEC | M.MOUNT_ATTR_NODIRATIME | M.MOUNT_ATTR_NOSYMFOLLOW)
    }

    @Test func recursiveAtimeAlsoClearsAtimeField() {
        let noatime = MountFlags.parse(["rnoatime"])
        #expect(noatime.attrSet == M.MOUNT_ATTR_NOATIME)
        #expect(noatime.attrClear == M.MOUNT_ATTR__ATIME)
        let strict = MountFlags.parse(["rstrictatime"])
        #expect(strict.attrSet == M.MOUNT_ATTR_STRICTATIME)
        #expect(strict.attrClear == M.MOUNT_ATTR__ATIME)
        let relatime = MountFlags.parse(["rrelatime"])
        #expect(relatime.attrSet == 0)
        #expect(relatime.attrClear == M.MOUNT_ATTR__ATIME)
        let atime = MountFlags.parse(["ratime"])
        #expect(atime.attrClear == M.MOUNT_ATTR_NOATIME)
    }

    @Test func extras() {
        let m = MountFlags.parse(["tmpcopyup", "idmap", "size=1m"])
        #expect(m.tmpcopyup && m.idmap && !m.recursiveIdmap)
        #expect(m.data == ["size=1m"])
        let r = MountFlags.parse(["ridmap"])
        #expect(r.idmap && r.recursiveIdmap && !r.tmpcopyup)
    }

    @Test func unknownGoToDataInOrder() {
        let m = MountFlags.parse(["mode=755", "ro", "", "size=65536k", "uid=0", "acl"])
        #expect(m.data == ["mode=755", "size=65536k", "uid=0", "acl"])
        #expect(m.flags == M.MS_RDONLY)
    }

    @Test func kernelConstants() {
        #expect(M.MS_UNBINDABLE == 0x20000 && M.MS_PRIVATE == 0x40000 && M.MS_SLAVE == 0x80000 && M.MS_SHARED == 0x100000)
        #expect(M.MS_RELATIME == 0x200000 && M.MS_I_VERSION == 0x800000 && M.MS_STRICTATIME == 0x1000000)
        #expect(M.MS_LAZYTIME == 0x2000000 && M.MS_MOVE == 0x2000 && M.MS_REC == 0x4000 && M.MS_SILENT == 0x8000)
    }

    /// every known option parses to something other than data, and the list is sorted and duplicate-free
    @Test func knownOptionsAreKnown() {
        for option in MountFlags.knownOptions {
            #expect(MountFlags.parse([option]).data.isEmpty, "\(option)")
        }
        #expect(MountFlags.knownOptions == MountFlags.knownOptions.sorted())
        #expect(Set(MountFlags.knownOptions).count == MountFlags.knownOptions.count)
    }
}
