import Foundation

/// The standard `process_*` series, read from `/proc/self` (which the unit's
/// `ProcSubset=pid` leaves visible) and from the kernel's clocks.
struct ProcessMetrics {
    var residentBytes: Double?
    var virtualBytes: Double?
    var cpuSeconds: Double?
    var openFDs: Double?
    var maxFDs: Double?

    static func read() -> ProcessMetrics {
        var m = ProcessMetrics()
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let f = statm.split(separator: " ").compactMap { Double($0) }
            if f.count >= 2 {
                m.virtualBytes = f[0] * page
                m.residentBytes = f[1] * page
            }
        }
        if let f = statFields(), f.count > 12, let user = Double(f[11]), let system = Double(f[12]) {
            m.cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") { m.openFDs = Double(fds.count) }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { m.maxFDs = Double(limit.rlim_cur) }
        return m
    }

    /// The fields of `/proc/self/stat` after the command name (field 3, the state, first).
    static func statFields() -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    /// Seconds since the epoch when this process started: its start in clock ticks since
    /// boot, against CLOCK_BOOTTIME now (`/proc/stat`'s btime is hidden by `ProcSubset=pid`).
    static func startTime() -> Double {
        var boot = timespec()
        var wall = timespec()
        clock_gettime(CLOCK_BOOTTIME, &boot)
        clock_gettime(CLOCK_REALTIME, &wall)
        let now = Double(wall.tv_sec) + Double(wall.tv_nsec) / 1e9
        guard let f = statFields(), f.count > 19, let ticks = Double(f[19]) else { return now }
        let sinceBoot = Double(boot.tv_sec) + Double(boot.tv_nsec) / 1e9
        return (now - (sinceBoot - ticks / Double(sysconf(Int32(_SC_CLK_TCK))))).rounded()
    }
}
