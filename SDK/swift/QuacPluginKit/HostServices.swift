import Foundation

/// The host services (quac_host) as Swift: logging, progress, cancellation, and calls into the run's
/// classifier and converter. Results come back as Tensors the plugin owns.
public struct HostServices: @unchecked Sendable {
    public let raw: UnsafePointer<quac_host>

    public init(_ raw: UnsafePointer<quac_host>) { self.raw = raw }

    public func log(_ message: String, level: quac_log_level = QUAC_LOG_INFO) {
        message.withCString { raw.pointee.log?(raw, level, $0) }
    }

    public func progress(_ done: Int, of total: Int, _ label: String? = nil) {
        if let label { label.withCString { raw.pointee.progress?(raw, Int64(done), Int64(total), $0) } }
        else { raw.pointee.progress?(raw, Int64(done), Int64(total), nil) }
    }

    public var isCancelled: Bool { raw.pointee.is_cancelled?(raw) ?? false }

    /// Throws PluginError.cancelled() once the user asked to stop.
    public func checkCancelled() throws { if isCancelled { throw PluginError.cancelled() } }

    public func setError(_ message: String) { message.withCString { raw.pointee.set_error?(raw, $0) } }

    /// A host-allocated copy of `t` (ownership passes to whoever receives the pointer).
    func managedCopy(_ t: Tensor) throws -> UnsafeMutablePointer<quac_managed_tensor> {
        var out: UnsafeMutablePointer<quac_managed_tensor>?
        var dims = t.shape.map(Int64.init)
        let status = dims.withUnsafeMutableBufferPointer { raw.pointee.tensor_alloc!(raw, t.dtype.abi, Int32(t.rank), $0.baseAddress, &out) }
        guard status == quac_status(QUAC_OK), let m = out else {
            throw PluginError(status == quac_status(QUAC_OK) ? quac_status(QUAC_ERR_OUT_OF_MEMORY) : status, "host could not allocate a tensor of shape \(t.shape)")
        }
        if t.byteCount > 0 { m.pointee.tensor.data.copyMemory(from: t.data, byteCount: t.byteCount) }
        return m
    }

    /// The run's classifier: its classes and input shape.
    public func classifierInfo() throws -> (spec: ClassifierSpec, hasVJP: Bool) {
        var info = quac_classifier_info()
        info.struct_size = UInt32(MemoryLayout<quac_classifier_info>.size)
        try check(raw.pointee.classifier_info!(raw, &info), "classifier_info")
        let dims = withUnsafeBytes(of: info.input_shape) { Array($0.bindMemory(to: Int64.self)) }
        return (ClassifierSpec(numClasses: Int(info.num_classes), sampleShape: dims.prefix(Int(info.input_ndim)).map { Int($0) }), info.has_vjp)
    }

    public func classifierForward(_ x: Tensor) throws -> Tensor {
        var out: UnsafeMutablePointer<quac_managed_tensor>?
        try x.withABITensor { xp in try check(raw.pointee.classifier_forward!(raw, xp, &out), "classifier forward") }
        return try Tensor(adopting: out!)
    }

    /// grad_x of <grad_logits, f(x)>, and f(x) from the same pass.
    public func classifierVJP(_ x: Tensor, gradLogits: Tensor) throws -> (logits: Tensor, gradX: Tensor) {
        var logits: UnsafeMutablePointer<quac_managed_tensor>?
        var grad: UnsafeMutablePointer<quac_managed_tensor>?
        try x.withABITensor { xp in
            try gradLogits.withABITensor { gp in
                try check(raw.pointee.classifier_vjp!(raw, xp, gp, &logits, &grad), "classifier vjp")
            }
        }
        return (try Tensor(adopting: logits!), try Tensor(adopting: grad!))
    }

    public func classifierVJPRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor {
        var grad: UnsafeMutablePointer<quac_managed_tensor>?
        let xv = x.abiView(), gv = gradLogits.abiView(), bv = baseline?.abiView()
        try withExtendedLifetime((xv, gv, bv)) {
            try check(raw.pointee.classifier_vjp_rule!(raw, rule, xv.pointer, bv.map { UnsafePointer($0.pointer) }, gv.pointer, &grad), "classifier vjp_rule")
        }
        return try Tensor(adopting: grad!)
    }

    public func convert(_ x: Tensor, target: Tensor, reference: Tensor? = nil, seed: UInt64) throws -> Tensor {
        var out: UnsafeMutablePointer<quac_managed_tensor>?
        let xv = x.abiView(), tv = target.abiView(), rv = reference?.abiView()
        try withExtendedLifetime((xv, tv, rv)) {
            try check(raw.pointee.converter_convert!(raw, xv.pointer, tv.pointer, rv.map { UnsafePointer($0.pointer) }, seed, &out), "converter")
        }
        return try Tensor(adopting: out!)
    }

