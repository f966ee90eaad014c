import QuacPluginKit

/// The library entry of the EngineModels bundle: networks that run on the engine.
@_cdecl("quac_plugin_entry")
public func quacPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.entry(hostMajor: hostMajor, plugins: [CNNClassifier.self, StarGANConverter.self, EmpiricalExplainer.self, SMATExplainer.self, LogicExplainer.self])
}
