import VigilDaemon

/// The executable is only this: every command lives in VigilDaemon, testable in-process.
@main
enum Vigil {
    static func main() async {
        await VigilCommand.main()
    }
}
