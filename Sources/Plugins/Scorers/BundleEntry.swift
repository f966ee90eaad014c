import QuacPluginKit

/// The library entry of the Scorers bundle.
@_cdecl("quac_plugin_entry")
public func quacPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.entry(hostMajor: hostMajor, plugins: [InsertionScorer.self, QuacEvaluatorScorer.self, RuleAccuracyScorer.self, RuleFidelityScorer.self, RuleComplexityScorer.self, DeletionScorer.self, InfidelityScorer.self, SensitivityMaxScorer.self, FaithfulnessCorrelationScorer.self, ROADMoRFScorer.self, ROADLeRFScorer.self, RandomizationSanityScorer.self])
}
