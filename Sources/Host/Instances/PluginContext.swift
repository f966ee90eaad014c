import Foundation
import Logging
import QuacPluginAPI

/// The host as one plugin instance sees it: owns the instance's quac_host struct, collects the error
/// messages the plugin sets, and routes its calls into the run's classifier and converter.
///
/// A message belongs to the call in flight on the thread that set it, so the concurrent calls of a
/// reentrant plugin each keep their own reason; a message from a thread of the plugin's own goes to a
/// failing call that set none.
public final class PluginContext: @unchecked Sendable {
    public let label: String
    weak var run: RunContext?
    let host: UnsafeMutablePointer<quac_host>
    private let lock = NSLock()
    /// Per calling thread: the plugin's message, and the failure of a classifier or converter call it
    /// made (appended to its own message).
    private var messages: [pthread_t: (message: String?, cause: String?)] = [:]
    /// A message set from a thread that is in no call of this instance.
    private var orphan: String?
    /// The run's concept names as the JSON the concepts service hands out (kept as long as the host).
    private var conceptNamesJSON: UnsafeMutablePointer<CChar>?

    init(label: String, run: RunContext?) {
        self.label = label
        self.run = run
        host = .allocate(capacity: 1)
        var h = quac_host()
        h.struct_size = UInt32(MemoryLayout<quac_host>.size)
        h.abi_major = UInt32(QUAC_ABI_VERSION_MAJOR)
        h.abi_minor = UInt32(QUAC_ABI_VERSION_MINOR)
        h.log = hostLog
        h.progress = hostProgress
        h.is_cancelled = hostIsCancelled
        h.set_error = hostSetError
        h.tensor_alloc = hostTensorAlloc
        h.classifier_info = hostClassifierInfo
        h.classifier_forward = hostClassifierForward
        h.classifier_vjp = hostClassifierVJP
        h.classifier_vjp_rule = hostClassifierVJPRule
        h.converter_convert = hostConverterConvert
        h.get_extension = hostGetExtension
        host.initialize(to: h)
        host.pointee.host_data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        host.deallocate()
        free(conceptNamesJSON)
        for s in strings.values { free(s) }
    }

    /// The concepts service's answer: made once, from the run's names.
    func conceptNames() -> UnsafePointer<CChar>? {
        lock.lock(); defer { lock.unlock() }
        if conceptNamesJSON == nil, let names = run?.conceptNames {
            conceptNamesJSON = strdup(JSONValue.array(names.map { .string($0) }).serialized())
        }
        return conceptNamesJSON.map { UnsafePointer($0) }
    }

    /// Per calling thread, the method a score call scores (QUAC_HOST_EXT_SCORED_METHOD).
    var scored: [pthread_t: PluginInstance] = [:]
    let scoredLock = NSLock()

    /// C strings a service hands out as "borrowed, valid as long as the host", made once per key.
    private var strings: [String: UnsafeMutablePointer<CChar>] = [:]

    func cachedString(_ key: String, _ make: () -> String) -> UnsafePointer<CChar>? {
        lock.lock(); defer { lock.unlock() }
        if let s = strings[key] { return UnsafePointer(s) }
        guard let s = strdup(make()) else { return nil }
        strings[key] = s
        return UnsafePointer(s)
    }

    static func from(_ host: UnsafePointer<quac_host>?) -> PluginContext? {
        guard let data = host?.pointee.host_data else { return nil }
        return Unmanaged<PluginContext>.fromOpaque(data).takeUnretainedValue()
    }

    func setError(_ text: String) {
        lock.lock(); defer { lock.unlock() }
        let me = pthread_self()
        if messages[me] != nil { messages[me]!.message = text } else { orphan = text }
    }

    /// Starts a call on this thread: its messages start empty.
    func beginCall() { lock.lock(); messages[pthread_self()] = (nil, nil); orphan = nil; lock.unlock() }

    /// Ends the call on this thread; returns its reason for failing, with the cause it ran into.
    @discardableResult
    func endCall() -> String {
        lock.lock(); defer { lock.unlock() }
        let mine = messages.removeValue(forKey: pthread_self())
        let own = (mine?.message ?? orphan)?.trimmingCharacters(in: .whitespacesAndNewlines)
        switch (own, mine?.cause) {
        case (let o?, let c?) where !o.isEmpty && !o.contains(c): return "\(o) (caused by \(c))"
        case (let o?, _) where !o.isEmpty: return o
        case (_, let c?): return c
        default: return "no message given (the plugin did not call set_error)"
        }
    }

