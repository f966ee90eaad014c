import Foundation
import QuacPluginKit

/// Counterfactuals made elsewhere, read from a file: a safetensors file holding the query images and
/// their counterfactuals (optionally the target class of each), or NPY files for the same. Each query
/// of a batch is matched to the file's row whose image has exactly the same float32 values (and the
/// same target, when the file has targets), so results do not depend on batching or on the order of
/// the run's data. (QuAC's own layout, PNG files in <source>/<target>/<same filename>, waits for the
/// image loader.) Puts JSON {"index": [the file's row for each sample]}.
final class PrecomputedConverter: ConverterPlugin {
    static let description = PluginDescription(
        id: "org.quac.precomputed-converter", name: "Precomputed counterfactuals",
        summary: "Counterfactuals read from a safetensors/NPY file, matched to each query by its image", kind: .converter,
        reentrant: true)

    let images: Tensor
    let counterfactuals: Tensor
    let targets: [Int64]?
    let sampleShape: [Int]
    let sampleBytes: Int
    /// FNV-1a of an image's bytes (and target) -> the file's rows with that hash.
    var rowsByKey: [UInt64: [Int]] = [:]

    init(host: HostServices, parameters: Parameters) throws {
        let path = try parameters.string("path")
        let url = URL(fileURLWithPath: path)
        var targetTensor: Tensor?
        do {
            if path.hasSuffix(".npy") {
                counterfactuals = try NPY.read(url)
                guard let ip = try parameters.optionalString("images_path") else {
                    throw PluginError.invalid("images_path (an NPY file of the query images) is required with an NPY counterfactual file")
                }
                images = try NPY.read(URL(fileURLWithPath: ip))
                if let tp = try parameters.optionalString("targets_path") { targetTensor = try NPY.read(URL(fileURLWithPath: tp)) }
            } else {
                let file = try Safetensors.read(url)
                func tensor(_ name: String) throws -> Tensor {
                    guard let t = file.tensors[name] else {
                        throw PluginError.io("\(path): no tensor \"\(name)\" (it has: \(file.names.joined(separator: ", ")))")
                    }
                    return t
                }
                counterfactuals = try tensor(try parameters.string("counterfactuals"))
                images = try tensor(try parameters.string("images"))
                if let name = try parameters.optionalString("targets") { targetTensor = try tensor(name) }
            }
        } catch let e as PluginError { throw e } catch { throw PluginError.io("\(error)") }
        guard counterfactuals.dtype == .float32, images.dtype == .float32, counterfactuals.rank >= 1,
              counterfactuals.shape == images.shape else {
            throw PluginError.io("\(path): counterfactuals (\(counterfactuals.dtype.displayName) \(counterfactuals.shape)) and images (\(images.dtype.displayName) \(images.shape)) must be float32 of the same shape [N, ...]")
        }
        if let t = targetTensor {
            guard t.rank == 1, t.shape[0] == images.shape[0], [.int64, .int32, .uint8, .int8, .int16, .uint16, .uint32, .uint64].contains(t.dtype) else {
                throw PluginError.io("targets must be integers [\(images.shape[0])], got \(t.dtype.displayName) \(t.shape)")
            }
            targets = t.doubleArray().map { Int64($0) }
        } else { targets = nil }
        sampleShape = Array(images.shape.dropFirst())
        sampleBytes = sampleShape.reduce(1, *) * 4
        for r in 0..<images.shape[0] {
            rowsByKey[key(images.data + r * sampleBytes, target: targets?[r] ?? 0), default: []].append(r)
        }
    }

    private func key(_ p: UnsafeRawPointer, target: Int64) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<sampleBytes { h = (h ^ UInt64(p.load(fromByteOffset: i, as: UInt8.self))) &* 0x0000_0100_0000_01b3 }
        return h ^ (UInt64(bitPattern: target) &* 0x9E37_79B9_7F4A_7C15)
    }

    func convert(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        let n = batch.count
        guard Array(x.shape.dropFirst()) == sampleShape else {
            throw PluginError.invalid("x: samples of shape \(Array(x.shape.dropFirst())), the file's images are \(sampleShape)")
        }
        let batchTargets: [Int64]? = targets == nil ? nil : try batch.requireTarget()
        let out = Tensor(zeros: x.shape)
        var index: [JSONValue] = []
        for s in 0..<n {
            let p = UnsafeRawPointer(x.data + s * sampleBytes)
            let t = batchTargets?[s] ?? 0
            let row = rowsByKey[key(p, target: t)]?.first { r in
                memcmp(p, images.data + r * sampleBytes, sampleBytes) == 0 && (targets == nil || targets![r] == t)
            }
            guard let row else {
                throw PluginError.invalid("sample \(s) of the batch is not among the file's \(images.shape[0]) images" +
                                          (targets == nil ? "" : " with target \(t)") + " (matched by exact float32 values)")
            }
            (out.data + s * sampleBytes).copyMemory(from: counterfactuals.data + row * sampleBytes, byteCount: sampleBytes)
            index.append(.int(Int64(row)))
        }
        return Outputs([("counterfactual", out)], json: ["index": .array(index)])
    }
}
