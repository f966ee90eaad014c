import Foundation
import QuacPluginAPI

/// The inputs of one call to a converter, attributor or scorer (the ABI's quac_batch).
public struct BatchInputs {
    public var x: Tensor
    public var source: Tensor?
    public var target: Tensor?
    public var xCF: Tensor?
    public var attribution: Tensor?
    public var reference: Tensor?
    public var seed: UInt64
    /// The queries' concepts [N, k] in [0, 1].
    public var concepts: Tensor?
    /// Other attributors' maps of the queries, by name (for a plugin with a "format": "attributors"
    /// parameter).
    public var maps: [(String, Tensor)] = []
    /// For scorers: the scored method's JSON output for these samples.
    public var methodJSON: JSONObject?

    public init(x: Tensor, source: Tensor? = nil, target: Tensor? = nil, xCF: Tensor? = nil,
                attribution: Tensor? = nil, reference: Tensor? = nil, seed: UInt64 = 0, concepts: Tensor? = nil) {
        self.x = x; self.source = source; self.target = target; self.xCF = xCF
        self.attribution = attribution; self.reference = reference; self.seed = seed; self.concepts = concepts
    }

    public var count: Int { x.shape.first ?? 0 }

    /// Calls `body` with a quac_batch pointing at read-only views of these tensors.
    func withABIBatch<R>(_ body: (UnsafePointer<quac_batch>) throws -> R) rethrows -> R {
        let views = [x, source, target, xCF, attribution, reference, concepts].map { $0.map(ABITensorView.init) }
        var b = quac_batch()
        b.struct_size = UInt32(MemoryLayout<quac_batch>.size)
        b.x = UnsafePointer(views[0]!.pointer)
        b.source = views[1].map { UnsafePointer($0.pointer) }
        b.target = views[2].map { UnsafePointer($0.pointer) }
        b.x_cf = views[3].map { UnsafePointer($0.pointer) }
        b.attribution = views[4].map { UnsafePointer($0.pointer) }
        b.reference = views[5].map { UnsafePointer($0.pointer) }
        b.seed = seed
        b.concepts = views[6].map { UnsafePointer($0.pointer) }
        let methodText = methodJSON.map { strdup(JSONValue.object($0).serialized())! }
        defer { methodText.map { free($0) } }
        b.method_json = methodText.map { UnsafePointer($0) }
        let mapViews = maps.map { ABITensorView($0.1) }
        let names = maps.map { strdup($0.0)! }
        defer { names.forEach { free($0) } }
        var named = zip(names, mapViews).map { quac_named_tensor(name: UnsafePointer($0.0), tensor: UnsafePointer($0.1.pointer)) }
        return try withExtendedLifetime((views, mapViews)) {
            try named.withUnsafeMutableBufferPointer { buffer in
                b.maps = buffer.isEmpty ? nil : UnsafePointer(buffer.baseAddress)
                b.n_maps = UInt64(buffer.count)
                return try withUnsafePointer(to: &b) { try body($0) }
            }
        }
    }
}

/// What one call produced: named tensors and an optional JSON object.
public struct PluginOutputs {
    public var names: [String] = []
    public var tensors: [String: Tensor] = [:]
    public var json: JSONObject?
}
