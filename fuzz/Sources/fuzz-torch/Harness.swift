import FuzzSupport
import FuzzDriver
import QuacCore

/// TorchCheckpoint.read on the input's bytes in memory (what `read(_ url:)` calls on the mapped file),
/// then every tensor's bytes summed, so a view past its storage or the input shows up under ASan.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let checkpoint = attempt({ try TorchCheckpoint.read(bytes, path: "fuzz.pt") }) {
        var sum: UInt8 = 0
        for (_, tensor) in checkpoint.tensors().named {
            for byte in UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount) { sum &+= byte }
        }
        if verbose { print("sum \(sum)") }
    }
    return 0
}

/// The executable's entry (SwiftPM links `main` to it): libFuzzer's driver with the harness above.
@_cdecl("fuzz_torch_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data!, size) }
}
