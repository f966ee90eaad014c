import QuacPluginKit

/// The library entry of the Attributions bundle.
@_cdecl("quac_plugin_entry")
public func quacPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.entry(hostMajor: hostMajor, plugins: [Saliency.self, InputXGradient.self, Occlusion.self, Residual.self,
                                                      DIntegratedGradients.self, VanillaIntegratedGradients.self,
                                                      DDeepLift.self, VanillaDeepLift.self, DInGrad.self,
                                                      RandomAttribution.self, SmoothGrad.self, ShapleySampling.self, DShapleySampling.self,
                                                      FeatureAblation.self, GradCAM.self, LayerIntegratedGradients.self])
}
