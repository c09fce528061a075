import Foundation

/// A child process started with `posix_spawn`, a clean signal mask and default signal
/// handlers. (Foundation's `Process` passes on the parent's mask, and a test process has
/// SIGTERM blocked, so a broker or daemon started that way could not be stopped.)
/// `@unchecked Sendable`: `status` and `usage` are written once, under `lock`; the rest is immutable.
public final class ChildProcess: @unchecked Sendable {
    // `status` and `usage` are written once when it is reaped, under `lock`; the rest is immutable.
    public let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?
    private var usage = rusage()

    /// Bytes the child caused to be written to storage over its whole life (the kernel's
    /// `write_bytes`, as `ru_oublock` in 512-byte blocks; tmpfs writes do not count), once
    /// it has been reaped; nil before. Its own figure alone: a parent's /proc/self/io
    /// would add everything else the parent and its other children wrote.
    public var writtenBytes: Int64? {
        lock.lock()
        defer { lock.unlock() }
        return status == nil ? nil : Int64(usage.ru_oublock) * 512
    }

    /// Starts `executable` with `arguments`; stdout and stderr go to `outputPath` (appended), or /dev/null.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, outputPath: String? = nil)
        throws
    {
        pid = try Self.spawn(executable, arguments, environment: environment) { actions in
            posix_spawn_file_actions_addopen(&actions, 1, outputPath ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
    }

    /// `posix_spawn` with stdin from /dev/null, a clean signal mask and default handlers;
    /// `redirect` sets up stdout and stderr.
    static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String]?,
        redirect: (inout posix_spawn_file_actions_t) -> Void
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        redirect(&actions)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attr, argv, envp)
        guard rc == 0 else {
            throw NSError(
                domain: "ChildProcess", code: Int(rc),
                userInfo: [NSLocalizedDescriptionKey: "posix_spawn \(executable): \(String(cString: strerror(rc)))"])
        }
        return child
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    /// Whether it has not exited (reaps it if it has).
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if status != nil { return false }
        var st: Int32 = 0
        let r = wait4(pid, &st, WNOHANG, &usage)
        if r == pid {
            status = st
            return false
        }
        return r == 0
    }

    /// Waits for the exit; returns the exit code (128 + signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        if status == nil {
            var st: Int32 = 0
            while wait4(pid, &st, 0, &usage) == -1 && errno == EINTR {}
            status = st
        }
        return Self.exitCode(status!)
    }

    static func exitCode(_ st: Int32) -> Int32 {
        let sig = st & 0x7F
        return sig == 0 ? (st >> 8) & 0xFF : 128 + sig
    }

    /// SIGTERM, then SIGKILL if it is still there after `timeout` seconds.
    @discardableResult
    public func terminate(timeout: TimeInterval = 20) -> Int32 {
        signal(SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { usleep(10_000) }
        if isRunning { signal(SIGKILL) }
        return wait()
    }

    /// Runs a command to completion, capturing its output (stdout and stderr apart).
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let dir = TemporaryDirectory("vigil-cmd")
        let outPath = dir.file("out")
        let errPath = dir.file("err")
        let child = try spawn(executable, arguments, environment: environment) { actions in
            posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        var st: Int32 = 0
        while waitpid(child, &st, 0) == -1 && errno == EINTR {}
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return (exitCode(st), out, err)
    }
}
