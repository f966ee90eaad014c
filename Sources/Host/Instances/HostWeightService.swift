import Foundation
import QuacPluginAPI

// The host service QUAC_HOST_EXT_CLASSIFIER_WEIGHTS: a plugin's reads of the run's classifier's network
// and weights, checked (PluginWeightCalls) and failing with the classifier's reason.

let hostClassifierWeightsTable: UnsafeMutablePointer<quac_host_classifier_weights> = {
    let t = UnsafeMutablePointer<quac_host_classifier_weights>.allocate(capacity: 1)
    t.initialize(to: quac_host_classifier_weights(struct_size: UInt32(MemoryLayout<quac_host_classifier_weights>.size),
                                                  describe_json: hostWeightsDescribe, get: hostWeightsGet))
    return t
}()

private func weights(_ ctx: PluginContext) throws -> ClassifierWeightCalls {
    guard let c = ctx.run?.classifier else { throw QuacError("this run has no classifier") }
    guard let calls = c.rawWeights() else {
        throw QuacError("classifier \(c.label) does not offer the extension \(QUAC_EXT_CLASSIFIER_WEIGHTS) (its network and weights)", category: .user)
    }
    return calls
}

private let hostWeightsDescribe: @convention(c) (UnsafePointer<quac_host>?) -> UnsafePointer<CChar>? = { host in
    // NULL means "not offered"; a classifier that offers the extension but describes itself badly is
    // logged as a warning, so that a plugin falling back to its own network does not hide it.
    guard let ctx = PluginContext.from(host), let c = ctx.run?.classifier, let w = c.rawWeights() else { return nil }
    let text: String
    do { text = try w.describe() } catch {
        ctx.run?.logger.warning("\(ctx.label): the classifier's weights cannot be read: \(error)")
        return nil
    }
    // Keyed by the classifier object: an instance may serve runs with different classifiers.
    return ctx.cachedString("weights of \(ObjectIdentifier(c))") { text }
}

private let hostWeightsGet: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, name, out in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        guard let name else { throw QuacError("name is NULL") }
        guard let out else { throw QuacError("the output pointer is NULL") }
        let t = try weights(ctx).get(String(cString: name))
        guard let m = t.managedCopy() else { return quac_status(QUAC_ERR_OUT_OF_MEMORY) }
        out.pointee = m
        return ABIStatus.ok
    } catch { return ctx.serviceFailure(error) }
}
