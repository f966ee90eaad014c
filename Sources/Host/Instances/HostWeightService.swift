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
    guard let ctx = PluginContext.from(host), let w = try? weights(ctx), let text = try? w.describe() else { return nil }
    // Keyed by the classifier: an instance may serve runs with different classifiers.
    return ctx.cachedString("weights of \(ctx.run?.classifier?.label ?? "")") { text }
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