    /// A failed service call: the host already recorded why, and adds it to this plugin's message.
    private func check(_ status: quac_status, _ what: String) throws {
        guard status == quac_status(QUAC_OK) else { throw PluginError(status, "\(what) failed") }
    }

    /// One-hot rows [N, classes] with `value` at each label: the grad_logits that select f_y.
    public static func oneHot(_ labels: [Int64], classes: Int, value: Float = 1) throws -> Tensor {
        let t = Tensor(zeros: [labels.count, classes])
        let p = t.floats
        for (i, y) in labels.enumerated() {
            guard y >= 0, y < classes else { throw PluginError.invalid("label \(y) of sample \(i) is outside [0, \(classes))") }
            p[i * classes + Int(y)] = value
        }
        return t
    }
}

extension HostServices {
    /// The run's concept names (QUAC_HOST_EXT_CONCEPTS), or nil when the run has no concepts or the
    /// host is older than ABI 1.1.
    public func conceptNames() -> [String]? {
        let hasExtensions = Int(raw.pointee.struct_size) >= MemoryLayout<quac_host>.offset(of: \quac_host.get_extension)! + MemoryLayout<UnsafeRawPointer>.size
        guard hasExtensions, let t = raw.pointee.get_extension?(raw, QUAC_HOST_EXT_CONCEPTS) else { return nil }
        let table = t.assumingMemoryBound(to: quac_host_concepts.self)
        guard let json = table.pointee.names_json?(raw) else { return nil }
        return (try? JSONParser.parse(String(cString: json)))?.arrayValue?.compactMap(\.stringValue)
    }
}

extension HostServices {
    /// During a score call: the raw map of the method being scored for other inputs (ABI 1.2,
    /// QUAC_HOST_EXT_SCORED_METHOD), e.g. perturbed copies of the batch's samples.
    public func scoredMethodAttribute(x: Tensor, source: Tensor?, target: Tensor?, xCF: Tensor?, concepts: Tensor?, seed: UInt64) throws -> Tensor {
        try scoredMethod(x: x, source: source, target: target, xCF: xCF, concepts: concepts, seed: seed) { table, batch, out in
            table.pointee.attribute!(raw, batch, out)
        }
    }

    /// As scoredMethodAttribute, with the run's classifier's `count` top layers re-drawn from
    /// `randomSeed` for the call (the cascading model randomisation of a sanity check).
    public func scoredMethodAttributeRandomized(count: Int, randomSeed: UInt64, x: Tensor, source: Tensor?, target: Tensor?, xCF: Tensor?,
                                                concepts: Tensor?, seed: UInt64) throws -> Tensor {
        try scoredMethod(x: x, source: source, target: target, xCF: xCF, concepts: concepts, seed: seed) { table, batch, out in
            guard let f = table.pointee.attribute_randomized else { return quac_status(QUAC_ERR_UNSUPPORTED) }
            return f(raw, batch, UInt32(count), randomSeed, out)
        }
    }

    private func scoredMethod(x: Tensor, source: Tensor?, target: Tensor?, xCF: Tensor?, concepts: Tensor?, seed: UInt64,
                              _ call: (UnsafePointer<quac_host_scored_method>, UnsafePointer<quac_batch>, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>) -> quac_status) throws -> Tensor {
        let hasExtensions = Int(raw.pointee.struct_size) >= MemoryLayout<quac_host>.offset(of: \quac_host.get_extension)! + MemoryLayout<UnsafeRawPointer>.size
        guard hasExtensions, let t = raw.pointee.get_extension?(raw, QUAC_HOST_EXT_SCORED_METHOD) else {
            throw PluginError.unsupported("this host cannot re-run the scored method (\(QUAC_HOST_EXT_SCORED_METHOD), ABI 1.2)")
        }
        let table = t.assumingMemoryBound(to: quac_host_scored_method.self)
        let views = [x, source, target, xCF, concepts].map { $0?.abiView() }
        var b = quac_batch()
        b.struct_size = UInt32(MemoryLayout<quac_batch>.size)
        b.x = UnsafePointer(views[0]!.pointer)
        b.source = views[1].map { UnsafePointer($0.pointer) }
        b.target = views[2].map { UnsafePointer($0.pointer) }
        b.x_cf = views[3].map { UnsafePointer($0.pointer) }
        b.concepts = views[4].map { UnsafePointer($0.pointer) }
        b.seed = seed
        var out: UnsafeMutablePointer<quac_managed_tensor>?
        let status = withExtendedLifetime(views) { withUnsafePointer(to: &b) { call(UnsafePointer(table), $0, &out) } }
        guard status == quac_status(QUAC_OK), let m = out else { throw PluginError(status == quac_status(QUAC_OK) ? quac_status(QUAC_ERR_INTERNAL) : status, "re-running the scored method failed") }
        return try Tensor(adopting: m)
    }
}
