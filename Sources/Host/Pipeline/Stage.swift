import Foundation

/// What stages of a run produce and need. The runner orders stages so that every artifact a stage
/// needs is produced (or reused) before it runs.
public enum Artifact: Hashable, CustomStringConvertible, Sendable {
    /// The samples as explained (after limit and target expansion).
    case inputs
    /// The classifier's logits of every sample.
    case predictions
    case counterfactuals
    /// The maps of the attributor with this name.
    case attributions(String)
    /// One scorer's scores of one attributor's maps.
    case scores(method: String, scorer: String)
    /// The trained model of the plugin use at this manifest pointer ("/attributors/1").
    case trainedModel(String)
    /// The samples' concepts [N, k], from the data or the concept model.
    case concepts
    /// The convergence study of the attributor with this name.
    case convergence(String)

    public var description: String {
        switch self {
        case .inputs: return "inputs"
        case .predictions: return "predictions"
        case .counterfactuals: return "counterfactuals"
        case .attributions(let m): return "attributions/\(m)"
        case .scores(let m, let s): return "scores/\(m)/\(s)"
        case .trainedModel(let pointer): return "trained model of \(pointer)"
        case .concepts: return "concepts"
        case .convergence(let m): return "convergence/\(m)"
        }
    }
}

/// One stage of a run, as a value: what it needs and produces, the fingerprint of its results, its
/// per-batch body, and how the batches' results are merged and written. The runner does the rest:
/// ordering, reuse by fingerprint, batches, seeds, progress and cancellation.
///
/// A stage calls plugins only through `RunState.call`, so that the calls can move to a worker process.
public protocol PipelineStage: AnyObject {
    /// Shown in progress lines and part of every call seed ("attribute saliency").
    var label: String { get }
    var needs: [Artifact] { get }
    var produces: [Artifact] { get }
    /// A fingerprint of everything the stage's results depend on (the fingerprints of what it needs
    /// are in `run.fingerprints`).
    func fingerprint(_ run: RunState) throws -> String
    /// Publishes finished results with this fingerprint into `run`; false when there are none.
    func reuse(_ run: RunState, fingerprint: String) throws -> Bool
    /// How many samples the stage walks through in batches (0: `finish` only).
    func count(_ run: RunState) -> Int
    /// One batch: samples `rows`, with `seed` for every random choice of the call.
    func batch(_ run: RunState, rows: Range<Int>, seed: UInt64) throws -> PluginOutputs
    /// Merges the batches' outputs, writes them atomically with the fingerprint and publishes them
    /// into `run`; returns the line the progress display ends the stage with.
    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds: Double) throws -> String
    /// The plugin use the stage calls (its "timeout" bounds the stage's worker); nil when none or several.
    var pluginUse: PipelineManifest.PluginUse? { get }
}

extension PipelineStage {
    public var pluginUse: PipelineManifest.PluginUse? { nil }
    public func count(_ run: RunState) -> Int { 0 }
    public func batch(_ run: RunState, rows: Range<Int>, seed: UInt64) throws -> PluginOutputs { PluginOutputs() }
}

/// A kind of stage: makes this kind's stages for a run from its manifest (none when the manifest does
/// not ask for it). Kinds are listed once, in `StageKinds.all`.
public protocol StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage]
}

/// Every kind of stage a run can have. A new kind is one file and one line here.
public enum StageKinds {
    public static let all: [StageKind.Type] = [
        InputsStage.self, PredictStage.self, TrainStage.self, ConceptStage.self, ConvertStage.self, AttributeStage.self,
        ScoreStage.self, ConvergenceStage.self,
    ]
}
