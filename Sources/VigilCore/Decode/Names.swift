/// Names of networks, sites, devices and metrics: `[A-Za-z0-9_.-]{1,64}`.
public enum Names {
    public static let maxLength = 64

    @inlinable
    public static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// Whether `bytes` is a valid name.
    @inlinable
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 1, bytes.count <= maxLength else { return false }
        for b in bytes where !isNameByte(b) { return false }
        return true
    }

    public static func isValid(_ name: String) -> Bool {
        var copy = name
        return copy.withUTF8 { isValid(UnsafeRawBufferPointer($0)) }
    }
}
