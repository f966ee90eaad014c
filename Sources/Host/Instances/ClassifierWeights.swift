import Foundation
import QuacPluginAPI

/// The calls of a classifier's weights extension (QUAC_EXT_CLASSIFIER_WEIGHTS), checked: the
/// description must be a JSON object listing its tensors, and every tensor handed out must be float32
/// of its listed shape.
public protocol ClassifierWeightCalls {
    /// The description as the classifier wrote it (a JSON object with "format", "network", "tensors").
    func describe() throws -> String
    func get(_ name: String) throws -> Tensor
}

extension Classifier {
    /// No weights unless the classifier implements the extension.
    public func rawWeights() -> ClassifierWeightCalls? { nil }
}

extension PluginInstance {
    /// One object per instance, so that its description is parsed once however many tensors are read.
    public func rawWeights() -> ClassifierWeightCalls? {
        weightCalls.get {
            // A table with a missing function is no extension (the host never calls through NULL).
            guard let t = table(QUAC_EXT_CLASSIFIER_WEIGHTS, quac_classifier_weights.self), t.pointee.describe_json != nil, t.pointee.get != nil else { return nil }
            return PluginWeightCalls(instance: self, table: t)
        }
    }
}

/// A PluginInstance's weight calls, looked up on first use.
final class WeightCallsSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var looked = false, calls: PluginWeightCalls?

    func get(_ make: () -> PluginWeightCalls?) -> PluginWeightCalls? {
        lock.lock(); defer { lock.unlock() }
        if !looked { calls = make(); looked = true }
        return calls
    }
}

/// A plugin's QUAC_EXT_CLASSIFIER_WEIGHTS table, called with the instance's own locking and error
/// reporting. The description is read and checked once per object. `instance` is unowned: the
/// instance holds this object.
final class PluginWeightCalls: ClassifierWeightCalls, @unchecked Sendable {
    unowned let instance: PluginInstance
    let table: UnsafePointer<quac_classifier_weights>
    private let lock = NSLock()
    private var listed: [String: [Int]]?

    init(instance: PluginInstance, table: UnsafePointer<quac_classifier_weights>) {
        self.instance = instance
        self.table = table
    }

    func describe() throws -> String {
        guard let raw = table.pointee.describe_json?(instance.plugin) else {
            throw QuacError("classifier \(instance.label): describe_json returned NULL")
        }
        let text = String(cString: raw)
        let shapes = try shapes(text)
        lock.withLock { listed = shapes }
        return text
    }

    /// The listed tensors' shapes by name.
    private func shapes(_ text: String) throws -> [String: [Int]] {
        guard let doc = try? JSONParser.parse(text), doc.objectValue != nil, let items = doc["tensors"]?.arrayValue else {
            throw QuacError("classifier \(instance.label): describe_json is not a JSON object with a \"tensors\" array")
        }
        var out: [String: [Int]] = [:]
        for item in items {
            guard let name = item["name"]?.stringValue, let dims = item["shape"]?.arrayValue,
                  case let shape = dims.compactMap({ $0.intValue }).map(Int.init), shape.count == dims.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw QuacError("classifier \(instance.label): describe_json lists a tensor without a name and a shape: \(item.serialized())")
            }
            if out[name] == nil { out[name] = shape }   // a repeated name: the first one counts
        }
        return out
    }

    func get(_ name: String) throws -> Tensor {
        if lock.withLock({ listed == nil }) { _ = try describe() }
        guard let shape = lock.withLock({ listed?[name] }) else {
            throw QuacError("classifier \(instance.label) has no weight \"\(name)\"", category: .user)
        }
        var m: UnsafeMutablePointer<quac_managed_tensor>?
        do {
            try instance.invoke("weights.get") { name.withCString { table.pointee.get!(instance.plugin, $0, &m) } }
        } catch {
            if let m { m.pointee.deleter?(m) }
            throw error
        }
        guard let m else { throw QuacError("classifier \(instance.label): weights.get returned ok but no tensor") }
        let t: Tensor
        do { t = try Tensor(adopting: m) } catch { throw QuacError("classifier \(instance.label): weights.get: \(error)") }
        guard t.dtype == .float32, t.shape == shape else {
            throw QuacError("classifier \(instance.label): weight \"\(name)\" is \(t.dtype.displayName) \(t.shape), listed as float32 \(shape)")
        }
        return t
    }
}
