import Foundation

/// zlib as a platform reads it: Python's `zlib.decompress`, in a child process.
public enum Zlib {
    /// Whether python3 is there to ask.
    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: python) }

    static let python = "/usr/bin/python3"

    /// `zlib.decompress(data)`, or nil when Python refuses the stream (its error in `error`).
    public static func decompress(_ data: [UInt8]) throws -> (bytes: [UInt8]?, error: String) {
        let dir = TemporaryDirectory("vigil-zlib")
        let input = dir.file("in.z")
        try Data(data).write(to: URL(fileURLWithPath: input))
        let script = "import sys, zlib; sys.stdout.buffer.write(zlib.decompress(open(sys.argv[1], 'rb').read()))"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script, input]
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let bytes = out.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus == 0 ? [UInt8](bytes) : nil, message)
    }
}
