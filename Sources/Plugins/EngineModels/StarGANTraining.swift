import Engine
import Foundation
import QuacPluginKit

/// One training batch of StarGAN v2 (QuAC's solver): source images and classes, target classes with a
/// reference image of each, an augmented copy of the source (style invariance), latent codes, and
/// the batch-wide flips applied to the fakes before the style encoder reads them back.
struct StarGANBatch {
    var x: NDArray, yOrg: [Int], yTrg: [Int]
    var xRef: NDArray, xAug: NDArray?, z: NDArray
    var flipLatent: (h: Bool, v: Bool), flipRef: (h: Bool, v: Bool)
}

struct StarGANSettings {
    var steps: Int, batchSize: Int
    var lr: Float, fLR: Float, beta1: Float, beta2: Float, weightDecay: Float, ema: Float
    var lambdaSty: Float, lambdaCyc: Float, lambdaReg: Float
    var flips: Bool
    var logEvery: Int, sampleEvery: Int, checkpointEvery: Int, valEvery: Int, valOutputs: Int, valSamples: Int

    init(_ p: Parameters) throws {
        steps = try p.int("steps"); batchSize = try p.int("batch_size")
        lr = try p.float("lr"); fLR = try p.float("f_lr")
        let betas = try p.doubles("betas")
        guard betas.count == 2 else { throw PluginError.invalid("betas must be [beta1, beta2]") }
        (beta1, beta2) = (Float(betas[0]), Float(betas[1]))
        weightDecay = try p.float("weight_decay"); ema = try p.float("ema")
        lambdaSty = try p.float("lambda_sty"); lambdaCyc = try p.float("lambda_cyc"); lambdaReg = try p.float("lambda_reg")
        flips = try p.bool("augment_flips")
        logEvery = try p.int("log_every"); sampleEvery = try p.int("sample_every"); checkpointEvery = try p.int("checkpoint_every")
        valEvery = try p.int("val_every"); valOutputs = try p.int("val_outputs"); valSamples = try p.int("val_samples")
        guard steps >= 0, batchSize >= 1, lr > 0, fLR >= 0, weightDecay >= 0, ema >= 0, ema <= 1, valOutputs >= 1, valSamples >= 1 else {
            throw PluginError.invalid("training needs steps >= 0, batch_size >= 1, lr > 0, f_lr >= 0, weight_decay >= 0, ema in [0, 1], val_outputs and val_samples >= 1")
        }
    }

    /// What a checkpoint must agree with to be resumed (the number of steps may grow).
    var resumeKey: String {
        "batch=\(batchSize) lr=\(lr) f_lr=\(fLR) betas=\(beta1),\(beta2) wd=\(weightDecay) ema=\(ema) sty=\(lambdaSty) cyc=\(lambdaCyc) reg=\(lambdaReg) flips=\(flips)"
    }
}

// MARK: Losses

extension StarGANNets {
    /// D: BCE(D(x, y_org), 1) + BCE(D(G(x, s_trg), y_trg), 0) + lambda_reg * R1, with
    /// R1 = 0.5 * mean over samples of sum (dD(x)/dx)^2 (differentiable: a double backward).
    func dLoss(_ b: StarGANBatch, latent: Bool, lambdaReg: Float) -> (Var, [String: Float]) {
        let n = b.x.shape[0]
        let x = Var(b.x.copy(), requiresGrad: true)
        let out = discriminator.forward(x, b.yOrg)
        let real = Loss.bceWithLogits(out, Var(.ones(out.shape)))
        let g = gradients(of: [out], wrt: [x], createGraph: true)[0] ?? Var(.zeros(x.shape))
        let reg = g.square().reshape([n, b.x.count / max(n, 1)]).sum(axes: [1]).mean() * 0.5
        let fake = noGrad { () -> NDArray in
            let s = latent ? mapping.forward(Var(b.z), b.yTrg) : styleEncoder.forward(Var(b.xRef), b.yTrg)
            return generator.forward(Var(b.x), s).data
        }
        let outFake = discriminator.forward(Var(fake), b.yTrg)
        let lossFake = Loss.bceWithLogits(outFake, Var(.zeros(outFake.shape)))
        let total = real + lossFake + reg * lambdaReg
        return (total, ["real": real.item, "fake": lossFake.item, "reg": reg.item, "total": total.item])
    }

