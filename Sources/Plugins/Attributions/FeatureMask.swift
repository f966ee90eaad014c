import Foundation
import QuacPluginKit

/// Feature groups given by the user instead of the superpixel grid: a tensor of integer group ids (the
/// `feature_mask` parameter: a safetensors file, tensor `feature_mask_tensor`, or an NPY file). It is
/// shaped like one sample, or for images [C, H, W] also [H, W] or [1, H, W] (the same groups on every
/// channel). Elements with the same id form one group, as in Captum's `feature_mask` (which wants the ids
/// 0..M-1; here any integers, groups in increasing order of id); the one mask serves every sample.
struct FeatureMask {
    let path: String
    let shape: [Int]
    let ids: [Int64]

    /// The mask the parameters name, or nil when they name none.
    static func load(_ parameters: Parameters) throws -> FeatureMask? {
        let name = try parameters.string("feature_mask_tensor")   // read even without a mask: its default is the schema's
        guard let path = try parameters.optionalString("feature_mask") else { return nil }
        let url = URL(fileURLWithPath: path)
        let t: Tensor
        do {
            if path.lowercased().hasSuffix(".npy") {
                t = try NPY.read(url)
            } else {
                let file = try Safetensors.read(url)
                guard let found = file.tensors[name] else {
                    throw PluginError.io("feature_mask \(path): no tensor \"\(name)\" (it has: \(file.names.joined(separator: ", "))); set feature_mask_tensor")
                }
                t = found
            }
        } catch let e as PluginError { throw e } catch { throw PluginError.io("feature_mask \(path): \(error)") }
        guard t.count > 0 else { throw PluginError.invalid("feature_mask \(path): the mask is empty (shape \(t.shape))") }
        let values = t.doubleArray()
        if let bad = values.first(where: { $0 != $0.rounded() || abs($0) > 1e15 }) {
            throw PluginError.invalid("feature_mask \(path): group ids must be integers, found \(bad)")
        }
        return FeatureMask(path: path, shape: t.shape, ids: values.map { Int64($0) })
    }

    /// The element -> group id map for one sample of `sampleShape`, or why the mask does not fit it.
    func ids(for sampleShape: [Int]) throws -> [Int64] {
        if shape == sampleShape { return ids }
        // [H, W] or [1, H, W] over an image [C, H, W]: the same id on every channel.
        if sampleShape.count == 3, shape.suffix(2) == sampleShape.suffix(2), shape.count == 2 || (shape.count == 3 && shape[0] == 1) {
            return Array((0..<sampleShape[0]).map { _ in ids }.joined())
        }
        let image = sampleShape.count == 3 ? ", [\(sampleShape[1]), \(sampleShape[2])] or [1, \(sampleShape[1]), \(sampleShape[2])] (every channel alike)" : ""
        throw PluginError.invalid("feature_mask \(path): shape \(shape) does not fit the samples \(sampleShape); expected \(sampleShape)\(image)")
    }
}

extension FeatureGroups {
    /// The groups of a user's mask: one per distinct id, in increasing order of id.
    init(mask: FeatureMask, sampleShape: [Int]) throws {
        let ids = try mask.ids(for: sampleShape)
        let order = Array(Set(ids)).sorted()
        let index = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        var groups = [[Int]](repeating: [], count: order.count)
        for (e, id) in ids.enumerated() { groups[index[id]!].append(e) }
        self.init(members: groups)
    }

    /// The user's mask when there is one, else the superpixel grid of `size`.
    static func of(_ mask: FeatureMask?, sampleShape: [Int], size: Int) throws -> FeatureGroups {
        try mask.map { try FeatureGroups(mask: $0, sampleShape: sampleShape) } ?? FeatureGroups(sampleShape: sampleShape, size: size)
    }
}
