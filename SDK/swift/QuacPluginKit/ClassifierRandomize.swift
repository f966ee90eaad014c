import Foundation

/// A classifier that can re-draw the weights of its top layers (QUAC_EXT_CLASSIFIER_RANDOMIZE), for
/// the model-randomisation sanity check.
public protocol RandomizableClassifierPlugin: ClassifierPlugin {
    /// The layers with weights, from the output backwards.
    var randomizableLayers: [String] { get }
    /// Re-draws the first `count` layers' weights from `seed`; 0 puts the trained weights back.
    func randomize(count: Int, seed: UInt64) throws
}

enum ClassifierRandomizeTable {
    static let table: UnsafeMutablePointer<quac_classifier_randomize> = {
        let p = UnsafeMutablePointer<quac_classifier_randomize>.allocate(capacity: 1)
        p.initialize(to: quac_classifier_randomize(struct_size: UInt32(MemoryLayout<quac_classifier_randomize>.size),
                                                   layers_json: randomizeLayers, randomize: randomizeCall))
        return p
    }()
}

private let randomizeLayers: @convention(c) (UnsafePointer<quac_plugin>?) -> UnsafePointer<CChar>? = { p in
    guard let box = InstanceBox.from(p), let c = box.plugin as? RandomizableClassifierPlugin else { return nil }
    return box.cachedString("randomizable layers") { JSONValue.array(c.randomizableLayers.map { .string($0) }).serialized() }
}

private let randomizeCall: @convention(c) (UnsafePointer<quac_plugin>?, UInt32, UInt64) -> quac_status = { p, count, seed in
    guarded(InstanceBox.from(p)?.host) {
        guard let box = InstanceBox.from(p), let c = box.plugin as? RandomizableClassifierPlugin else {
            throw PluginError(quac_status(QUAC_ERR_INTERNAL), "instance is not a randomizable classifier")
        }
        guard Int(count) <= c.randomizableLayers.count else {
            throw PluginError.invalid("count \(count) is more than the \(c.randomizableLayers.count) layers with weights")
        }
        try c.randomize(count: Int(count), seed: seed)
    }
}
