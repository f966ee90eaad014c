import Foundation

/// The kind tables every Swift plugin shares: each thunk finds its instance through plugin_data and
/// calls the protocol method, converting tensors at the boundary.
enum KindTables {
    static let classifier: UnsafeMutablePointer<quac_classifier> = make(quac_classifier(
        struct_size: UInt32(MemoryLayout<quac_classifier>.size), get_info: classifierGetInfo,
        forward: classifierForward, vjp: classifierVJP))
    static let modifiedBackward: UnsafeMutablePointer<quac_modified_backward> = make(quac_modified_backward(
        struct_size: UInt32(MemoryLayout<quac_modified_backward>.size), vjp_rule: classifierVJPRule))
    static let attributor: UnsafeMutablePointer<quac_attributor> = make(quac_attributor(
        struct_size: UInt32(MemoryLayout<quac_attributor>.size), attribute: attributorAttribute))
    static let scorer: UnsafeMutablePointer<quac_scorer> = make(quac_scorer(
        struct_size: UInt32(MemoryLayout<quac_scorer>.size), score: scorerScore))
    static let converter: UnsafeMutablePointer<quac_converter> = make(quac_converter(
        struct_size: UInt32(MemoryLayout<quac_converter>.size), convert: converterConvert))

    private static func make<T>(_ value: T) -> UnsafeMutablePointer<T> {
        let p = UnsafeMutablePointer<T>.allocate(capacity: 1)
        p.initialize(to: value)
        return p
    }
}

private func borrow(_ t: UnsafePointer<quac_tensor>?, _ name: String) throws -> Tensor {
    guard let t else { throw PluginError.invalid("\(name) is NULL") }
    do { return try Tensor(borrowing: t.pointee) } catch { throw PluginError.invalid("\(name): \(error)") }
}

private func plugin<P>(_ p: UnsafePointer<quac_plugin>?, as: P.Type) throws -> (P, HostServices) {
    guard let box = InstanceBox.from(p), let typed = box.plugin as? P else {
        throw PluginError(quac_status(QUAC_ERR_INTERNAL), "instance is not a \(P.self)")
    }
    return (typed, box.host)
}

private func host(_ p: UnsafePointer<quac_plugin>?) -> HostServices? { InstanceBox.from(p)?.host }

private func batch(_ b: UnsafePointer<quac_batch>?) throws -> Batch {
    guard let b else { throw PluginError.invalid("batch is NULL") }
    // Only the bytes the host's struct has: an older host's quac_batch is shorter than ours.
    var r = quac_batch()
    let size = min(Int(UnsafeRawPointer(b).load(as: UInt32.self)), MemoryLayout<quac_batch>.size)
    guard size >= MemoryLayout<quac_batch>.offset(of: \quac_batch.seed)! + MemoryLayout<UInt64>.size else {
        throw PluginError.invalid("batch struct_size \(size) is smaller than ABI 1.0's")
    }
    withUnsafeMutableBytes(of: &r) { $0.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(b), count: size)) }
    func opt(_ t: UnsafePointer<quac_tensor>?, _ n: String) throws -> Tensor? { try t.map { try borrow($0, n) } }
    // Fields a host of an older minor version does not pass are absent.
    let hasConcepts = Int(r.struct_size) >= MemoryLayout<quac_batch>.offset(of: \quac_batch.concepts)! + MemoryLayout<UnsafeRawPointer>.size
    var inputs = Batch(x: try borrow(r.x, "x"), source: try opt(r.source, "source"), target: try opt(r.target, "target"),
                  xCF: try opt(r.x_cf, "x_cf"), attribution: try opt(r.attribution, "attribution"),
                  reference: try opt(r.reference, "reference"), seed: r.seed)
    inputs.concepts = hasConcepts ? try opt(r.concepts, "concepts") : nil
    let hasMethodJSON = Int(r.struct_size) >= MemoryLayout<quac_batch>.offset(of: \quac_batch.method_json)! + MemoryLayout<UnsafeRawPointer>.size
    if hasMethodJSON, let text = r.method_json {
        guard let doc = try? JSONParser.parse(String(cString: text)), doc.objectValue != nil else {
            throw PluginError.invalid("method_json is not a JSON object")
        }
        inputs.methodJSON = doc
    }
    let hasMaps = Int(r.struct_size) >= MemoryLayout<quac_batch>.offset(of: \quac_batch.n_maps)! + MemoryLayout<UInt64>.size
    if hasMaps, r.n_maps > 0 {
        guard r.n_maps <= 4096 else { throw PluginError.invalid("n_maps is \(r.n_maps), more than 4096") }
        guard let maps = r.maps else { throw PluginError.invalid("maps is NULL but n_maps is \(r.n_maps)") }
        inputs.maps = try (0..<Int(r.n_maps)).map { i in
            guard let name = maps[i].name else { throw PluginError.invalid("maps[\(i)] has no name") }
            let n = String(cString: name)
            return (n, try borrow(maps[i].tensor, "maps[\"\(n)\"]"))
        }
    }
    try checkContract(inputs)
    return inputs
}