    /// Records a failed service call and turns it into the status the plugin gets back.
    func serviceFailure(_ error: Error) -> quac_status {
        let text = (error as? QuacError)?.message ?? String(describing: error)
        lock.lock(); messages[pthread_self()]?.cause = text; lock.unlock()
        if let q = error as? QuacError, q.message.contains("forward-only") || q.message.contains("does not offer") {
            return quac_status(QUAC_ERR_UNSUPPORTED)
        }
        return quac_status(QUAC_ERR_INVALID_ARGUMENT)
    }
}

// MARK: - The C entry points of the host services. Each recovers its PluginContext from host_data.

private func outTensor(_ t: Tensor, _ out: UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status {
    guard let out else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    guard let m = t.managedCopy() else { return quac_status(QUAC_ERR_OUT_OF_MEMORY) }
    out.pointee = m
    return ABIStatus.ok
}

private func borrowed(_ t: UnsafePointer<quac_tensor>?, _ name: String) throws -> Tensor {
    guard let t else { throw QuacError("\(name) is NULL") }
    do { return try Tensor(borrowing: t.pointee) } catch { throw QuacError("\(name): \(error)") }
}

private let hostLog: @convention(c) (UnsafePointer<quac_host>?, quac_log_level, UnsafePointer<CChar>?) -> Void = { host, level, message in
    guard let ctx = PluginContext.from(host), let message else { return }
    let text = String(cString: message)
    let logger = ctx.run?.logger ?? Logger(label: "quac-host")
    let l: Logger.Level
    switch level {
    case QUAC_LOG_DEBUG: l = .debug
    case QUAC_LOG_WARNING: l = .warning
    case QUAC_LOG_ERROR: l = .error
    default: l = .info
    }
    logger.log(level: l, "\(ctx.label): \(text)")
}

private let hostProgress: @convention(c) (UnsafePointer<quac_host>?, Int64, Int64, UnsafePointer<CChar>?) -> Void = { host, done, total, label in
    guard let ctx = PluginContext.from(host) else { return }
    ctx.run?.onProgress?(ctx.label, done, total, label.map { String(cString: $0) })
}

private let hostIsCancelled: @convention(c) (UnsafePointer<quac_host>?) -> Bool = { host in
    PluginContext.from(host)?.run?.isCancelled ?? false
}

private let hostSetError: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<CChar>?) -> Void = { host, message in
    guard let ctx = PluginContext.from(host) else { return }
    let text = message.map { String(cString: $0) } ?? ""
    // One line: a plugin's multi-line message is folded.
    ctx.setError(text.split(whereSeparator: \.isNewline).joined(separator: " "))
}

private let hostTensorAlloc: @convention(c) (UnsafePointer<quac_host>?, quac_dtype, Int32, UnsafePointer<Int64>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, dtype, ndim, shape, out in
    guard let out, ndim >= 0, ndim <= 16, ndim == 0 || shape != nil else {
        PluginContext.from(host)?.setError("tensor_alloc: invalid arguments (ndim \(ndim))")
        return quac_status(QUAC_ERR_INVALID_ARGUMENT)
    }
    let dims = (0..<Int(ndim)).map { shape![$0] }
    guard DType(abi: dtype) != nil else {
        PluginContext.from(host)?.setError("tensor_alloc: unsupported \(dtype.displayName)")
        return quac_status(QUAC_ERR_INVALID_ARGUMENT)
    }
    guard dims.allSatisfy({ $0 >= 0 }) else {
        PluginContext.from(host)?.setError("tensor_alloc: negative dimension in \(dims)")
        return quac_status(QUAC_ERR_INVALID_ARGUMENT)
    }
    guard let m = HostAllocator.allocate(dtype: dtype, shape: dims) else {
        PluginContext.from(host)?.setError("tensor_alloc: cannot allocate \(dims)")
        return quac_status(QUAC_ERR_OUT_OF_MEMORY)
    }
    out.pointee = m
    return ABIStatus.ok
}

private func runClassifier(_ ctx: PluginContext) throws -> Classifier {
    guard let c = ctx.run?.classifier else { throw QuacError("this run has no classifier") }
    return c
}

