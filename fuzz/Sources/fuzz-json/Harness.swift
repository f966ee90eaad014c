import FuzzSupport
import FuzzDriver
import QuacCore

/// JSONParser.parse on the input; when it parses, the value is also compiled as a JSON Schema
/// (schemas come from plugin manifests) and, when that succeeds, the value is validated against itself,
/// checked with isValid and filled with the schema's defaults. The serialized value must parse again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = attempt({ try JSONParser.parse(bytes) }) else { return 0 }
    let text = value.serialized()
    guard (try? JSONParser.parse(text)) != nil else { fatalError("JSONWriter output does not parse: \(text)") }
    if let schema = attempt({ try JSONSchema(value, source: "fuzz.schema.json") }) {
        _ = schema.validate(value)
        _ = schema.isValid(value)
        _ = schema.applyingDefaults(to: value)
    }
    return 0
}

/// The executable's entry (SwiftPM links `main` to it): libFuzzer's driver with the harness above.
@_cdecl("fuzz_json_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data!, size) }
}