    /// G: BCE(D(G(x, s), y_trg), 1) + lambda_sty * |E(flip(G(x, s)), y_trg) - s| + lambda_cyc *
    /// |G(G(x, s), E(x, y_org)) - x|; the reference pass averages the style term with the style
    /// invariance term |E(x_aug, y_org) - E(x, y_org)| (QuAC's solver).
    func gLoss(_ b: StarGANBatch, latent: Bool, lambdaSty: Float, lambdaCyc: Float) -> (Var, [String: Float]) {
        let x = Var(b.x)
        let sTrg = latent ? mapping.forward(Var(b.z), b.yTrg) : styleEncoder.forward(Var(b.xRef), b.yTrg)
        let xFake = generator.forward(x, sTrg)
        let out = discriminator.forward(xFake, b.yTrg)
        let adv = Loss.bceWithLogits(out, Var(.ones(out.shape)))
        let flip = latent ? b.flipLatent : b.flipRef
        var seen = xFake
        if flip.h { seen = seen.flip([3]) }
        if flip.v { seen = seen.flip([2]) }
        var sty = Loss.l1(styleEncoder.forward(seen, b.yTrg), sTrg)
        let sOrg = styleEncoder.forward(x, b.yOrg)
        let xRec = generator.forward(xFake, sOrg)
        let cyc = Loss.l1(xRec, x)
        if !latent, let aug = b.xAug {
            sty = (sty + Loss.l1(styleEncoder.forward(Var(aug), b.yOrg), sOrg)) * 0.5
        }
        let total = adv + sty * lambdaSty + cyc * lambdaCyc
        return (total, ["adv": adv.item, "sty": sty.item, "cyc": cyc.item, "total": total.item])
    }
}

/// The four optimizers and one training step (QuAC's Solver.train): D with latent fakes, D with
/// reference fakes, G + mapping network + style encoder with the latent loss, G alone with the
/// reference loss, then the moving averages.
final class StarGANTrainer {
    let nets: StarGANNets
    let settings: StarGANSettings
    let optimizers: [String: Optimizer]

    init(_ nets: StarGANNets, _ s: StarGANSettings) {
        self.nets = nets
        settings = s
        var o: [String: Optimizer] = [:]
        for (name, net) in nets.networks {
            o[name] = Adam(net.parameters, lr: name == "mapping_network" ? s.fLR : s.lr, betas: (s.beta1, s.beta2),
                           weightDecay: s.weightDecay)
        }
        optimizers = o
    }

    private func zeroGrads() { for (_, n) in nets.networks { n.zeroGrad() } }

    /// Sum of squared gradients of the networks' parameters (diagnostics).
    func gradNorm(_ names: [String]) -> Double {
        var t = 0.0
        for name in names { for p in nets.networks[name]!.parameters { if let g = p.grad { for v in g.data.contiguous().array { t += Double(v) * Double(v) } } } }
        return t.squareRoot()
    }

    /// One step; returns the loss terms ("d_latent.real", ..., "g_ref.cyc").
    func step(_ b: StarGANBatch) throws -> [String: Float] {
        var terms: [String: Float] = [:]
        func record(_ prefix: String, _ t: [String: Float]) throws {
            for (k, v) in t {
                guard v.isFinite else { throw PluginError.invalid("the \(prefix) loss term \(k) became \(v); lower the learning rates") }
                terms["\(prefix).\(k)"] = v
            }
        }
        let s = settings
        for latent in [true, false] {
            let (loss, t) = nets.dLoss(b, latent: latent, lambdaReg: s.lambdaReg)
            try record(latent ? "d_latent" : "d_ref", t)
            zeroGrads()
            loss.backward(freeGraph: true)
            optimizers["discriminator"]!.step()
        }
        zeroGrads()
        setRequiresGrad(nets.discriminator, false)
        defer {
            for (_, n) in nets.networks { setRequiresGrad(n, true) }
            zeroGrads()
        }
        do {
            let (loss, t) = nets.gLoss(b, latent: true, lambdaSty: s.lambdaSty, lambdaCyc: s.lambdaCyc)
            try record("g_latent", t)
            loss.backward(freeGraph: true)
            for n in ["generator", "mapping_network", "style_encoder"] { optimizers[n]!.step() }
        }
        zeroGrads()
        setRequiresGrad(nets.mapping, false)
        setRequiresGrad(nets.styleEncoder, false)
        do {
            let (loss, t) = nets.gLoss(b, latent: false, lambdaSty: s.lambdaSty, lambdaCyc: s.lambdaCyc)
            try record("g_ref", t)
            loss.backward(freeGraph: true)
            optimizers["generator"]!.step()
        }
        nets.updateEMA(beta: s.ema)
        return terms
    }

