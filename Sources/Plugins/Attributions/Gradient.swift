import QuacPluginKit

/// d f_y / d x for each query's source class y, through the host's classifier service.
func sourceGradient(_ host: HostServices, _ batch: Batch) throws -> Tensor {
    let labels = try batch.requireSource()
    let (spec, _) = try host.classifierInfo()
    let oneHot = try HostServices.oneHot(labels, classes: spec.numClasses)
    return try host.classifierVJP(batch.x, gradLogits: oneHot).gradX
}
