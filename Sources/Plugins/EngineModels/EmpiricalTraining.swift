import Engine
import Foundation
import QuacPluginKit

/// Training of the empirical explainer: mean squared error between g(x) and the target maps (the
/// dataset field "targets", divided by their root mean square over the training set), Adam (the layers
/// copied from the classifier at encoder_learning_rate, the rest at learning_rate; batch norms keep the
/// classifier's statistics), minibatches in an order drawn from (seed, epoch), early stopping on the
/// validation error (the best epoch's weights are kept), a checkpoint after every epoch (weights, best
/// weights, optimizers, history) and an exact resume.
extension EmpiricalExplainer: TrainablePlugin {
    struct Settings {
        var epochs: Int, batchSize: Int, learningRate: Float, encoderLearningRate: Float, weightDecay: Float, patience: Int
        init(_ p: Parameters) throws {
            epochs = try p.int("epochs")
            batchSize = try p.int("batch_size")
            learningRate = try p.float("learning_rate")
            encoderLearningRate = try p.float("encoder_learning_rate")
            guard encoderLearningRate > 0, encoderLearningRate.isFinite else {
                throw PluginError.invalid("encoder_learning_rate must be positive, got \(encoderLearningRate)")
            }
            weightDecay = try p.float("weight_decay")
            patience = try p.int("patience")
            guard epochs >= 1, batchSize >= 1, learningRate > 0, learningRate.isFinite, weightDecay >= 0, patience >= 0 else {
                throw PluginError.invalid("training needs epochs >= 1, batch_size >= 1, learning_rate > 0, weight_decay >= 0 and patience >= 0")
            }
        }
    }

    /// What a checkpoint must have been written with to be resumed (epochs may grow): the settings, the
    /// encoder mode, and the encoder's rate when layers were copied from the classifier (a fallback to
    /// the fresh encoder has no such optimizer).
    func resumeKey(_ s: Settings) -> String {
        "adam lr=\(s.learningRate) wd=\(s.weightDecay) batch=\(s.batchSize) patience=\(s.patience) encoder=\(encoderMode)"
            + (encoderKeys.isEmpty ? "" : " encoder_lr=\(s.encoderLearningRate)")
    }

    /// One epoch's record: training and validation error (on scaled targets).
    struct Epoch { var train: Double, val: Double? }