    /// The loss terms of the four passes on one batch with the current weights (no update), and the
    /// gradient norms of the networks each pass updates: what the PyTorch golden test compares.
    func lossCheck(_ b: StarGANBatch) -> [String: Double] {
        var out: [String: Double] = [:]
        let s = settings
        for latent in [true, false] {
            let p = latent ? "d_latent" : "d_ref"
            let (loss, t) = nets.dLoss(b, latent: latent, lambdaReg: s.lambdaReg)
            for (k, v) in t { out["\(p).\(k)"] = Double(v) }
            zeroGrads()
            loss.backward()
            out["\(p).grad_norm"] = gradNorm(["discriminator"])
        }
        zeroGrads()
        for latent in [true, false] {
            let p = latent ? "g_latent" : "g_ref"
            let (loss, t) = nets.gLoss(b, latent: latent, lambdaSty: s.lambdaSty, lambdaCyc: s.lambdaCyc)
            for (k, v) in t { out["\(p).\(k)"] = Double(v) }
            zeroGrads()
            loss.backward()
            out["\(p).grad_norm"] = gradNorm(latent ? ["generator", "mapping_network", "style_encoder"] : ["generator"])
        }
        zeroGrads()
        return out
    }
}

// MARK: Data

/// A dataset held in memory, with the sample indices of each class.
struct StarGANData {
    let x: NDArray
    let labels: [Int]
    let byClass: [[Int]]

    init(_ d: TrainingData, config: StarGANConfig, what: String) throws {
        guard d.count > 0 else { throw PluginError.invalid("the \(what) set is empty") }
        var parts: [NDArray] = [], labels: [Int] = []
        for start in stride(from: 0, to: d.count, by: 256) {
            let idx = Array(start..<min(start + 256, d.count))
            let t = try d.get("x", idx)
            guard t.dtype == .float32, Array(t.shape.dropFirst()) == config.sampleShape else {
                throw PluginError.invalid("\(what) images are \(t.dtype.displayName) \(Array(t.shape.dropFirst())), the converter expects float32 \(config.sampleShape) (input_channels, image_size)")
            }
            guard t.isFinite else { throw PluginError.invalid("\(what) images contain NaN or infinity") }
            parts.append(NDArray(t).copy())
            labels += Labels(try d.get("label", idx)).values
        }
        for y in labels where y < 0 || y >= config.numDomains {
            throw PluginError.invalid("\(what) label \(y) is outside [0, \(config.numDomains)) (num_classes)")
        }
        x = parts.count == 1 ? parts[0] : Var.concat(parts.map { Var($0) }, axis: 0).data
        self.labels = labels
        var by = [[Int]](repeating: [], count: config.numDomains)
        for (i, y) in labels.enumerated() { by[y].append(i) }
        byClass = by
    }

    var classes: [Int] { byClass.indices.filter { !byClass[$0].isEmpty } }

    func gather(_ idx: [Int]) -> NDArray {
        let d = x.count / max(x.shape[0], 1)
        let out = NDArray.uninitialized([idx.count] + Array(x.shape.dropFirst()))
        for (j, i) in idx.enumerated() { (out.pointer + j * d).update(from: x.pointer + i * d, count: d) }
        return out
    }

