import Engine
import Foundation
import QuacPluginKit

/// Training of the CNN classifier: minibatches of the mean cross-entropy with Adam or SGD, seeded
/// shuffling and random flips per epoch, batch norm in training mode, validation accuracy per epoch,
/// and a checkpoint after every epoch (weights, batch-norm statistics, optimizer state, epoch, history)
/// from which a new instance resumes exactly: N epochs in one go give the same weights, bit for bit,
/// as N/2 and then N/2 more after a restart.
extension CNNClassifier: TrainablePlugin {
    struct Settings {
        var epochs: Int, batchSize: Int, optimizer: String, learningRate: Float, momentum: Float
        var weightDecay: Float, augmentFlips: Bool
        /// "labels": one class per sample, cross-entropy; "concepts": the data's concepts [N, classes]
        /// in [0, 1], binary cross-entropy per output (a concept model).
        var targets: String

        init(_ p: Parameters) throws {
            epochs = try p.int("epochs")
            batchSize = try p.int("batch_size")
            optimizer = try p.string("optimizer")
            guard optimizer == "adam" || optimizer == "sgd" else {
                throw PluginError.invalid("optimizer must be \"adam\" or \"sgd\", got \"\(optimizer)\"")
            }
            // The schema's rule for an absent learning rate: it depends on the optimizer.
            learningRate = Float(try p.optionalDouble("learning_rate") ?? (optimizer == "adam" ? 1e-3 : 1e-2))
            momentum = try p.float("momentum")
            weightDecay = try p.float("weight_decay")
            augmentFlips = try p.bool("augment_flips")
            targets = try p.string("targets")
            guard targets == "labels" || targets == "concepts" else { throw PluginError.invalid("targets must be \"labels\" or \"concepts\", got \"\(targets)\"") }
            guard epochs >= 1, batchSize >= 1, learningRate > 0, learningRate.isFinite, weightDecay >= 0, momentum >= 0, momentum < 1 else {
                throw PluginError.invalid("training needs epochs >= 1, batch_size >= 1, learning_rate > 0, weight_decay >= 0 and momentum in [0, 1)")
            }
        }

        /// What a checkpoint must agree with to be resumed.
        var resumeKey: String { "\(optimizer) lr=\(learningRate) momentum=\(momentum) wd=\(weightDecay) batch=\(batchSize) flips=\(augmentFlips) targets=\(targets)" }
    }

    struct EpochRecord {
        var loss: Double, trainAccuracy: Double, valAccuracy: Double?
        var json: JSONValue { [.double(loss), .double(trainAccuracy), valAccuracy.map(JSONValue.double) ?? .null] }
        init(loss: Double, trainAccuracy: Double, valAccuracy: Double?) {
            self.loss = loss; self.trainAccuracy = trainAccuracy; self.valAccuracy = valAccuracy
        }
        init?(_ v: JSONValue) {
            guard let l = v[0]?.doubleValue, let a = v[1]?.doubleValue else { return nil }
            (loss, trainAccuracy, valAccuracy) = (l, a, v[2]?.doubleValue)
        }
    }

    func makeOptimizer(_ s: Settings) -> Optimizer {
        s.optimizer == "adam"
            ? Adam(model.parameters, lr: s.learningRate, weightDecay: s.weightDecay)
            : SGD(model.parameters, lr: s.learningRate, momentum: s.momentum, weightDecay: s.weightDecay)
    }

