import CFFI
import Foundation
import QuacPluginAPI

/// A plain C function in an existing shared library, called through libffi as a forward-only
/// classifier, so a C model is usable without writing a plugin. Gradient methods refuse it.
public final class ForeignClassifier: Classifier, @unchecked Sendable {
    public let label: String
    let spec: PipelineManifest.ForeignClassifierSpec
    let signature: CSignature
    let handle: UnsafeMutableRawPointer
    let function: UnsafeMutableRawPointer
    private let cif: UnsafeMutablePointer<ffi_cif>
    private let argTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>
    let record: JSONValue

    public init(spec: PipelineManifest.ForeignClassifierSpec, manifestFile: String) throws {
        func fail(_ field: String, _ why: String) -> QuacError { QuacError.at(manifestFile, "\(spec.pointer)/\(field)", why) }
        self.spec = spec
        do { signature = try CSignature.parse(spec.signature) } catch let e as QuacError { throw fail("signature", e.message) }
        guard signature.name == spec.symbol else {
            throw fail("signature", "declares \(signature.name), but \"symbol\" is \(spec.symbol)")
        }
        guard spec.numClasses >= 1 else { throw fail("num_classes", "must be >= 1") }
        guard !spec.inputShape.isEmpty, spec.inputShape.count <= 4, spec.inputShape.allSatisfy({ $0 >= 1 }) else {
            throw fail("input_shape", "must list 1 to 4 positive sizes")
        }
        guard let h = dlopen(spec.library, RTLD_NOW | RTLD_LOCAL) else {
            throw fail("library", "cannot load \(spec.library): \(dlerror().map { String(cString: $0) } ?? "unknown reason")")
        }
        guard let f = dlsym(h, spec.symbol) else {
            dlclose(h)
            throw fail("symbol", "\(spec.library) has no symbol \"\(spec.symbol)\"")
        }
        handle = h
        function = f
        label = "foreign \(spec.symbol) (\(URL(fileURLWithPath: spec.library).lastPathComponent))"
        // The call interface, prepared once.
        argTypes = .allocate(capacity: max(signature.arguments.count, 1))
        for (i, a) in signature.arguments.enumerated() {
            switch a {
            case .input, .output: argTypes[i] = withUnsafeMutablePointer(to: &ffi_type_pointer) { $0 }
            case .count(let t): argTypes[i] = ForeignClassifier.ffiType(t)
            }
        }
        cif = .allocate(capacity: 1)
        let ret = signature.returnType.map(ForeignClassifier.ffiType) ?? withUnsafeMutablePointer(to: &ffi_type_void) { $0 }
        let status = ffi_prep_cif(cif, FFI_DEFAULT_ABI, UInt32(signature.arguments.count), ret, argTypes)
        guard status == FFI_OK else {
            cif.deallocate(); argTypes.deallocate(); dlclose(h)
            throw fail("signature", "libffi cannot prepare this call (status \(status.rawValue))")
        }
        record = [
            "name": "classifier", "kind": "classifier", "foreign": .string(spec.symbol), "library": .string(spec.library),
            "library_sha256": .string((try? SHA256.hex(fileAt: URL(fileURLWithPath: spec.library))) ?? ""),
            "signature": .string(spec.signature), "num_classes": .int(Int64(spec.numClasses)),
            "input_shape": .array(spec.inputShape.map { .int(Int64($0)) }),
        ]
    }

    deinit {
        cif.deallocate()
        argTypes.deallocate()
        dlclose(handle)
    }

    private static func ffiType(_ t: CSignature.IntegerType) -> UnsafeMutablePointer<ffi_type> {
        switch (t.bits, t.signed) {
        case (32, true): return withUnsafeMutablePointer(to: &ffi_type_sint32) { $0 }
        case (32, false): return withUnsafeMutablePointer(to: &ffi_type_uint32) { $0 }
        case (_, true): return withUnsafeMutablePointer(to: &ffi_type_sint64) { $0 }
        default: return withUnsafeMutablePointer(to: &ffi_type_uint64) { $0 }
        }
    }

    public func info() throws -> ClassifierInfo {
        ClassifierInfo(numClasses: spec.numClasses, sampleShape: spec.inputShape, hasVJP: false, hasModifiedBackward: false)
    }

    /// A C function makes no promise about concurrent calls: the host serialises them (the ABI's
    /// promise for classifier services), as it does for a plugin that is not reentrant.
    private let callLock = NSLock()

    public func rawForward(_ x: Tensor) throws -> Tensor {
        callLock.lock(); defer { callLock.unlock() }
        let n = x.shape[0]
        let logits = Tensor(zeros: [n, spec.numClasses])
        guard n > 0 else { return logits }
        // Without a count argument the function sees one sample at a time.
        let calls: [(Int, Int)] = signature.hasCount ? [(0, n)] : (0..<n).map { ($0, 1) }
        let per = x.count / n
        // Argument storage for ffi_call: one slot per argument, each holding the argument's value.
        let slots = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(signature.arguments.count, 1), alignment: 8)
        let values = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: max(signature.arguments.count, 1))
        defer { slots.deallocate(); values.deallocate() }
        for (first, count) in calls {
            for (i, a) in signature.arguments.enumerated() {
                let slot = slots + 8 * i
                switch a {
                case .input: slot.storeBytes(of: x.data + first * per * 4, as: UnsafeMutableRawPointer.self)
                case .output: slot.storeBytes(of: logits.data + first * spec.numClasses * 4, as: UnsafeMutableRawPointer.self)
                case .count(let t):
                    if t.bits == 32 { slot.storeBytes(of: Int32(count), as: Int32.self) } else { slot.storeBytes(of: Int64(count), as: Int64.self) }
                }
                values[i] = slot
            }
            var result: Int64 = 0   // ffi widens integer returns to a full register
            ffi_call(cif, unsafeBitCast(function, to: (@convention(c) () -> Void).self), &result, values)
            if signature.returnsStatus && Int32(truncatingIfNeeded: result) != 0 {
                throw QuacError("classifier \(label): \(spec.symbol) returned status \(Int32(truncatingIfNeeded: result)) for samples \(first)..<\(first + count)")
            }
        }
        return logits
    }

    public func rawVJP(_ x: Tensor, gradLogits: Tensor, wantLogits: Bool) throws -> (logits: Tensor?, gradX: Tensor) {
        throw QuacError("classifier \(label) is forward-only: it has no vector-Jacobian product, which gradient-based methods need")
    }

    public func rawLayers() -> ClassifierLayerCalls? { nil }

    public func rawVJPRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor {
        throw QuacError("classifier \(label) does not offer the extension \(QUAC_EXT_MODIFIED_BACKWARD)")
    }
}