    /// Class-balanced sampling (a class uniformly, then a sample of it: weight 1/class count), random
    /// flips; the reference's class is the target.
    func batch(size: Int, latentDim: Int, flips: Bool, rng: inout SeededRandom) -> StarGANBatch {
        let cs = classes
        var src: [Int] = [], yOrg: [Int] = [], ref: [Int] = [], yTrg: [Int] = []
        for _ in 0..<size {
            let c = cs[rng.int(cs.count)]
            yOrg.append(c); src.append(byClass[c][rng.int(byClass[c].count)])
            let t = cs[rng.int(cs.count)]
            yTrg.append(t); ref.append(byClass[t][rng.int(byClass[t].count)])
        }
        let x = gather(src), xRef = gather(ref)
        if flips { CNNClassifier.flip(x, &rng); CNNClassifier.flip(xRef, &rng) }
        let xAug = x.copy()
        CNNClassifier.flip(xAug, &rng)
        let z = NDArray.normal([size, latentDim], rng: &rng)
        let fl = (h: rng.next() & 1 == 1, v: rng.next() & 1 == 1), fr = (h: rng.next() & 1 == 1, v: rng.next() & 1 == 1)
        return StarGANBatch(x: x, yOrg: yOrg, yTrg: yTrg, xRef: xRef, xAug: xAug, z: z, flipLatent: fl, flipRef: fr)
    }
}

// MARK: The trainer capability

