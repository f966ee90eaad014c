import Foundation
import QuacPluginAPI

/// What a run records of a plugin use: its manifest, library, descriptor, name and parameters. A
/// created instance has one (`PluginInstance.identity`); so has a plugin whose library is only loaded.
struct PluginIdentity {
    let manifest: PluginManifest
    let library: PluginLibrary
    let descriptor: PluginLibrary.Descriptor
    let name: String
    let parameters: JSONValue

    var id: String { manifest.id }
    var kind: PluginKind { manifest.kind }
}

/// The classifier of a run whose plugins run in a worker, as the run's own process sees it. The worker
/// created the classifier and announced what it is (its `ClassifierInfo`); this process, which never
/// calls it while the worker computes the stages, does not create it a second time (a second load of
/// its weights, in series with the worker's: most of a worker's overhead on a large network). Any
/// call other than `info` creates the instance then (`create`), so nothing depends on the worker.
final class AnnouncedClassifier: Classifier {
    let identity: PluginIdentity
    private let announced: ClassifierInfo
    private let create: () throws -> PluginInstance
    private let lock = NSLock()
    private var instance: PluginInstance?

    init(identity: PluginIdentity, info: ClassifierInfo, create: @escaping () throws -> PluginInstance) {
        self.identity = identity
        announced = info
        self.create = create
    }

    var label: String { identity.name }
    func info() throws -> ClassifierInfo { announced }

    /// The instance, created on first use.
    func created() throws -> PluginInstance {
        lock.lock()
        defer { lock.unlock() }
        if let instance { return instance }
        let made = try create()
        instance = made
        return made
    }

    func rawForward(_ x: Tensor) throws -> Tensor { try created().rawForward(x) }
    func rawVJP(_ x: Tensor, gradLogits: Tensor, wantLogits: Bool) throws -> (logits: Tensor?, gradX: Tensor) {
        try created().rawVJP(x, gradLogits: gradLogits, wantLogits: wantLogits)
    }
    func rawVJPRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor {
        try created().rawVJPRule(rule, x: x, baseline: baseline, gradLogits: gradLogits)
    }
    func rawLayers() -> ClassifierLayerCalls? { (try? created())?.rawLayers() }
    func rawWeights() -> ClassifierWeightCalls? { (try? created())?.rawWeights() }
}

extension ClassifierInfo {
    /// As a worker announces it.
    var json: JSONValue {
        ["num_classes": .int(Int64(numClasses)), "sample_shape": .array(sampleShape.map { .int(Int64($0)) }),
         "vjp": .bool(hasVJP), "modified_backward": .bool(hasModifiedBackward), "layers": .bool(hasLayers),
         "randomize": .bool(hasRandomize)]
    }

    init?(json: JSONValue) {
        guard let n = json["num_classes"]?.intValue, let shape = json["sample_shape"]?.arrayValue,
              let vjp = json["vjp"]?.boolValue, let modified = json["modified_backward"]?.boolValue,
              let layers = json["layers"]?.boolValue, let randomize = json["randomize"]?.boolValue else { return nil }
        let dims = shape.compactMap(\.intValue)
        guard dims.count == shape.count else { return nil }
        self.init(numClasses: Int(n), sampleShape: dims.map { Int($0) }, hasVJP: vjp, hasModifiedBackward: modified, hasLayers: layers)
        hasRandomize = randomize
    }
}
