import Foundation
import QuacPluginAPI

// The host service QUAC_HOST_EXT_SCORED_METHOD: during a score call, the scorer may run the method it
// scores on other inputs (max-sensitivity re-explains perturbed inputs). The method is the one the
// calling thread's score call is for (PluginContext.withScoredMethod).

let hostScoredMethodTable: UnsafeMutablePointer<quac_host_scored_method> = {
    let t = UnsafeMutablePointer<quac_host_scored_method>.allocate(capacity: 1)
    t.initialize(to: quac_host_scored_method(struct_size: UInt32(MemoryLayout<quac_host_scored_method>.size), attribute: hostScoredAttribute,
                                             attribute_randomized: hostScoredAttributeRandomized))
    return t
}()

extension PluginContext {
    /// Runs `body` (a score call on this thread) with `method` as the method being scored.
    func withScoredMethod<R>(_ method: PluginInstance, _ body: () throws -> R) rethrows -> R {
        let me = pthread_self()
        scoredLock.lock(); scored[me] = method; scoredLock.unlock()
        defer { scoredLock.lock(); scored[me] = nil; scoredLock.unlock() }
        return try body()
    }

    func scoredMethod() -> PluginInstance? {
        scoredLock.lock(); defer { scoredLock.unlock() }
        return scored[pthread_self()]
    }
}

/// A quac_batch's inputs as the host's (borrowed views; valid during the call).
private func inputs(_ b: UnsafePointer<quac_batch>) throws -> BatchInputs {
    let r = b.pointee
    func tensor(_ t: UnsafePointer<quac_tensor>?, _ name: String) throws -> Tensor? {
        guard let t else { return nil }
        do { return try Tensor(borrowing: t.pointee) } catch { throw QuacError("batch \(name): \(error)") }
    }
    guard let x = try tensor(r.x, "x") else { throw QuacError("batch x is NULL") }
    let hasConcepts = Int(r.struct_size) >= MemoryLayout<quac_batch>.offset(of: \quac_batch.concepts)! + MemoryLayout<UnsafeRawPointer>.size
    return BatchInputs(x: x, source: try tensor(r.source, "source"), target: try tensor(r.target, "target"), xCF: try tensor(r.x_cf, "x_cf"),
                       seed: r.seed, concepts: hasConcepts ? try tensor(r.concepts, "concepts") : nil)
}

private let hostScoredAttribute: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<quac_batch>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, batch, out in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        guard let batch, let out else { throw QuacError("batch and attribution must not be NULL") }
        guard let method = ctx.scoredMethod() else { throw QuacError("the scored method is only known during a score call; this host does not offer it here") }
        guard MapSources.names(method.manifest, method.parameters).isEmpty else {
            throw QuacError("the scored method \(method.label) takes other attributors' maps, which are not known for other inputs; it cannot be re-run (does not offer)")
        }
        let map = try method.attribute(try inputs(batch)).tensors["attribution"]!
        guard let m = map.managedCopy() else { return quac_status(QUAC_ERR_OUT_OF_MEMORY) }
        out.pointee = m
        return ABIStatus.ok
    } catch { return ctx.serviceFailure(error) }
}

private let hostScoredAttributeRandomized: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<quac_batch>?, UInt32, UInt64, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, batch, count, seed, out in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        guard let batch, let out else { throw QuacError("batch and attribution must not be NULL") }
        guard let method = ctx.scoredMethod() else { throw QuacError("the scored method is only known during a score call; this host does not offer it here") }
        guard let classifier = ctx.run?.classifier as? PluginInstance,
              let table = classifier.table(QUAC_EXT_CLASSIFIER_RANDOMIZE, quac_classifier_randomize.self), let randomize = table.pointee.randomize else {
            throw QuacError("the run's classifier does not offer \(QUAC_EXT_CLASSIFIER_RANDOMIZE) (it cannot re-draw its layers)")
        }
        guard MapSources.names(method.manifest, method.parameters).isEmpty else {
            throw QuacError("the scored method \(method.label) takes other attributors' maps, which are not known for another classifier; it cannot be re-run (does not offer)")
        }
        try classifier.invoke("randomize") { randomize(classifier.plugin, count, seed) }
        // The trained weights come back whatever happens next.
        defer { try? classifier.invoke("randomize") { randomize(classifier.plugin, 0, 0) } }
        let map = try method.attribute(try inputs(batch)).tensors["attribution"]!
        guard let m = map.managedCopy() else { return quac_status(QUAC_ERR_OUT_OF_MEMORY) }
        out.pointee = m
        return ABIStatus.ok
    } catch { return ctx.serviceFailure(error) }
}
