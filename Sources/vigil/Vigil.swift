#if canImport(Glibc)
import Glibc
#endif
import VigilDaemon

/// The executable is only this: every command lives in VigilDaemon, testable in-process.
@main
enum Vigil {
    static func main() async {
        // A parent may hand down a mask with SIGTERM blocked; the daemon must hear it.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        await VigilCommand.main()
    }
}