    func train(_ train: TrainingData, val: TrainingData?, checkpoints: URL, seed: UInt64) throws -> Outputs {
        let s = try Settings(parameters)
        for (d, what) in [(train, "training"), (val, "validation")] {
            guard let d else { continue }
            guard d.count > 0 else { throw PluginError.invalid("the \(what) set is empty") }
            guard d.fields.contains("targets") else {
                throw PluginError.invalid("the \(what) data has no \"targets\" field: set \"targets_from\" in the train block to the attributor to imitate")
            }
            let x = try d.get("x", [0]), t = try d.get("targets", [0])
            guard Array(x.shape.dropFirst()) == sampleShape, t.shape == x.shape else {
                throw PluginError.invalid("\(what) data: x \(x.shape.dropFirst()) and targets \(t.shape.dropFirst()) must both be input_shape \(sampleShape)")
            }
        }
        // The targets' scale, from the training set (the same on a resume).
        var squares = 0.0, elements = 0
        for start in stride(from: 0, to: train.count, by: 64) {
            let t = try train.get("targets", Array(start..<min(start + 64, train.count)))
            for v in t.floatArray() { squares += Double(v) * Double(v) }
            elements += t.count
        }
        targetScale = Float(max((squares / Double(max(elements, 1))).squareRoot(), 1e-12))

        if weightsLoaded {
            host.log("encoder: the weights file's (\(encoderSource)); training continues from it")
        } else if encoderMode == "classifier" {
            try adoptClassifierTrunk()
        }
        let named = model.namedParameters()
        let optimizer = Adam(named.filter { !encoderKeys.contains($0.0) }.map(\.1), lr: s.learningRate, weightDecay: s.weightDecay)
        let encoderParameters = named.filter { encoderKeys.contains($0.0) }.map(\.1)
        let encoderOptimizer = encoderParameters.isEmpty ? nil : Adam(encoderParameters, lr: s.encoderLearningRate, weightDecay: s.weightDecay)
        var optimizers: [String: Optimizer] = ["optimizer": optimizer]
        if let encoderOptimizer { optimizers["encoder_optimizer"] = encoderOptimizer }
        let best = try ModelBuilder.build(architecture, seed: 0, initialize: false)
        try best.loadStateDict(Dictionary(uniqueKeysWithValues: model.stateDict()))
        var history: [Epoch] = [], first = 0, bestVal = Double.infinity, sinceBest = 0
        let checkpoint = checkpoints.appendingPathComponent("last.safetensors")
        if FileManager.default.fileExists(atPath: checkpoint.path) {
            (first, history, bestVal, sinceBest) = try restore(checkpoint, optimizers: optimizers, best: best, settings: s)
            host.log("resuming from epoch \(first) (\(checkpoint.path))")
        }
        var epoch = first
        while epoch < s.epochs && !(val != nil && s.patience > 0 && sinceBest >= s.patience) {
            var rng = SeededRandom(seed: seed &+ (UInt64(epoch) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
            var order = Array(0..<train.count)
            rng.shuffle(&order)
            var total = 0.0
            let batches = stride(from: 0, to: train.count, by: s.batchSize).map { $0..<min($0 + s.batchSize, train.count) }
            for (b, range) in batches.enumerated() {
                try host.checkCancelled()
                let idx = Array(order[range])
                let (x, t) = try self.batch(train, idx)
                let loss = Loss.mse(model(Var(x)), Var(t))
                guard loss.item.isFinite else { throw PluginError.invalid("the training loss became \(loss.item) in epoch \(epoch + 1); lower the learning rate") }
                for o in optimizers.values { o.zeroGrad() }
                loss.backward()
                for o in optimizers.values { o.step() }
                total += Double(loss.item) * Double(idx.count)
                host.progress(epoch * batches.count + b + 1, of: s.epochs * batches.count, "epoch \(epoch + 1)/\(s.epochs)")
            }
            let valError = try val.map { try meanSquaredError($0) }
            history.append(Epoch(train: total / Double(train.count), val: valError))
            if let v = valError, v < bestVal {
                bestVal = v; sinceBest = 0
                try best.loadStateDict(Dictionary(uniqueKeysWithValues: model.stateDict()))
            } else if valError != nil { sinceBest += 1 }
            epoch += 1
            try saveCheckpoint(checkpoint, epoch: epoch, optimizers: optimizers, best: best, settings: s, history: history,
                               bestVal: bestVal, sinceBest: sinceBest)
            host.log(String(format: "epoch %d: training error %.5f", epoch, history.last!.train) + (valError.map { String(format: ", validation error %.5f", $0) } ?? ""))
        }
        // With validation data, the best epoch's weights are the model.
        if val != nil { try model.loadStateDict(Dictionary(uniqueKeysWithValues: best.stateDict())) }
        model.eval()
        return Outputs([], json: [
            "train_mse": .array(history.map { .double($0.train) }),
            "val_mse": .array(history.map { $0.val.map(JSONValue.double) ?? .null }),
            "best_val_mse": bestVal.isFinite ? .double(bestVal) : .null,
            "epochs_run": .int(Int64(history.count)), "stopped_early": .bool(history.count < s.epochs),
            "target_scale": .double(Double(targetScale)), "resumed_from_epoch": .int(Int64(first)),
            "encoder": .string(encoderSource),
        ])
    }

    /// Inputs and scaled targets of the samples at `idx`, as engine arrays.
    private func batch(_ d: TrainingData, _ idx: [Int]) throws -> (NDArray, NDArray) {
        let x = NDArray(try d.get("x", idx)).copy()
        let t = NDArray(try d.get("targets", idx)).copy()
        let p = t.pointer
        for i in 0..<t.count { p[i] /= targetScale }
        return (x, t)
    }

    /// Mean squared error of g on a dataset, on scaled targets (evaluation mode).
    func meanSquaredError(_ d: TrainingData) throws -> Double {
        var total = 0.0
        for start in stride(from: 0, to: d.count, by: 64) {
            try host.checkCancelled()
            let idx = Array(start..<min(start + 64, d.count))
            let (x, t) = try batch(d, idx)
            total += Double(noGrad { Loss.mse(model(Var(x)), Var(t)) }.item) * Double(idx.count)
        }
        return total / Double(max(d.count, 1))
    }

    // MARK: Model files and checkpoints

    func save(to url: URL) throws {
        do {
            try ModelFile.save(model, architecture: architecture, to: url, metadata: [
                "plugin": EmpiricalExplainer.description.id, "target_scale": String(targetScale), "encoder": encoderSource,
                "input_shape": JSONValue.array(sampleShape.map { .int(Int64($0)) }).serialized(),
                "encoder_keys": JSONValue.array(encoderKeys.sorted().map(JSONValue.string)).serialized(),
            ])
        } catch { throw PluginError.io("save \(url.path): \(error)") }
    }

    func load(from url: URL) throws {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("weights \(url.path): \(error)") }
        guard file.metadata["plugin"] == EmpiricalExplainer.description.id, let text = file.metadata[ModelFile.architectureKey],
              let fileArchitecture = try? JSONParser.parse(text) else {
            throw PluginError.invalid("weights \(url.path): not a model file of \(EmpiricalExplainer.description.id)")
        }
        if let text = file.metadata["input_shape"], let shape = (try? JSONParser.parse(text))?.arrayValue?.compactMap(\.intValue).map(Int.init),
           shape != sampleShape {
            throw PluginError.invalid("weights \(url.path): made for input_shape \(shape), this explainer's is \(sampleShape)")
        }
        let source = file.metadata["encoder"] ?? "fresh"
        if source.hasPrefix("classifier trunk") {
            // Its network was built on a classifier's trunk: it comes from the file.
            guard encoderMode == "classifier" else { throw PluginError.invalid("weights \(url.path): its encoder is a classifier's trunk, but encoder is \"fresh\"") }
            if fileArchitecture != architecture {
                do { model = try ModelBuilder.build(fileArchitecture, seed: 0, initialize: false) } catch { throw PluginError.io("weights \(url.path): \(error)") }
                architecture = fileArchitecture
            }
        } else if fileArchitecture != architecture {
            throw PluginError.invalid("weights \(url.path): not a model of this explainer's architecture (check input_shape and channels)")
        }
        encoderSource = source
        encoderKeys = Set((try? JSONParser.parse(file.metadata["encoder_keys"] ?? "[]"))?.arrayValue?.compactMap(\.stringValue) ?? [])
        weightsLoaded = true
        guard let scale = file.metadata["target_scale"].flatMap(Float.init), scale > 0, scale.isFinite else {
            throw PluginError.io("weights \(url.path): no target_scale in the metadata")
        }
        do { try model.loadStateDict(ModelFile.floatArrays(file)) } catch { throw PluginError.io("weights \(url.path): \(error)") }
        targetScale = scale
        model.eval()
    }

    private func saveCheckpoint(_ url: URL, epoch: Int, optimizers: [String: Optimizer], best: Module, settings: Settings, history: [Epoch],
                                bestVal: Double, sinceBest: Int) throws {
        try TrainingCheckpoint.save(url, architecture: architecture, resumeKey: resumeKey(settings), networks: ["model": model, "best": best],
                                    optimizers: optimizers, metadata: [
            "epoch": String(epoch), "best_val": String(bestVal), "since_best": String(sinceBest),
            "history": JSONValue.array(history.map { [.double($0.train), $0.val.map(JSONValue.double) ?? .null] }).serialized(),
        ])
    }

    private func restore(_ url: URL, optimizers: [String: Optimizer], best: Module, settings: Settings) throws -> (Int, [Epoch], Double, Int) {
        let meta = try TrainingCheckpoint.restore(url, architecture: architecture, resumeKey: resumeKey(settings),
                                                  networks: ["model": model, "best": best], optimizers: optimizers)
        guard let epoch = meta["epoch"].flatMap(Int.init), let bestVal = meta["best_val"].flatMap(Double.init),
              let since = meta["since_best"].flatMap(Int.init) else { throw PluginError.io("checkpoint \(url.path): incomplete metadata") }
        let h = (try? JSONParser.parse(meta["history"] ?? "[]"))?.arrayValue ?? []
        return (epoch, h.compactMap { e in e[0]?.doubleValue.map { Epoch(train: $0, val: e[1]?.doubleValue) } }, bestVal, since)
    }
}