extension StarGANConverter: TrainablePlugin {
    func train(_ train: TrainingData, val: TrainingData?, checkpoints: URL, seed: UInt64) throws -> Outputs {
        let s = try StarGANSettings(parameters)
        if let path = try parameters.optionalString("loss_check") { return try runLossCheck(URL(fileURLWithPath: path), s) }
        if let path = try parameters.optionalString("forward_check") { return try runForwardCheck(URL(fileURLWithPath: path)) }
        let data = try StarGANData(train, config: config, what: "training")
        guard data.classes.count >= 2 else { throw PluginError.invalid("the training set needs samples of at least 2 classes") }
        let valData = try val.map { try StarGANData($0, config: config, what: "validation") }
        let trainer = StarGANTrainer(nets, s)
        let checkpoint = checkpoints.appendingPathComponent("last.safetensors")
        var first = 0
        var history: [JSONValue] = [], validation: [JSONValue] = []
        if FileManager.default.fileExists(atPath: checkpoint.path) {
            (first, history, validation) = try restore(checkpoint, trainer)
            host.log("resuming from step \(first) (\(checkpoint.path))")
        }
        guard first <= s.steps else { throw PluginError.invalid("checkpoint \(checkpoint.path) is at step \(first), beyond the \(s.steps) steps asked for") }
        let classifierAvailable = (try? host.classifierInfo()) != nil
        var lastRecord = (time: Date(), step: first)
        for step in first..<s.steps {
            try host.checkCancelled()
            // Everything random in a step comes from (seed, step): a resumed run draws what an
            // uninterrupted one would.
            var rng = SeededRandom(seed: seed &+ (UInt64(step) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
            let b = data.batch(size: s.batchSize, latentDim: config.latentDim, flips: s.flips, rng: &rng)
            let terms = try trainer.step(b)
            let done = step + 1
            host.progress(done, of: s.steps, "StarGAN step \(done)/\(s.steps)")
            if done % max(s.logEvery, 1) == 0 || done == s.steps {
                var rec: [(String, JSONValue)] = [("step", .int(Int64(done)))]
                for k in terms.keys.sorted() { rec.append((k, .double(Double(terms[k]!)))) }
                history.append(.object(JSONObject(rec)))
                // Seconds per step since the last record (bench/stargan_step_bench.py reads them).
                let now = Date()
                let perStep = now.timeIntervalSince(lastRecord.time) / Double(max(done - lastRecord.step, 1))
                lastRecord = (now, done)
                host.log(String(format: "step %d/%d (%.4f s/step): D %.3f/%.3f (R1 %.4f), G adv %.3f sty %.3f cyc %.3f", done, s.steps, perStep,
                                terms["d_latent.total"]!, terms["d_ref.total"]!, terms["d_latent.reg"]!, terms["g_latent.adv"]!,
                                terms["g_latent.sty"]!, terms["g_latent.cyc"]!))
            }
            if let valData, classifierAvailable, s.valEvery > 0, done % s.valEvery == 0 || done == s.steps {
                let v = try validate(valData, s, seed: seed, step: done)
                validation.append(v)
                host.log("step \(done) validation: \(v.serialized())")
            }
            if s.sampleEvery > 0, done % s.sampleEvery == 0 || done == s.steps {
                try writeSamples(valData ?? data, to: checkpoints.appendingPathComponent(String(format: "samples_%06d.png", done)), seed: seed)
            }
            if done % max(s.checkpointEvery, 1) == 0 || done == s.steps {
                try saveCheckpoint(checkpoint, trainer, step: done, history: history, validation: validation)
            }
        }
        let last = validation.last
        return Outputs([], json: [
            "history": .array(history), "validation": .array(validation),
            "final_validation": last ?? .null, "steps": .int(Int64(s.steps)), "resumed_from_step": .int(Int64(first)),
        ])
    }

    /// Translation and conversion rates per (source, target) pair and style mode, measured with the
    /// run's classifier on generations of the EMA networks (val_outputs per image).
    func validate(_ d: StarGANData, _ s: StarGANSettings, seed: UInt64, step: Int) throws -> JSONValue {
        var rng = SeededRandom(seed: seed ^ 0xA11D_A7E ^ UInt64(step))
        var result: [(String, JSONValue)] = [("step", .int(Int64(step)))]
        for mode in ["latent", "reference"] {
            var pairs: [(String, JSONValue)] = []
            var tr: [Double] = [], cr: [Double] = []
            for trg in d.classes {
                for src in d.classes where src != trg {
                    let idx = Array(d.byClass[src].prefix(s.valSamples))
                    let x = d.gather(idx)
                    var hits = [Int](repeating: 0, count: idx.count)
                    for _ in 0..<s.valOutputs {
                        let styles: Var
                        let y = [Int](repeating: trg, count: idx.count)
                        if mode == "latent" {
                            styles = noGrad { nets.mappingEMA.forward(Var(.normal([idx.count, config.latentDim], rng: &rng)), y) }
                        } else {
                            let refs = (0..<idx.count).map { _ in d.byClass[trg][rng.int(d.byClass[trg].count)] }
                            styles = noGrad { nets.styleEncoderEMA.forward(Var(d.gather(refs)), y) }
                        }
                        let pred = try classify(generate(x, styles))
                        for i in idx.indices where pred[i] == trg { hits[i] += 1 }
                    }
                    let t = Double(hits.reduce(0, +)) / Double(idx.count * s.valOutputs)
                    let c = Double(hits.filter { $0 > 0 }.count) / Double(idx.count)
                    tr.append(t); cr.append(c)
                    pairs.append(("\(src)->\(trg)", ["translation_rate": .double(t), "conversion_rate": .double(c)]))
                }
            }
            pairs.append(("average", ["translation_rate": .double(tr.reduce(0, +) / Double(max(tr.count, 1))),
                                      "conversion_rate": .double(cr.reduce(0, +) / Double(max(cr.count, 1)))]))
            result.append((mode, .object(JSONObject(pairs))))
        }
        return .object(JSONObject(result))
    }

    /// A PNG grid: per row one image (up to 8), then for each class a latent-style and a
    /// reference-style generation of the EMA networks.
    func writeSamples(_ d: StarGANData, to url: URL, seed: UInt64) throws {
        var rng = SeededRandom(seed: seed ^ 0x5A3F_1E5)
        let rows = Array(0..<min(8, d.labels.count))
        let x = d.gather(rows)
        let (c, h) = (config.inputChannels, config.imageSize)
        var columns: [NDArray] = [x]
        for t in d.classes {
            let y = [Int](repeating: t, count: rows.count)
            let sl = noGrad { nets.mappingEMA.forward(Var(.normal([rows.count, config.latentDim], rng: &rng)), y) }
            let refs = rows.map { _ in d.byClass[t][rng.int(d.byClass[t].count)] }
            let sr = noGrad { nets.styleEncoderEMA.forward(Var(d.gather(refs)), y) }
            columns += [generate(x, sl), generate(x, sr)]
        }
        let grid = Tensor(zeros: [c, rows.count * h, columns.count * h])
        let g = grid.floats
        for (j, col) in columns.enumerated() {
            let p = col.contiguous().pointer
            for r in rows.indices { for ch in 0..<c { for i in 0..<h { for k in 0..<h {
                g[(ch * rows.count * h + r * h + i) * columns.count * h + j * h + k] = p[((r * c + ch) * h + i) * h + k]
            } } } }
        }
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try PNGFile.write(grid, mapping: .signedUnit, to: url)
        } catch { throw PluginError.io("sample grid \(url.path): \(error)") }
    }

    // MARK: Checkpoints

    private func saveCheckpoint(_ url: URL, _ t: StarGANTrainer, step: Int, history: [JSONValue], validation: [JSONValue]) throws {
        var networks = nets.networks
        for (k, v) in nets.emaNetworks { networks["\(k)_ema"] = v }
        try TrainingCheckpoint.save(url, architecture: config.json, resumeKey: t.settings.resumeKey, networks: networks,
                                    optimizers: t.optimizers, metadata: [
            "step": String(step), "history": JSONValue.array(history).serialized(),
            "validation": JSONValue.array(validation).serialized(),
        ])
    }

    private func restore(_ url: URL, _ t: StarGANTrainer) throws -> (Int, [JSONValue], [JSONValue]) {
        var networks = nets.networks
        for (k, v) in nets.emaNetworks { networks["\(k)_ema"] = v }
        let meta = try TrainingCheckpoint.restore(url, architecture: config.json, resumeKey: t.settings.resumeKey,
                                                  networks: networks, optimizers: t.optimizers)
        guard let step = meta["step"].flatMap(Int.init), step >= 0 else { throw PluginError.io("checkpoint \(url.path): no step in the metadata") }
        let h = (try? JSONParser.parse(meta["history"] ?? "[]"))?.arrayValue ?? []
        let v = (try? JSONParser.parse(meta["validation"] ?? "[]"))?.arrayValue ?? []
        return (step, h, v)
    }

    // MARK: Golden check

    /// The generating networks on a file's inputs x [N, C, H, W], y [N] (int64) and z [N, latent_dim],
    /// without training: outputs "mapping" = M(z, y), "style" = E(x, y), "generated" = G(x, M(z, y)).
    /// Lets tests compare imported weights with PyTorch's outputs.
    private func runForwardCheck(_ url: URL) throws -> Outputs {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("forward_check \(url.path): \(error)") }
        let a = ModelFile.floatArrays(file)
        guard let x = a["x"], let z = a["z"], let y = file.tensors["y"], y.dtype == .int64 else {
            throw PluginError.invalid("forward_check \(url.path): needs float x, float z and int64 y")
        }
        let labels = y.int64Array().map { Int($0) }
        let (m, e, g) = noGrad { () -> (Var, Var, Var) in
            let m = nets.mappingEMA.forward(Var(z.copy()), labels)
            let e = nets.styleEncoderEMA.forward(Var(x.copy()), labels)
            return (m, e, nets.generatorEMA.forward(Var(x.copy()), m))
        }
        return Outputs([("mapping", m.data.contiguous().tensor), ("style", e.data.contiguous().tensor), ("generated", g.data.contiguous().tensor)])
    }

