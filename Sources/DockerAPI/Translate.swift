import Engine
import Foundation
import Images
import OCI

/// Docker's JSON shapes <-> the engine's types. No decisions here, only field mapping.
enum Translate {
    static func strings(_ v: Any?) -> [String]? {
        if let a = v as? [String] { return a }
        if let s = v as? String { return [s] }
        return nil
    }
    static func int64(_ v: Any?) -> Int64 { (v as? NSNumber)?.int64Value ?? 0 }

    /// POST /containers/create body.
    static func createBody(_ b: [String: Any]) throws(APIError) -> (ContainerConfig, HostConfig, String?) {
        var c = ContainerConfig()
        guard let image = b["Image"] as? String, !image.isEmpty else { throw APIError(400, "config cannot be empty in order to create a container") }
        c.image = image
        if let v = b["Cmd"], !(v is NSNull) {
            guard let a = strings(v) else { throw APIError(400, "invalid JSON: Cmd must be a list of strings") }
            c.cmd = a
        }
        if let v = b["Entrypoint"], !(v is NSNull) {
            guard let a = strings(v) else { throw APIError(400, "invalid JSON: Entrypoint must be a list of strings") }
            c.entrypoint = a
        }
        if let v = b["Env"], !(v is NSNull) {
            guard let a = v as? [String] else { throw APIError(400, "invalid JSON: Env must be a list of strings") }
            c.env = a
        }
        c.workingDir = b["WorkingDir"] as? String ?? ""
        if !c.workingDir.isEmpty && !c.workingDir.hasPrefix("/") {
            throw APIError(400, "the working directory '\(c.workingDir)' is invalid, it needs to be an absolute path")
        }
        c.user = b["User"] as? String ?? ""
        c.labels = b["Labels"] as? [String: String] ?? [:]
        c.hostname = b["Hostname"] as? String ?? ""
        c.domainname = b["Domainname"] as? String ?? ""
        c.tty = b["Tty"] as? Bool ?? false
        c.openStdin = b["OpenStdin"] as? Bool ?? false
        c.stdinOnce = b["StdinOnce"] as? Bool ?? false
        c.attachStdin = b["AttachStdin"] as? Bool ?? false
        c.attachStdout = b["AttachStdout"] as? Bool ?? false
        c.attachStderr = b["AttachStderr"] as? Bool ?? false
        c.stopSignal = b["StopSignal"] as? String
        c.stopTimeout = (b["StopTimeout"] as? NSNumber)?.intValue
        c.exposedPorts = (b["ExposedPorts"] as? [String: Any])?.keys.sorted() ?? []
        c.volumes = (b["Volumes"] as? [String: Any])?.keys.sorted() ?? []
        var h = HostConfig()
        if let hc = b["HostConfig"] as? [String: Any] {
            h.binds = hc["Binds"] as? [String] ?? []
            h.tmpfs = hc["Tmpfs"] as? [String: String] ?? [:]
            h.memory = int64(hc["Memory"])
            h.memorySwap = int64(hc["MemorySwap"])
            h.nanoCpus = int64(hc["NanoCpus"])
            h.cpuShares = int64(hc["CpuShares"])
            h.cpuQuota = int64(hc["CpuQuota"])
            h.cpuPeriod = int64(hc["CpuPeriod"])
            h.pidsLimit = int64(hc["PidsLimit"])
            h.capAdd = hc["CapAdd"] as? [String] ?? []
            h.capDrop = hc["CapDrop"] as? [String] ?? []
            h.privileged = hc["Privileged"] as? Bool ?? false
            h.readonlyRootfs = hc["ReadonlyRootfs"] as? Bool ?? false
            h.autoRemove = hc["AutoRemove"] as? Bool ?? false
            h.initProcess = hc["Init"] as? Bool ?? false
            h.networkMode = hc["NetworkMode"] as? String ?? "default"
            h.shmSize = int64(hc["ShmSize"])
            h.extraHosts = hc["ExtraHosts"] as? [String] ?? []
            h.dns = hc["Dns"] as? [String] ?? []
            if let rp = hc["RestartPolicy"] as? [String: Any] {
                do {
                    h.restartPolicy = try RestartPolicy(parsing: rp["Name"] as? String ?? "",
                                                        maximumRetryCount: (rp["MaximumRetryCount"] as? NSNumber)?.intValue ?? 0)
                } catch { throw APIError(error) }
            }
            if let lc = hc["LogConfig"] as? [String: Any], let cfg = lc["Config"] as? [String: String] {
                if let t = lc["Type"] as? String, !t.isEmpty, t != "json-file", t != "local" {
                    throw APIError(400, "logging driver \(t) is not supported by berth (json-file only)")
                }
                if let s = cfg["max-size"] {
                    guard let n = parseSize(s) else { throw APIError(400, "invalid max-size: \(s)") }
                    h.logMaxSize = n
                }
                if let f = cfg["max-file"] {
                    guard let n = Int(f), n >= 1 else { throw APIError(400, "invalid max-file: \(f)") }
                    h.logMaxFiles = n
                }
            }
            if let mounts = hc["Mounts"] as? [[String: Any]] {
                for m in mounts {
                    let type = m["Type"] as? String ?? "bind"
                    let target = m["Target"] as? String ?? ""
                    if type == "bind", let src = m["Source"] as? String {
                        h.binds.append(src + ":" + target + ((m["ReadOnly"] as? Bool ?? false) ? ":ro" : ""))
                    } else if type == "tmpfs" {
                        h.tmpfs[target] = ""
                    } else {
                        throw APIError(400, "mount type \(type) is not supported by berth yet (bind and tmpfs are)")
                    }
                }
            }
        }
        let platform = b["Platform"] as? String
        return (c, h, platform)
    }

