import Engine
import Foundation
import QuacPluginKit

/// StarGAN v2 as QuAC's conversion network (docs/algorithms.md, "StarGAN v2"): the EMA generator turns
/// a query into its target class with a style from the EMA mapping network (a random latent code) or
/// the EMA style encoder (the batch's reference image). Per query it makes `candidates` generations,
/// keeps the one with the highest target probability among those the run's classifier assigns to the
/// target (the highest overall when none does), and retries up to `max_tries` rounds while none
/// converts. Latent codes come from (seed, the query's bytes, its target), so a query's result does not
/// depend on the batch it comes in. Puts JSON {"converted", "target_probability", "tries",
/// "unconverted"}. Training is in StarGANTraining.swift, the networks in StarGANNetworks.swift.
final class StarGANConverter: ConverterPlugin {
    static let description = PluginDescription(
        id: "org.quac.stargan-converter", name: "StarGAN v2 converter",
        summary: "StarGAN v2 conversion network (latent or reference style, K candidates, retries) with training", kind: .converter)

    let host: HostServices
    let parameters: Parameters
    let config: StarGANConfig
    let nets: StarGANNets
    let style: String, candidates: Int, maxTries: Int

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        self.parameters = parameters
        config = try Self.configuration(parameters, host: host)
        style = try parameters.string("style")
        guard style == "latent" || style == "reference" else { throw PluginError.invalid("style must be \"latent\" or \"reference\", got \"\(style)\"") }
        candidates = try parameters.int("candidates")
        maxTries = try parameters.int("max_tries")
        guard candidates >= 1, maxTries >= 1 else { throw PluginError.invalid("candidates and max_tries must be >= 1") }
        _ = try StarGANSettings(parameters)
        nets = StarGANNets(config, seed: UInt64(try parameters.int("seed")))
        if try parameters.optionalString("weights") != nil, try parameters.optionalString("state_dict") != nil {
            throw PluginError.invalid("give weights (a model file of this plugin) or state_dict (a QuAC checkpoint's state dicts), not both")
        }
        if let path = try parameters.optionalString("weights") { try load(from: URL(fileURLWithPath: path)) }
        if let path = try parameters.optionalString("state_dict") { try loadQuacStateDicts(URL(fileURLWithPath: path)) }
    }

    /// The architecture parameters, their values in the manifest (the schema's defaults).
    static let architectureDefaults: [String: Int] = [
        "image_size": 32, "input_channels": 1, "num_classes": 2, "channels": 0, "max_channels": 64,
        "style_dim": 64, "latent_dim": 16, "mapping_dim": 512,
    ]

    /// The network's configuration: the parameters'; but when weights come from a checkpoint's state
    /// dicts and no architecture parameter was changed from its default, the one the checkpoint's shapes
    /// imply (a user importing QuAC's files need not know them). Parameters that were given and
    /// disagree with the checkpoint stop the load (see loadQuacStateDicts).
    static func configuration(_ p: Parameters, host: HostServices) throws -> StarGANConfig {
        let given = try StarGANConfig(p)
        guard let path = try p.optionalString("state_dict"),
              try architectureDefaults.allSatisfy({ try p.int($0.key) == $0.value }),
              let file = try? Safetensors.read(URL(fileURLWithPath: path)),
              let inferred = StarGANConfig.inferred(from: file, fallback: given) else { return given }
        if inferred.json != given.json {
            host.log("architecture from the checkpoint's shapes: \(inferred.json.serialized())")
        }
        return inferred
    }

    /// The state dicts of a checkpoint QuAC's solver saved (`quac-host import` turns the torch.save file
    /// into safetensors named "<network>/<state_dict name>"): generator, mapping_network and
    /// style_encoder become the generating (EMA) networks; a discriminator, present in the non-EMA
    /// file, is not needed to generate and is skipped. Anything else stops the load with its name.
    private func loadQuacStateDicts(_ url: URL) throws {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("state_dict \(url.path): \(error)") }
        if let inferred = StarGANConfig.inferred(from: file, fallback: config), inferred.json != config.json {
            let differing = zip(config.json.objectValue!.keys, config.json.objectValue!.keys.map { (config.json[$0]!, inferred.json[$0]!) })
                .filter { $0.1.0 != $0.1.1 }.map { "\($0.0) \($0.1.1.serialized()) (the parameters say \($0.1.0.serialized()))" }
            var given = inferred.json.objectValue!
            given["network"] = nil
            throw PluginError.invalid("state_dict \(url.path): the checkpoint's networks have \(differing.joined(separator: ", ")); give them: \(JSONValue.object(given).serialized())")
        }
        let networks = nets.emaNetworks
        for name in file.names {
            let group = String(name.split(separator: "/").first ?? "")
            guard networks[group] != nil || group == "discriminator" else {
                throw PluginError.invalid("state_dict \(url.path): tensor \"\(name)\" belongs to no network of the StarGAN (expected generator/, mapping_network/, style_encoder/)")
            }
        }
        for (group, net) in networks.sorted(by: { $0.key < $1.key }) {
            do { try ModelFile.loadForeignStateDict(file, into: net, prefix: group + "/") } catch {
                throw PluginError.invalid("state_dict \(url.path): \(error) (check image_size, input_channels, num_classes, channels, max_channels, style_dim, latent_dim and mapping_dim)")
            }
        }
    }

    // MARK: Generation

    /// The EMA generator on x [N, C, H, W] with styles [N, style_dim], in chunks.
    func generate(_ x: NDArray, _ s: Var) -> NDArray {
        let n = x.shape[0]
        if n <= 32 { return noGrad { nets.generatorEMA.forward(Var(x), s).data } }
        var parts: [Var] = []
        for start in stride(from: 0, to: n, by: 32) {
            let r = start..<min(start + 32, n)
            parts.append(noGrad { nets.generatorEMA.forward(Var(x).slice(axis: 0, r).contiguous(), s.slice(axis: 0, r).contiguous()) })
        }
        return Var.concat(parts, axis: 0).data
    }

    /// The run's classifier's logits.
    func logits(_ x: NDArray) throws -> (values: [Float], classes: Int) {
        let t = try host.classifierForward(x.contiguous().tensor)
        return (Array(t.floats), t.shape.count == 2 ? t.shape[1] : 1)
    }

    func classify(_ x: NDArray) throws -> [Int] {
        let (v, k) = try logits(x)
        return (0..<x.shape[0]).map { i in (0..<k).max { v[i * k + $0] < v[i * k + $1] }! }
    }

    private func checkImages(_ t: Tensor, _ name: String) throws {
        guard t.dtype == .float32 else { throw PluginError.invalid("\(name): expected float32, got \(t.dtype.displayName)") }
        guard t.rank == 4, Array(t.shape.dropFirst()) == config.sampleShape else {
            throw PluginError.invalid("\(name): expected shape [N, \(config.sampleShape.map(String.init).joined(separator: ", "))] (input_channels, image_size), got \(t.shape)")
        }
        guard t.isFinite else { throw PluginError.invalid("\(name) contains NaN or infinity") }
    }

    /// A seed for one query from the call's seed, the query's bytes and its target (FNV-1a).
    private func querySeed(_ x: NDArray, _ i: Int, _ target: Int64, _ seed: UInt64) -> UInt64 {
        let d = x.count / x.shape[0]
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        let p = x.pointer + i * d
        for k in 0..<d { h = (h ^ UInt64(p[k].bitPattern)) &* 0x100_0000_01B3 }
        return (h ^ UInt64(bitPattern: target)) &* 0x100_0000_01B3
    }

    func convert(_ batch: Batch) throws -> Outputs {
        let targets = try batch.requireTarget()
        try checkImages(batch.x, "x")
        let n = batch.count
        guard targets.count == n else { throw PluginError.invalid("target: expected \(n) labels, got \(targets.count)") }
        for (i, t) in targets.enumerated() where t < 0 || t >= Int64(config.numDomains) {
            throw PluginError.invalid("target \(t) of sample \(i) is outside [0, \(config.numDomains)) (num_classes)")
        }
        let x = NDArray(batch.x).copy()
        var refs: NDArray?
        if style == "reference" {
            guard let r = batch.reference else { throw PluginError.invalid("style \"reference\" needs reference images (the run passes none)") }
            try checkImages(r, "reference")
            guard r.shape[0] == n else { throw PluginError.invalid("reference: expected \(n) images, one per query, got \(r.shape[0])") }
            refs = NDArray(r).copy()
        }
        guard n > 0 else {
            return Outputs([("counterfactual", batch.x.copy())], json: ["converted": [], "target_probability": [], "tries": [], "unconverted": []])
        }
        let d = x.count / n
        let out = x.copy()
        var best = [Float](repeating: -1, count: n), converted = [Bool](repeating: false, count: n)
        var tries = [Int](repeating: 0, count: n)
        var rngs = (0..<n).map { SeededRandom(seed: querySeed(x, $0, targets[$0], batch.seed)) }
        // A reference style is deterministic: its candidates would all be equal, so one is made.
        let k = refs == nil ? candidates : 1, rounds = refs == nil ? maxTries : 1
        for _ in 0..<rounds {
            try host.checkCancelled()
            let active = (0..<n).filter { !converted[$0] }
            if active.isEmpty { break }
            let rows = active.flatMap { [Int](repeating: $0, count: k) }
            let xr = NDArray.uninitialized([rows.count] + config.sampleShape)
            for (j, i) in rows.enumerated() { (xr.pointer + j * d).update(from: x.pointer + i * d, count: d) }
            let y = rows.map { Int(targets[$0]) }
            let styles: Var
            if let refs {
                let rr = NDArray.uninitialized(xr.shape)
                for (j, i) in rows.enumerated() { (rr.pointer + j * d).update(from: refs.pointer + i * d, count: d) }
                styles = noGrad { nets.styleEncoderEMA.forward(Var(rr), y) }
            } else {
                let z = NDArray.uninitialized([rows.count, config.latentDim])
                for (j, i) in rows.enumerated() { for q in 0..<config.latentDim { z.pointer[j * config.latentDim + q] = rngs[i].normal() } }
                styles = noGrad { nets.mappingEMA.forward(Var(z), y) }
            }
            let fakes = generate(xr, styles).contiguous()
            let (v, classes) = try logits(fakes)
            guard classes > Int(targets.max() ?? 0) else { throw PluginError.invalid("the classifier has \(classes) classes; targets go up to \(targets.max() ?? 0)") }
            for (a, i) in active.enumerated() {
                tries[i] += 1
                let t = Int(targets[i])
                for c in 0..<k {
                    let j = a * k + c
                    let row = Array(v[(j * classes)..<((j + 1) * classes)])
                    let m = row.max()!
                    let e = row.map { Foundation.exp($0 - m) }
                    let p = e[t] / e.reduce(0, +)
                    let hit = row.indices.max { row[$0] < row[$1] }! == t
                    // A candidate classified as the target beats any that is not; then the higher
                    // target probability wins.
                    if (hit && !converted[i]) || (hit == converted[i] && p > best[i]) {
                        best[i] = p
                        converted[i] = converted[i] || hit
                        (out.pointer + i * d).update(from: fakes.pointer + j * d, count: d)
                    }
                }
            }
        }
        let unconverted = (0..<n).filter { !converted[$0] }
        if !unconverted.isEmpty { host.log("\(unconverted.count) of \(n) queries did not convert after \(rounds) round(s) of \(k) candidate(s)") }
        return Outputs([("counterfactual", out.tensor)], json: [
            "converted": .array(converted.map { .bool($0) }),
            "target_probability": .array(best.map { .double(Double($0)) }),
            "tries": .array(tries.map { .int(Int64($0)) }),
            "unconverted": .array(unconverted.map { .int(Int64($0)) }),
            "style": .string(style),
        ])
    }

    // MARK: Model files

    /// The EMA networks (which generate), with the architecture in the metadata.
    func save(to url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Checkpoint.save(to: url, networks: nets.emaNetworks, metadata: [
                ModelFile.architectureKey: config.json.serialized(), "plugin": StarGANConverter.description.id,
            ])
        } catch { throw PluginError.io("save \(url.path): \(error)") }
    }

    func load(from url: URL) throws {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("weights \(url.path): \(error)") }
        guard let text = file.metadata[ModelFile.architectureKey], let stored = try? JSONParser.parse(text) else {
            throw PluginError.io("weights \(url.path): no architecture in the file's metadata (not a model file of this plugin)")
        }
        guard stored == config.json else {
            throw PluginError.invalid("weights \(url.path): the file's architecture \(text) differs from the parameters' \(config.json.serialized())")
        }
        do { try Checkpoint.load(from: url, networks: nets.emaNetworks) } catch { throw PluginError.io("weights \(url.path): \(error)") }
    }
}
