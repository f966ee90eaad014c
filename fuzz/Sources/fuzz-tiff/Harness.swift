import FuzzSupport
import FuzzDriver
import QuacCore

/// TIFFFile.read on a file holding the input (libtiff opens a path).
let scratch = ScratchFile(suffix: ".tiff")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    scratch.write(data, size)
    // 2^20 samples (the product allows 2^28): the same parsing and checks, without zeroing images of
    // hundreds of megabytes on every large header (which held the target to ~200 executions a second).
    _ = attempt { try TIFFFile.read(scratch.url, maxSamples: 1 << 20) }
    return 0
}

/// The executable's entry (SwiftPM links `main` to it): libFuzzer's driver with the harness above.
@_cdecl("fuzz_tiff_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data!, size) }
}
