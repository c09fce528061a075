// The libFuzzer harness of the decoders: compiled by scripts/fuzz together with the sources of
// VigilCore (one module, -parse-as-library, -sanitize=fuzzer,address), never by SwiftPM.
// Everything it does lives in VigilCore's FuzzEntry, which the regression tests call too.

@_cdecl("LLVMFuzzerTestOneInput")
public func vigilFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzEntry.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
