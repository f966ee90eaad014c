import FuzzSupport
import FuzzDriver
import QuacCore

/// Safetensors.read on a file holding the input (the reader memory-maps a path).
let scratch = ScratchFile(suffix: ".safetensors")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    scratch.write(data, size)
    if let file = attempt({ try Safetensors.read(scratch.url) }) {
        // Touch every tensor's bytes so a view past the mapping shows up under ASan.
        for name in file.names { _ = file.tensors[name]?.copy() }
    }
    return 0
}

/// The executable's entry (SwiftPM links `main` to it): libFuzzer's driver with the harness above.
@_cdecl("fuzz_safetensors_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data!, size) }
}
