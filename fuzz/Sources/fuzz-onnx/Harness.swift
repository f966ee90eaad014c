import FuzzSupport
import FuzzDriver
import Foundation
import OnnxImport

/// OnnxConverter.convert on the input's bytes (what `quac-host import MODEL.onnx` runs on the file in
/// the classifier plugin): protobuf decoding, tensor decoding, shape inference and constant folding,
/// then every weight's values summed, so a tensor shorter than its shape shows up under ASan.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let conversion = attempt({ try OnnxConverter.convert(Data(bytes: data, count: size)) }) {
        var sum: Float = 0
        for (_, tensor) in conversion.weights { sum += tensor.floatArray().reduce(0, +) }
        if verbose { print("\(conversion.architecture.serialized().count) bytes of architecture, sum \(sum)") }
    }
    return 0
}

/// The executable's entry (SwiftPM links `main` to it): libFuzzer's driver with the harness above.
@_cdecl("fuzz_onnx_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data!, size) }
}
