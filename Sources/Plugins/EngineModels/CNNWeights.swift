import Engine
import QuacPluginKit

/// The network and its current weights (QUAC_EXT_CLASSIFIER_WEIGHTS): the engine's model description
/// and every parameter and buffer by its state-dict name, for plugins that start from the trained
/// network (the empirical explainer's encoder).
extension CNNClassifier: WeightedClassifierPlugin {
    var networkFormat: String? { engineModelFormat }
    var network: JSONValue { architecture }
    var weightShapes: [(name: String, shape: [Int])] { model.stateDict().map { ($0.0, $0.1.shape) } }

    func weight(_ name: String) throws -> Tensor {
        guard let t = model.stateDict().first(where: { $0.0 == name })?.1 else {
            throw PluginError.invalid("no weight named \"\(name)\"")
        }
        return t.contiguous().tensor
    }
}