/// quac_batch's documented shapes and dtypes, enforced once here so a Swift plugin can rely on them
/// (and a host that breaks them gets an error, not a crash).
private func checkContract(_ b: Batch) throws {
    guard b.x.dtype == .float32, b.x.rank >= 1 else {
        throw PluginError.invalid("x: expected float32 [N, ...], got \(b.x.dtype.displayName) \(b.x.shape)")
    }
    let n = b.count
    for (name, t) in [("source", b.source), ("target", b.target)] {
        if let t, t.dtype != .int64 || t.shape != [n] {
            throw PluginError.invalid("\(name): expected int64 [\(n)], got \(t.dtype.displayName) \(t.shape)")
        }
    }
    if let t = b.xCF, t.dtype != .float32 || t.shape != b.x.shape {
        throw PluginError.invalid("x_cf: expected float32 \(b.x.shape) like x, got \(t.dtype.displayName) \(t.shape)")
    }
    // A map over the concepts (scorers of concept explainers) is shaped like them.
    if let t = b.attribution, t.dtype != .float32 || (t.shape != b.x.shape && t.shape != b.concepts?.shape) {
        throw PluginError.invalid("attribution: expected float32 \(b.x.shape) like x (or like the concepts), got \(t.dtype.displayName) \(t.shape)")
    }
    if let c = b.concepts, c.dtype != .float32 || c.rank != 2 || c.shape[0] != n {
        throw PluginError.invalid("concepts: expected float32 [\(n), k], got \(c.dtype.displayName) \(c.shape)")
    }
    // A scorer of a concept explainer gets that explainer's raw map here, shaped like the concepts.
    for (name, t) in b.maps where t.dtype != .float32 || (t.shape != b.x.shape && t.shape != b.concepts?.shape) {
        throw PluginError.invalid("maps[\"\(name)\"]: expected float32 \(b.x.shape) like x (or like the concepts), got \(t.dtype.displayName) \(t.shape)")
    }
    if let r = b.reference, r.dtype != .float32 || r.rank != b.x.rank {
        throw PluginError.invalid("reference: expected float32 images like x, got \(r.dtype.displayName) \(r.shape)")
    }
}

func putOutputs(_ outputs: Outputs, _ sink: UnsafePointer<quac_output_sink>?, _ host: HostServices) throws {
    guard let sink else { throw PluginError.invalid("output sink is NULL") }
    for (name, t) in outputs.tensors {
        let m = try host.managedCopy(t)
        let s = name.withCString { sink.pointee.put_tensor!(sink, $0, m) }
        guard s == quac_status(QUAC_OK) else { throw PluginError(s, "the host refused output \"\(name)\"") }
    }
    if let json = outputs.json {
        let text = json.serialized()
        let s = text.withCString { sink.pointee.put_json!(sink, $0, strlen($0)) }
        guard s == quac_status(QUAC_OK) else { throw PluginError(s, "the host refused the JSON output") }
    }
}

private func give(_ t: Tensor, _ out: UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?, _ host: HostServices) throws {
    guard let out else { throw PluginError.invalid("output pointer is NULL") }
    out.pointee = try host.managedCopy(t)
}

private let classifierGetInfo: @convention(c) (UnsafePointer<quac_plugin>?, UnsafeMutablePointer<quac_classifier_info>?) -> quac_status = { p, out in
    guarded(host(p)) {
        let (c, _) = try plugin(p, as: ClassifierPlugin.self)
        guard let out else { throw PluginError.invalid("info is NULL") }
        let spec = c.spec
        guard spec.sampleShape.count <= 4 else { throw PluginError.invalid("sample rank above 4") }
        out.pointee.num_classes = Int32(spec.numClasses)
        out.pointee.input_ndim = Int32(spec.sampleShape.count)
        withUnsafeMutableBytes(of: &out.pointee.input_shape) { raw in
            let d = raw.bindMemory(to: Int64.self)
            for i in 0..<4 { d[i] = i < spec.sampleShape.count ? Int64(spec.sampleShape[i]) : 0 }
        }
        out.pointee.has_vjp = c.supportsVJP
    }
}

private let classifierForward: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { p, x, out in
    guarded(host(p)) {
        let (c, h) = try plugin(p, as: ClassifierPlugin.self)
        try give(try c.forward(try borrow(x, "x")), out, h)
    }
}

private let classifierVJP: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { p, x, g, logits, gradX in
    guarded(host(p)) {
        let (c, h) = try plugin(p, as: ClassifierPlugin.self)
        guard let r = try c.vjp(try borrow(x, "x"), gradLogits: try borrow(g, "grad_logits")) else {
            throw PluginError.unsupported("this classifier is forward-only")
        }
        try give(r.gradX, gradX, h)
        if let logits {
            do { try give(r.logits, logits, h) } catch {
                gradX?.pointee.map { $0.pointee.deleter?($0) }
                throw error
            }
        }
    }
}

private let classifierVJPRule: @convention(c) (UnsafePointer<quac_plugin>?, quac_backward_rule, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { p, rule, x, baseline, g, out in
    guarded(host(p)) {
        let (c, h) = try plugin(p, as: ClassifierPlugin.self)
        let b = try baseline.map { try borrow($0, "baseline") }
        guard let r = try c.vjpRule(rule, x: try borrow(x, "x"), baseline: b, gradLogits: try borrow(g, "grad_logits")) else {
            throw PluginError.unsupported("backward rule \(rule.rawValue) is not supported")
        }
        try give(r, out, h)
    }
}

private let attributorAttribute: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<quac_batch>?, UnsafePointer<quac_output_sink>?) -> quac_status = { p, b, sink in
    guarded(host(p)) {
        let (a, h) = try plugin(p, as: AttributorPlugin.self)
        try putOutputs(try a.attribute(try batch(b)), sink, h)
    }
}

private let scorerScore: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<quac_batch>?, UnsafePointer<quac_output_sink>?) -> quac_status = { p, b, sink in
    guarded(host(p)) {
        let (s, h) = try plugin(p, as: ScorerPlugin.self)
        try putOutputs(try s.score(try batch(b)), sink, h)
    }
}

private let converterConvert: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<quac_batch>?, UnsafePointer<quac_output_sink>?) -> quac_status = { p, b, sink in
    guarded(host(p)) {
        let (c, h) = try plugin(p, as: ConverterPlugin.self)
        try putOutputs(try c.convert(try batch(b)), sink, h)
    }
}