    static func parseSize(_ s: String) -> Int64? {
        let l = s.lowercased()
        let units: [(String, Int64)] = [("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("k", 1024), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)]
        for (u, m) in units where l.hasSuffix(u) {
            return Double(l.dropLast(u.count)).map { Int64($0 * Double(m)) }
        }
        return Int64(l)
    }

    static func time(_ d: Date?) -> String { Timestamp.rfc3339Nano(d) }

    static func statusText(_ r: ContainerRecord) -> String {
        let s = r.state
        func ago(_ d: Date?) -> String { human(Date().timeIntervalSince(d ?? Date())) }
        switch s.status {
        case .created: return "Created"
        case .running: return "Up \(ago(s.startedAt))"
        case .paused: return "Up \(ago(s.startedAt)) (Paused)"
        case .restarting: return "Restarting (\(s.exitCode)) \(ago(s.finishedAt)) ago"
        case .removing: return "Removal In Progress"
        case .exited: return "Exited (\(s.exitCode)) \(ago(s.finishedAt)) ago"
        case .dead: return "Dead"
        }
    }

    /// Docker's units.HumanDuration.
    static func human(_ t: TimeInterval) -> String {
        let s = Int(t)
        if s < 1 { return "Less than a second" }
        if s == 1 { return "1 second" }
        if s < 60 { return "\(s) seconds" }
        let m = s / 60
        if m == 1 { return "About a minute" }
        if m < 60 { return "\(m) minutes" }
        let h = Int((Double(m) / 60).rounded())
        if h == 1 { return "About an hour" }
        if h < 48 { return "\(h) hours" }
        if h < 24 * 7 * 2 { return "\(h / 24) days" }
        if h < 24 * 30 * 2 { return "\(h / 24 / 7) weeks" }
        if h < 24 * 365 * 2 { return "\(h / 24 / 30) months" }
        return "\(h / 24 / 365) years"
    }

    static func summary(_ r: ContainerRecord, size: Int64?) -> [String: Any] {
        var d: [String: Any] = [
            "Id": r.id, "Names": ["/" + r.name], "Image": r.imageRef, "ImageID": r.imageID,
            "Command": ([r.path] + r.args).joined(separator: " "),
            "Created": Int(r.created.timeIntervalSince1970), "Ports": [Any](), "Labels": r.config.labels,
            "State": r.state.status.rawValue, "Status": statusText(r),
            "HostConfig": ["NetworkMode": r.hostConfig.networkMode],
            "NetworkSettings": ["Networks": [String: Any]()],
            "Mounts": mounts(r),
        ]
        if let size { d["SizeRw"] = size; d["SizeRootFs"] = size }
        return d
    }

    static func mounts(_ r: ContainerRecord) -> [[String: Any]] {
        r.hostConfig.binds.compactMap { b -> [String: Any]? in
            let p = b.split(separator: ":").map(String.init)
            guard p.count >= 2 else { return nil }
            let ro = p.count == 3 && p[2].split(separator: ",").contains("ro")
            return ["Type": "bind", "Source": p[0], "Destination": p[1], "Mode": p.count == 3 ? p[2] : "", "RW": !ro, "Propagation": "rprivate"]
        } + r.hostConfig.tmpfs.keys.sorted().map { ["Type": "tmpfs", "Source": "", "Destination": $0, "Mode": "", "RW": true, "Propagation": ""] }
    }

    static func inspect(_ r: ContainerRecord, logPath: String, size: Int64?) -> [String: Any] {
        let c = r.config, h = r.hostConfig, s = r.state
        var d: [String: Any] = [
            "Id": r.id, "Created": time(r.created), "Path": r.path, "Args": r.args,
            "State": [
                "Status": s.status.rawValue, "Running": s.running, "Paused": s.status == .paused,
                "Restarting": s.status == .restarting, "OOMKilled": s.oomKilled, "Dead": s.status == .dead,
                "Pid": Int(s.pid), "ExitCode": Int(s.exitCode), "Error": s.error,
                "StartedAt": time(s.startedAt), "FinishedAt": time(s.finishedAt),
            ] as [String: Any],
            "Image": r.imageID, "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
            "LogPath": logPath, "Name": "/" + r.name, "RestartCount": s.restartCount, "Driver": "overlay2",
            "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
            "HostConfig": [
                "Binds": h.binds, "Tmpfs": h.tmpfs, "Memory": h.memory, "MemorySwap": h.memorySwap,
                "NanoCpus": h.nanoCpus, "CpuShares": h.cpuShares, "CpuQuota": h.cpuQuota, "CpuPeriod": h.cpuPeriod,
                "PidsLimit": h.pidsLimit, "CapAdd": h.capAdd, "CapDrop": h.capDrop, "Privileged": h.privileged,
                "ReadonlyRootfs": h.readonlyRootfs, "AutoRemove": h.autoRemove, "Init": h.initProcess,
                "NetworkMode": h.networkMode, "ShmSize": h.shmSize > 0 ? h.shmSize : 64 << 20,
                "RestartPolicy": ["Name": h.restartPolicy.name.rawValue, "MaximumRetryCount": h.restartPolicy.maximumRetryCount],
                "LogConfig": ["Type": "json-file", "Config": h.logMaxSize > 0 ? ["max-size": String(h.logMaxSize), "max-file": String(h.logMaxFiles)] : [String: String]()],
                "ExtraHosts": h.extraHosts, "Dns": h.dns, "PortBindings": [String: Any](),
            ] as [String: Any],
            "Config": [
                "Hostname": c.hostname.isEmpty ? r.shortID : c.hostname, "Domainname": c.domainname, "User": c.user,
                "AttachStdin": c.attachStdin, "AttachStdout": c.attachStdout, "AttachStderr": c.attachStderr,
                "Tty": c.tty, "OpenStdin": c.openStdin, "StdinOnce": c.stdinOnce, "Env": r.resolvedEnv,
                "Cmd": c.cmd ?? [], "Entrypoint": c.entrypoint as Any? ?? NSNull(), "Image": r.imageRef,
                "WorkingDir": c.workingDir, "Labels": c.labels, "StopSignal": c.stopSignal as Any? ?? NSNull(),
                "Volumes": c.volumes.isEmpty ? NSNull() : Dictionary(uniqueKeysWithValues: c.volumes.map { ($0, [String: Any]()) }) as Any,
                "ExposedPorts": c.exposedPorts.isEmpty ? NSNull() : Dictionary(uniqueKeysWithValues: c.exposedPorts.map { ($0, [String: Any]()) }) as Any,
            ] as [String: Any],
            "Mounts": mounts(r),
            "NetworkSettings": ["Networks": [String: Any](), "IPAddress": "", "Ports": [String: Any](), "SandboxKey": ""] as [String: Any],
            "GraphDriver": ["Name": "overlay2", "Data": [String: String]()] as [String: Any],
        ]
        if let t = c.stopTimeout { var cfg = d["Config"] as? [String: Any] ?? [:]; cfg["StopTimeout"] = t; d["Config"] = cfg }
        if let size { d["SizeRw"] = size; d["SizeRootFs"] = size }
        return d
    }

    static func event(_ e: EngineEvent) -> [String: Any] {
        let secs = e.time.timeIntervalSince1970
        var attrs = e.attributes
        if e.type == "container" && attrs["image"] == nil { attrs["image"] = "" }
        return [
            "Type": e.type, "Action": e.action, "Actor": ["ID": e.id, "Attributes": attrs] as [String: Any],
            "scope": "local", "time": Int(secs), "timeNano": Int64(secs * 1e9),
            "status": e.action, "id": e.id, "from": attrs["image"] ?? "",
        ]
    }

    /// An image stored under its digest only (loaded without a name) is untagged for Docker's clients.
    /// Names as Docker's daemon shows them: "busybox:latest", not "docker.io/library/busybox:latest".
    static func tags(_ s: ImageSummary) -> [String] {
        s.names.filter { !$0.hasPrefix("sha256:") }.map { (try? Reference(parsing: $0))?.familiarString ?? $0 }
    }
    static func digests(_ s: ImageSummary) -> [String] {
        s.repoDigests.filter { !$0.contains("/sha256@") }.map { d in
            guard let at = d.firstIndex(of: "@"), let r = try? Reference(parsing: String(d[..<at])) else { return d }
            return r.familiarName + d[at...]
        }
    }

    static func imageSummary(_ s: ImageSummary, containers: Int) -> [String: Any] {
        [
            "Id": s.id.description, "ParentId": "", "RepoTags": tags(s), "RepoDigests": digests(s),
            "Created": Int(s.created.flatMap { Timestamp.parse($0) }?.timeIntervalSince1970 ?? 0),
            "Size": s.unpackedSize, "SharedSize": -1, "VirtualSize": s.unpackedSize,
            "Labels": s.config.config?.Labels ?? [:], "Containers": containers,
        ]
    }

    static func imageInspect(_ s: ImageSummary) -> [String: Any] {
        let ic = s.config.config
        var cfg: [String: Any] = [
            "Env": ic?.Env ?? [], "Cmd": ic?.Cmd as Any? ?? NSNull(), "Entrypoint": ic?.Entrypoint as Any? ?? NSNull(),
            "WorkingDir": ic?.WorkingDir ?? "", "User": ic?.User ?? "", "Labels": ic?.Labels as Any? ?? NSNull(),
            "StopSignal": ic?.StopSignal as Any? ?? NSNull(),
        ]
        if let v = ic?.Volumes { cfg["Volumes"] = Dictionary(uniqueKeysWithValues: v.keys.map { ($0, [String: Any]()) }) }
        if let p = ic?.ExposedPorts { cfg["ExposedPorts"] = Dictionary(uniqueKeysWithValues: p.keys.map { ($0, [String: Any]()) }) }
        return [
            "Id": s.id.description, "RepoTags": tags(s), "RepoDigests": digests(s), "Parent": "", "Comment": "",
            "Created": s.created ?? Timestamp.zero, "DockerVersion": "", "Author": s.config.author ?? "",
            "Config": cfg, "Architecture": s.platform.architecture, "Os": s.platform.os,
            "Variant": s.platform.variant as Any? ?? NSNull(),
            "Size": s.unpackedSize, "VirtualSize": s.unpackedSize,
            "GraphDriver": ["Name": "overlay2", "Data": [String: String]()] as [String: Any],
            "RootFS": ["Type": "layers", "Layers": s.config.rootfs.diff_ids.map(\.description)] as [String: Any],
            "Metadata": ["LastTagTime": Timestamp.zero],
        ]
    }
}
