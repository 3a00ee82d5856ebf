// RFC 3339 timestamps without Foundation.
#if canImport(Glibc)
import Glibc
#endif

public enum Clock {
    /// "2026-12-01T18:10:23.123456789Z"
    public static func rfc3339(nanos: Bool = true) -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        var out = "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))"
        if nanos { out += "." + pad(Int32(ts.tv_nsec), 9) }
        return out + "Z"
    }
}
