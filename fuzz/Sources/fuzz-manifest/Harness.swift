import FuzzSupport
import FuzzDriver
import QuacHost

/// PipelineManifest.load on a file holding the input: JSON parse, validation against the bundled
/// pipeline-manifest schema, defaults, then the checks of PipelineManifest.init.
let scratch = ScratchFile(suffix: ".json")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    scratch.write(data, size)
    _ = attempt { try PipelineManifest.load(scratch.url) }
    return 0
}

/// The executable's entry (SwiftPM links `main` to it): libFuzzer's driver with the harness above.
@_cdecl("fuzz_manifest_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data!, size) }
}
