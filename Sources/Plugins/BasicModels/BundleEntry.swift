import QuacPluginKit

/// The library entry of the BasicModels bundle.
@_cdecl("quac_plugin_entry")
public func quacPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.entry(hostMajor: hostMajor, plugins: [MLPClassifier.self, OptimizationConverter.self, PrecomputedConverter.self])
}
