@_exported import QuacCore
@_exported import QuacPluginAPI

/// How a Swift plugin describes itself; becomes the library's quac_plugin_descriptor.
public struct PluginDescription: Sendable {
    public enum Kind: Sendable { case classifier, converter, attributor, scorer }
    public let id: String
    public let name: String
    public let version: String
    public let summary: String
    public let kind: Kind
    /// True when calls on one instance may overlap (QUAC_PLUGIN_FLAG_REENTRANT).
    public let reentrant: Bool

    public init(id: String, name: String, version: String = "1.0.0", summary: String, kind: Kind, reentrant: Bool = false) {
        self.id = id; self.name = name; self.version = version; self.summary = summary; self.kind = kind; self.reentrant = reentrant
    }
}

/// A plugin written in Swift. The kit turns conforming classes into the C ABI: descriptors, factory,
/// kind tables and error reporting (a thrown error becomes a status plus host->set_error).
public protocol QuacPlugin: AnyObject {
    static var description: PluginDescription { get }
    /// Creates an instance from its parameters (validated by the host against the manifest's schema,
    /// every default filled in from it: read them without defaults of your own, see `Parameters`).
    init(host: HostServices, parameters: Parameters) throws
}

/// What a classifier is, as it tells the host.
public struct ClassifierSpec: Sendable {
    public var numClasses: Int
    /// One sample's shape, e.g. [1, 28, 28]; -1 for "any size".
    public var sampleShape: [Int]
    public init(numClasses: Int, sampleShape: [Int]) { self.numClasses = numClasses; self.sampleShape = sampleShape }
}

public protocol ClassifierPlugin: QuacPlugin {
    var spec: ClassifierSpec { get }
    /// logits [N, classes] of x [N, sample shape...].
    func forward(_ x: Tensor) throws -> Tensor
    /// nil for a forward-only classifier.
    func vjp(_ x: Tensor, gradLogits: Tensor) throws -> (logits: Tensor, gradX: Tensor)?
    /// Modified backward rules; nil when the classifier does not offer the extension.
    func vjpRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor?
    var supportsVJP: Bool { get }
    var supportsModifiedBackward: Bool { get }
}

extension ClassifierPlugin {
    public var supportsVJP: Bool { true }
    public var supportsModifiedBackward: Bool { false }
    public func vjpRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor? { nil }
}

public protocol AttributorPlugin: QuacPlugin {
    /// Puts "attribution" shaped like batch.x (and optionally JSON).
    func attribute(_ batch: Batch) throws -> Outputs
}

public protocol ScorerPlugin: QuacPlugin {
    /// Puts "score" [N] (and optionally more tensors and JSON).
    func score(_ batch: Batch) throws -> Outputs
}

public protocol ConverterPlugin: QuacPlugin {
    /// Puts "counterfactual" shaped like batch.x (and optionally JSON).
    func convert(_ batch: Batch) throws -> Outputs
}

/// The inputs of one call; tensors are borrowed views, valid only during the call.
public struct Batch {
    public let x: Tensor
    public let source: Tensor?
    public let target: Tensor?
    public let xCF: Tensor?
    public let attribution: Tensor?
    public let reference: Tensor?
    public let seed: UInt64
    /// The concepts of the queries [N, k] in [0, 1], when the run has concepts (ABI 1.1).
    public var concepts: Tensor?
    /// Other attributors' raw maps of the queries, by their names in the run, for a plugin that asks
    /// for them with a "format": "attributors" parameter (ABI 1.2).
    public var maps: [(String, Tensor)] = []
    /// For scorers: the JSON object the scored method put for these samples (ABI 1.2), e.g. rules.
    public var methodJSON: JSONValue?
    public var count: Int { x.shape.first ?? 0 }

    /// The map of the run's attributor `name`, or an error naming the ones given.
    public func map(_ name: String) throws -> Tensor {
        guard let t = maps.first(where: { $0.0 == name })?.1 else {
            throw PluginError.invalid("no map of attributor \"\(name)\" in this batch (given: \(maps.isEmpty ? "none" : maps.map(\.0).joined(separator: ", ")))")
        }
        return t
    }

    public init(x: Tensor, source: Tensor? = nil, target: Tensor? = nil, xCF: Tensor? = nil,
                attribution: Tensor? = nil, reference: Tensor? = nil, seed: UInt64 = 0) {
        self.x = x; self.source = source; self.target = target; self.xCF = xCF
        self.attribution = attribution; self.reference = reference; self.seed = seed
    }

    /// The source labels, or an error naming what is missing.
    public func requireSource() throws -> [Int64] {
        guard let s = source else { throw PluginError.invalid("source labels are required") }
        return s.int64Array()
    }

    public func requireTarget() throws -> [Int64] {
        guard let t = target else { throw PluginError.invalid("target labels are required") }
        return t.int64Array()
    }

    public func requireCounterfactual() throws -> Tensor {
        guard let c = xCF else { throw PluginError.invalid("this method needs counterfactuals (x_cf), and the run has none") }
        return c
    }
}

/// Results of one call: named tensors (copied into host memory when put) and an optional JSON object.
public struct Outputs {
    public var tensors: [(String, Tensor)]
    public var json: JSONValue?
    public init(_ tensors: [(String, Tensor)] = [], json: JSONValue? = nil) { self.tensors = tensors; self.json = json }
}

/// An error a plugin throws: the status it maps to and a one-line reason for the user.
public struct PluginError: Error, CustomStringConvertible {
    public let status: quac_status
    public let message: String
    public init(_ status: quac_status, _ message: String) { self.status = status; self.message = message }
    public static func invalid(_ m: String) -> PluginError { PluginError(quac_status(QUAC_ERR_INVALID_ARGUMENT), m) }
    public static func unsupported(_ m: String) -> PluginError { PluginError(quac_status(QUAC_ERR_UNSUPPORTED), m) }
    public static func io(_ m: String) -> PluginError { PluginError(quac_status(QUAC_ERR_IO), m) }
    public static func cancelled() -> PluginError { PluginError(quac_status(QUAC_ERR_CANCELLED), "cancelled") }
    public var description: String { message }
}
