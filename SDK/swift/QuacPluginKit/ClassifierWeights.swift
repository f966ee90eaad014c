import Foundation

/// A classifier that hands out its network and trained weights (QUAC_EXT_CLASSIFIER_WEIGHTS), for
/// plugins that start from them (an empirical explainer's encoder).
public protocol WeightedClassifierPlugin: ClassifierPlugin {
    /// How `network` describes the network ("quac.engine-model/1": the engine's model description),
    /// or nil with a null network when only the tensors are offered.
    var networkFormat: String? { get }
    var network: JSONValue { get }
    /// Every parameter and buffer, by name, with its shape.
    var weightShapes: [(name: String, shape: [Int])] { get }
    /// A float32 copy of one of them.
    func weight(_ name: String) throws -> Tensor
}

/// The engine's model description, as `networkFormat` names it.
public let engineModelFormat = "quac.engine-model/1"

enum ClassifierWeightsTable {
    static let table: UnsafeMutablePointer<quac_classifier_weights> = {
        let p = UnsafeMutablePointer<quac_classifier_weights>.allocate(capacity: 1)
        p.initialize(to: quac_classifier_weights(struct_size: UInt32(MemoryLayout<quac_classifier_weights>.size),
                                                 describe_json: weightsDescribe, get: weightsGet))
        return p
    }()
}

private let weightsDescribe: @convention(c) (UnsafePointer<quac_plugin>?) -> UnsafePointer<CChar>? = { p in
    guard let box = InstanceBox.from(p), let c = box.plugin as? WeightedClassifierPlugin else { return nil }
    return box.cachedString("weights") {
        JSONValue.object(JSONObject([
            ("format", c.networkFormat.map(JSONValue.string) ?? .null), ("network", c.network),
            ("tensors", .array(c.weightShapes.map { ["name": .string($0.name), "shape": .array($0.shape.map { .int(Int64($0)) })] })),
        ])).serialized()
    }
}

private let weightsGet: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { p, name, out in
    guarded(InstanceBox.from(p)?.host) {
        guard let box = InstanceBox.from(p), let c = box.plugin as? WeightedClassifierPlugin else {
            throw PluginError(quac_status(QUAC_ERR_INTERNAL), "instance is not a classifier with weights")
        }
        guard let name else { throw PluginError.invalid("name is NULL") }
        guard let out else { throw PluginError.invalid("output pointer is NULL") }
        out.pointee = try box.host.managedCopy(try c.weight(String(cString: name)))
    }
}

/// The run's classifier's network and weights, through the host (QUAC_HOST_EXT_CLASSIFIER_WEIGHTS).
public struct HostClassifierWeights: @unchecked Sendable {
    let host: HostServices
    let table: UnsafePointer<quac_host_classifier_weights>

    /// The description ("format", "network", "tensors"), or nil when the classifier offers none.
    public func describe() throws -> (format: String?, network: JSONValue, tensors: [(name: String, shape: [Int])])? {
        guard let raw = table.pointee.describe_json?(host.raw) else { return nil }
        guard let doc = try? JSONParser.parse(String(cString: raw)), let items = doc["tensors"]?.arrayValue else {
            throw PluginError.invalid("the classifier's weight description is not a JSON object with \"tensors\"")
        }
        let tensors = try items.map { item -> (name: String, shape: [Int]) in
            guard let name = item["name"]?.stringValue, let shape = item["shape"]?.arrayValue?.compactMap({ $0.intValue }) else {
                throw PluginError.invalid("the classifier's weight description has a tensor without name and shape")
            }
            return (name, shape.map { Int($0) })
        }
        return (doc["format"]?.stringValue, doc["network"] ?? .null, tensors)
    }

    public func get(_ name: String) throws -> Tensor {
        let covers = Int(table.pointee.struct_size) >= MemoryLayout<quac_host_classifier_weights>.offset(of: \quac_host_classifier_weights.get)! + MemoryLayout<UnsafeRawPointer>.size
        guard covers, let get = table.pointee.get else { throw PluginError.unsupported("the host's weight service has no get") }
        var t: UnsafeMutablePointer<quac_managed_tensor>?
        let status = name.withCString { get(host.raw, $0, &t) }
        guard status == quac_status(QUAC_OK) else { throw PluginError(status, "the classifier's weight \"\(name)\"") }
        guard let t else { throw PluginError(quac_status(QUAC_ERR_INTERNAL), "the host returned no tensor for the classifier's weight \"\(name)\"") }
        return try Tensor(adopting: t)
    }
}

extension HostServices {
    /// The run's classifier's weights, or nil when this host does not offer the service.
    public func classifierWeights() -> HostClassifierWeights? {
        let hasExtensions = Int(raw.pointee.struct_size) >= MemoryLayout<quac_host>.offset(of: \quac_host.get_extension)! + MemoryLayout<UnsafeRawPointer>.size
        guard hasExtensions, let t = raw.pointee.get_extension?(raw, QUAC_HOST_EXT_CLASSIFIER_WEIGHTS) else { return nil }
        return HostClassifierWeights(host: self, table: t.assumingMemoryBound(to: quac_host_classifier_weights.self))
    }
}