    func train(_ train: TrainingData, val: TrainingData?, checkpoints: URL, seed: UInt64) throws -> Outputs {
        let s = try Settings(parameters)
        guard train.count >= 2 else { throw PluginError.invalid("the training set needs at least 2 samples (batch norm), it has \(train.count)") }
        try checkData(train, "training")
        if let val { try checkData(val, "validation") }
        let optimizer = makeOptimizer(s)
        var history: [EpochRecord] = []
        let checkpoint = checkpoints.appendingPathComponent("last.safetensors")
        var first = 0
        if FileManager.default.fileExists(atPath: checkpoint.path) {
            (first, history) = try restore(checkpoint, optimizer: optimizer, settings: s)
            host.log("resuming from epoch \(first) (\(checkpoint.path))")
        }
        let batches = CNNClassifier.batches(count: train.count, size: s.batchSize)
        let totalSteps = s.epochs * batches.count
        defer { model.eval() }
        for epoch in first..<s.epochs {
            // Everything random in an epoch comes from (seed, epoch): resuming at an epoch boundary
            // draws exactly what an uninterrupted run would.
            var rng = SeededRandom(seed: seed &+ (UInt64(epoch) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
            var order = Array(0..<train.count)
            rng.shuffle(&order)
            var totalLoss = 0.0, correct = 0.0
            model.train()
            for (b, range) in batches.enumerated() {
                try host.checkCancelled()
                let idx = Array(order[range])
                let x = NDArray(try train.get("x", idx)).copy()
                if s.augmentFlips { CNNClassifier.flip(x, &rng) }
                let logits = model(Var(x))
                let loss: Var
                if s.targets == "concepts" {
                    let t = try conceptTargets(train, idx)
                    loss = Loss.bceWithLogits(logits, Var(t))
                    correct += Self.agreement(logits.data, t)
                } else {
                    let labels = Labels(try train.get("label", idx))
                    for y in labels.values where y < 0 || y >= spec.numClasses {
                        throw PluginError.invalid("training label \(y) is outside [0, \(spec.numClasses))")
                    }
                    loss = Loss.crossEntropy(logits, labels)
                    correct += Double(zip(logits.data.argmax(), labels.values).filter { $0 == $1 }.count)
                }
                guard loss.item.isFinite else { throw PluginError.invalid("the training loss became \(loss.item) in epoch \(epoch + 1), step \(b + 1); lower the learning rate") }
                optimizer.zeroGrad()
                loss.backward(freeGraph: true)
                optimizer.step()
                totalLoss += Double(loss.item) * Double(idx.count)
                host.progress(epoch * batches.count + b + 1, of: totalSteps, "epoch \(epoch + 1)/\(s.epochs)")
            }
            model.eval()
            let valAccuracy = try val.map { try accuracy($0) }
            history.append(EpochRecord(loss: totalLoss / Double(train.count), trainAccuracy: correct / Double(train.count),
                                       valAccuracy: valAccuracy))
            try saveCheckpoint(checkpoint, epoch: epoch + 1, optimizer: optimizer, settings: s, history: history)
            let v = valAccuracy.map { String(format: ", validation accuracy %.3f", $0) } ?? ""
            host.log(String(format: "epoch %d/%d: loss %.4f, training accuracy %.3f", epoch + 1, s.epochs, history.last!.loss, history.last!.trainAccuracy) + v)
        }
        model.eval()
        let json: JSONValue = [
            "train_loss": .array(history.map { .double($0.loss) }),
            "val_accuracy": .array(history.map { $0.valAccuracy.map(JSONValue.double) ?? .null }),
            "train_accuracy_running": .array(history.map { .double($0.trainAccuracy) }),
            "train_accuracy": .double(try accuracy(train)),
            "epochs": .int(Int64(s.epochs)),
            "resumed_from_epoch": .int(Int64(first)),
        ]
        return Outputs([], json: json)
    }

    /// Minibatches over `count` shuffled positions; a last batch of one sample joins the one before
    /// (batch norm cannot normalize a single sample with 1x1 feature maps).
    static func batches(count: Int, size: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        while start < count {
            var end = min(start + size, count)
            if count - end == 1 { end = count }
            out.append(start..<end)
            start = end
        }
        return out
    }

    /// Random horizontal and vertical flips of each sample [C, H, W] in place (two draws per sample).
    static func flip(_ x: NDArray, _ rng: inout SeededRandom) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let p = x.pointer
        var row = [Float](repeating: 0, count: w)
        for s in 0..<n {
            let horizontal = rng.next() & 1 == 1, vertical = rng.next() & 1 == 1
            for ch in 0..<c {
                let plane = p + (s * c + ch) * h * w
                if horizontal {
                    for i in 0..<h {
                        let r = plane + i * w
                        for j in 0..<(w / 2) { let t = r[j]; r[j] = r[w - 1 - j]; r[w - 1 - j] = t }
                    }
                }
                if vertical {
                    for i in 0..<(h / 2) {
                        let a = plane + i * w, b = plane + (h - 1 - i) * w
                        row.withUnsafeMutableBufferPointer { t in
                            t.baseAddress!.update(from: a, count: w)
                            a.update(from: b, count: w)
                            b.update(from: t.baseAddress!, count: w)
                        }
                    }
                }
            }
        }
    }

    private func checkData(_ d: TrainingData, _ what: String) throws {
        guard d.count > 0 else { throw PluginError.invalid("the \(what) set is empty") }
        let x = try d.get("x", [0])
        guard x.dtype == .float32, Array(x.shape.dropFirst()) == spec.sampleShape else {
            throw PluginError.invalid("\(what) images are \(x.dtype.displayName) \(Array(x.shape.dropFirst())), the classifier expects float32 \(spec.sampleShape) (input_shape)")
        }
        guard spec.sampleShape.count == 3 else {
            throw PluginError.invalid("training needs images [C, H, W]; input_shape is \(spec.sampleShape)")
        }
    }

    /// The data's concepts of samples `idx` as targets [n, classes] in [0, 1].
    private func conceptTargets(_ d: TrainingData, _ idx: [Int]) throws -> NDArray {
        guard d.fields.contains("concepts") else {
            throw PluginError.invalid("targets \"concepts\" needs the training data's concepts: give its splits \"concepts\"")
        }
        let t = try d.get("concepts", idx)
        guard t.dtype == .float32, t.shape == [idx.count, spec.numClasses] else {
            throw PluginError.invalid("concepts are \(t.dtype.displayName) \(t.shape), expected float32 [N, \(spec.numClasses)] (num_classes outputs, one per concept)")
        }
        return NDArray(t).copy()
    }

    /// Outputs on the right side of 0.5 (logit 0) of their concept target, counted per sample as a
    /// fraction: the sample count it adds up to over a set is the mean per-concept accuracy times N.
    static func agreement(_ logits: NDArray, _ t: NDArray) -> Double {
        let l = logits.contiguous(), k = t.shape[1], n = t.shape[0]
        var right = 0
        for i in 0..<(n * k) where (l.pointer[i] > 0) == (t.pointer[i] > 0.5) { right += 1 }
        return Double(right) / Double(k)
    }

    /// Fraction of samples whose largest logit is their label, or with concept targets, the mean
    /// per-concept accuracy (evaluation mode).
    func accuracy(_ data: TrainingData) throws -> Double {
        let concepts = try Settings(parameters).targets == "concepts"
        var correct = 0.0
        for start in stride(from: 0, to: data.count, by: 64) {
            try host.checkCancelled()
            let idx = Array(start..<min(start + 64, data.count))
            let x = NDArray(try data.get("x", idx)).copy()
            let logits = noGrad { model(Var(x)) }
            if concepts {
                correct += Self.agreement(logits.data, try conceptTargets(data, idx))
                continue
            }
            let labels = Labels(try data.get("label", idx)).values
            correct += Double(zip(logits.data.argmax(), labels).filter { $0 == $1 }.count)
        }
        return correct / Double(max(data.count, 1))
    }

    // MARK: Model files and checkpoints

    func save(to url: URL) throws {
        do {
            try ModelFile.save(model, architecture: architecture, to: url, metadata: [
                "plugin": CNNClassifier.description.id,
                "input_shape": JSONValue.array(spec.sampleShape.map { .int(Int64($0)) }).serialized(),
                "num_classes": String(spec.numClasses),
            ])
        } catch { throw PluginError.io("save \(url.path): \(error)") }
    }

    func load(from url: URL) throws { try loadWeights(url) }

    private func saveCheckpoint(_ url: URL, epoch: Int, optimizer: Optimizer, settings: Settings, history: [EpochRecord]) throws {
        try TrainingCheckpoint.save(url, architecture: architecture, resumeKey: settings.resumeKey, networks: ["model": model],
                                    optimizers: ["optimizer": optimizer], metadata: [
            "epoch": String(epoch), "history": JSONValue.array(history.map(\.json)).serialized(),
        ])
    }

    private func restore(_ url: URL, optimizer: Optimizer, settings: Settings) throws -> (Int, [EpochRecord]) {
        let meta = try TrainingCheckpoint.restore(url, architecture: architecture, resumeKey: settings.resumeKey,
                                                  networks: ["model": model], optimizers: ["optimizer": optimizer])
        guard let epoch = meta["epoch"].flatMap(Int.init), epoch >= 0 else { throw PluginError.io("checkpoint \(url.path): no epoch in the metadata") }
        guard epoch <= settings.epochs else {
            throw PluginError.invalid("checkpoint \(url.path) is at epoch \(epoch), beyond the \(settings.epochs) epochs asked for")
        }
        let h = (try? JSONParser.parse(meta["history"] ?? "[]"))?.arrayValue ?? []
        return (epoch, h.compactMap(EpochRecord.init))
    }
}