    /// Loads networks and a batch from a file (see scripts/golden/stargan_golden.py) and reports the
    /// loss terms and gradient norms of the four passes, without training.
    private func runLossCheck(_ url: URL, _ s: StarGANSettings) throws -> Outputs {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("loss_check \(url.path): \(error)") }
        do { try Checkpoint.load(from: url, networks: nets.networks) } catch { throw PluginError.io("loss_check \(url.path): \(error)") }
        let a = ModelFile.floatArrays(file)
        func need(_ k: String) throws -> NDArray {
            guard let v = a["batch/\(k)"] else { throw PluginError.invalid("loss_check \(url.path): no tensor batch/\(k)") }
            return v
        }
        let flips = try need("flips").array
        let b = StarGANBatch(x: try need("x_real"), yOrg: try need("y_org").array.map { Int($0) },
                             yTrg: try need("y_trg").array.map { Int($0) }, xRef: try need("x_ref"), xAug: try need("x_aug"),
                             z: try need("z_trg"), flipLatent: (flips[0] != 0, flips[1] != 0), flipRef: (flips[2] != 0, flips[3] != 0))
        let out = StarGANTrainer(nets, s).lossCheck(b)
        return Outputs([], json: .object(JSONObject(out.keys.sorted().map { ($0, .double(out[$0]!)) })))
    }
}
