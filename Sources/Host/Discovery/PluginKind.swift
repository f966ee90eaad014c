import QuacPluginAPI

/// The four kinds of plugin, with the ABI's enum value and kind-table id of each.
public enum PluginKind: String, CaseIterable, Sendable {
    case classifier, converter, attributor, scorer

    public var abi: quac_plugin_kind {
        switch self {
        case .classifier: return QUAC_KIND_CLASSIFIER
        case .converter: return QUAC_KIND_CONVERTER
        case .attributor: return QUAC_KIND_ATTRIBUTOR
        case .scorer: return QUAC_KIND_SCORER
        }
    }

    public init?(abi: quac_plugin_kind) {
        guard let k = PluginKind.allCases.first(where: { $0.abi == abi }) else { return nil }
        self = k
    }

    /// The id under which get_extension returns this kind's function table.
    public var tableID: String {
        switch self {
        case .classifier: return QUAC_KIND_TABLE_CLASSIFIER
        case .converter: return QUAC_KIND_TABLE_CONVERTER
        case .attributor: return QUAC_KIND_TABLE_ATTRIBUTOR
        case .scorer: return QUAC_KIND_TABLE_SCORER
        }
    }
}

/// What a plugin needs from the run, declared in its manifest ("requires") and checked before it runs.
public enum PluginRequirement: String, CaseIterable, Sendable {
    case classifier
    case classifierVJP = "classifier.vjp"
    case classifierModifiedBackward = "classifier.modified-backward"
    /// The classifier's inner layers (QUAC_EXT_CLASSIFIER_LAYERS).
    case classifierLayers = "classifier.layers"
    /// Re-drawing the classifier's top layers (QUAC_EXT_CLASSIFIER_RANDOMIZE).
    case classifierRandomize = "classifier.randomize"
    /// Scorers that re-run the method they score (QUAC_HOST_EXT_SCORED_METHOD): a method built on other
    /// attributors' maps cannot be re-run.
    case methodRerun = "method.rerun"
    case counterfactual
    case converter
}
