// The libFuzzer harness of the decoders. libFuzzer brings `main`, so this is compiled as a
// library (-parse-as-library), and built only by scripts/fuzz: swift build in this package,
// with the fuzzer and AddressSanitizer over the whole build, VigilCore too. What is checked
// lives in VigilFuzzCheck (Fuzz/Check), which the regression tests call as well; trapping on a
// broken invariant is how libFuzzer learns of it.

import VigilFuzzCheck

@_cdecl("LLVMFuzzerTestOneInput")
public func vigilFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if let violation = FuzzCheck.violation(in: UnsafeRawBufferPointer(start: data, count: size)) {
        fatalError("vigil fuzz invariant: \(violation)")
    }
    return 0
}