/// The host services offered by id (since ABI 1.1); NULL for any other id.
private let hostGetExtension: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<CChar>?) -> UnsafeRawPointer? = { _, id in
    guard let id else { return nil }
    switch String(cString: id) {
    case QUAC_HOST_EXT_CONCEPTS: return UnsafeRawPointer(conceptsTable)
    case QUAC_HOST_EXT_CLASSIFIER_LAYERS: return UnsafeRawPointer(hostClassifierLayersTable)
    case QUAC_HOST_EXT_CLASSIFIER_WEIGHTS: return UnsafeRawPointer(hostClassifierWeightsTable)
    case QUAC_HOST_EXT_SCORED_METHOD: return UnsafeRawPointer(hostScoredMethodTable)
    default: return nil
    }
}

private let conceptsTable: UnsafeMutablePointer<quac_host_concepts> = {
    let t = UnsafeMutablePointer<quac_host_concepts>.allocate(capacity: 1)
    t.initialize(to: quac_host_concepts(struct_size: UInt32(MemoryLayout<quac_host_concepts>.size), names_json: { host in
        PluginContext.from(host)?.conceptNames()
    }))
    return t
}()

private let hostClassifierInfo: @convention(c) (UnsafePointer<quac_host>?, UnsafeMutablePointer<quac_classifier_info>?) -> quac_status = { host, out in
    guard let ctx = PluginContext.from(host), let out else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        let c = try runClassifier(ctx)
        let info = try c.info()
        let size = out.pointee.struct_size
        var filled = quac_classifier_info()
        filled.struct_size = min(size, UInt32(MemoryLayout<quac_classifier_info>.size))
        filled.num_classes = Int32(info.numClasses)
        filled.input_ndim = Int32(info.sampleShape.count)
        withUnsafeMutableBytes(of: &filled.input_shape) { raw in
            let p = raw.bindMemory(to: Int64.self)
            for i in 0..<4 { p[i] = i < info.sampleShape.count ? Int64(info.sampleShape[i]) : 0 }
        }
        filled.has_vjp = info.hasVJP
        // Copy only as many bytes as the caller's struct has (it may be from an older minor version).
        let byteCount = Int(filled.struct_size)
        withUnsafeBytes(of: filled) { src in
            UnsafeMutableRawPointer(out).copyMemory(from: src.baseAddress!, byteCount: byteCount)
        }
        return ABIStatus.ok
    } catch {
        ctx.setError("classifier_info: \(error)")
        return quac_status(QUAC_ERR_UNSUPPORTED)
    }
}

private let hostClassifierForward: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, x, logits in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        let out = try runClassifier(ctx).forward(try borrowed(x, "x"))
        return outTensor(out, logits)
    } catch { return ctx.serviceFailure(error) }
}

private let hostClassifierVJP: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, x, gradLogits, logits, gradX in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        let (l, g) = try runClassifier(ctx).vjp(try borrowed(x, "x"), gradLogits: try borrowed(gradLogits, "grad_logits"),
                                                wantLogits: logits != nil)
        let s = outTensor(g, gradX)
        if s == ABIStatus.ok, let logits, let l {
            let s2 = outTensor(l, logits)
            if s2 != ABIStatus.ok { gradX?.pointee.map { $0.pointee.deleter?($0) }; return s2 }
        }
        return s
    } catch { return ctx.serviceFailure(error) }
}

private let hostClassifierVJPRule: @convention(c) (UnsafePointer<quac_host>?, quac_backward_rule, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, rule, x, baseline, gradLogits, gradX in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        let b = try baseline.map { try borrowed($0, "baseline") }
        let g = try runClassifier(ctx).vjpRule(rule, x: try borrowed(x, "x"), baseline: b,
                                               gradLogits: try borrowed(gradLogits, "grad_logits"))
        return outTensor(g, gradX)
    } catch { return ctx.serviceFailure(error) }
}

private let hostConverterConvert: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UInt64, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, x, target, reference, seed, xcf in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        guard let converter = ctx.run?.converter else { throw QuacError("this run has no converter") }
        let batch = BatchInputs(x: try borrowed(x, "x"), target: try borrowed(target, "target"), seed: seed)
        let outputs = try converter.convert(batch)
        return outTensor(outputs.tensors["counterfactual"]!, xcf)
    } catch { return ctx.serviceFailure(error) }
}
