import Engine
import Foundation
import LogicNetworks
import QuacPluginKit

/// Training of the logic explainer: BCE-with-logits against the one-hot classes plus lambda times the
/// entropy of the entropy layer's attention, AdamW at a constant learning rate or annealed from it to 0
/// along a cosine over the epochs, full batch (or minibatches in an order drawn from (seed, epoch)); a
/// checkpoint every tenth of the epochs and an exact resume; then the rules
/// (RuleExtraction) from the training split, pruned and chosen on the validation split (the training
/// split when there is none). With `networks` > 1 each network trains like this on its own, side by
/// side, and the rules come from their mean logits and mean attention (LogicEnsemble).
extension LogicExplainer: TrainablePlugin {
    struct Settings {
        var epochs: Int, batchSize: Int, learningRate: Float, weightDecay: Float, lambda: Float
        /// "constant" or "cosine".
        var schedule: String
        init(_ p: Parameters) throws {
            epochs = try p.int("epochs")
            schedule = try p.string("lr_schedule")
            guard ["constant", "cosine"].contains(schedule) else {
                throw PluginError.invalid("lr_schedule must be \"constant\" or \"cosine\", not \"\(schedule)\"")
            }
            batchSize = try p.int("batch_size")
            learningRate = try p.float("learning_rate")
            weightDecay = try p.float("weight_decay")
            lambda = try p.float("entropy_weight")
            guard epochs >= 1, batchSize >= 0, learningRate > 0, learningRate.isFinite, weightDecay >= 0, lambda >= 0 else {
                throw PluginError.invalid("training needs epochs >= 1, batch_size >= 0 (0: the whole set), learning_rate > 0, weight_decay >= 0 and entropy_weight >= 0")
            }
        }
        var resumeKey: String {
            // A cosine's rates depend on the number of epochs: only a run of the same length resumes.
            "adamw lr=\(learningRate) wd=\(weightDecay) batch=\(batchSize) lambda=\(lambda)"
                + (schedule == "constant" ? "" : " schedule=\(schedule) epochs=\(epochs)")
        }

        /// The learning rate of an epoch (the same for each of its steps, so a resume continues it).
        var rates: LRSchedule {
            schedule == "cosine" ? .cosine(lr: learningRate, totalSteps: epochs, minLR: 0) : .constant(learningRate)
        }
    }

    /// Concepts and classes of a split; the classes are the classifier's predictions ("teacher") when
    /// the data has them, else the labels.
    func split(_ d: TrainingData, _ what: String) throws -> (concepts: Tensor, classes: [Int], target: String) {
        guard d.count > 0 else { throw PluginError.invalid("the \(what) set is empty") }
        guard d.fields.contains("concepts") else {
            throw PluginError.invalid("the \(what) data has no concepts: give its split \"concepts\" (or the pipeline a concept_model)")
        }
        let all = Array(0..<d.count)
        let c = try d.get("concepts", all)
        guard c.rank == 2, c.shape[1] >= 1 else { throw PluginError.invalid("\(what) concepts: expected [N, k], got \(c.shape)") }
        let target = d.fields.contains("teacher") ? "teacher" : "label"
        return (c, try d.get(target, all).int64Array().map { Int($0) }, target)
    }

    func train(_ trainData: TrainingData, val valData: TrainingData?, checkpoints: URL, seed: UInt64) throws -> Outputs {
        let s = try Settings(parameters)
        let train = try split(trainData, "training")
        let val = try valData.map { try split($0, "validation") }
        let k = train.concepts.shape[1], r = max(trainData.numClasses, 2)
        if let v = val, v.concepts.shape[1] != k { throw PluginError.invalid("validation concepts have \(v.concepts.shape[1]) columns, training concepts \(k)") }
        for (what, split) in [("training", train), ("validation", val)] {
            guard let split, let bad = split.classes.first(where: { $0 < 0 || $0 >= r }) else { continue }
            throw PluginError.invalid("the \(what) data's \"\(split.target)\" has class \(bad), outside [0, \(r))")
        }
        let names = host.conceptNames().flatMap { $0.count == k ? $0 : nil } ?? (0..<k).map { "c\($0)" }
        let network = ensemble(concepts: k, classes: r, seed: seed)
        let arch = architecture(concepts: k, classes: r)
        // Each network learns on its own (its own loss and optimizer); they meet only in the mean.
        let optimizers = network.networks.map { Adam.adamW($0.parameters, lr: s.learningRate, weightDecay: s.weightDecay) }
        // Checkpoint names: one network's are what they have always been ("network", "optimizer").
        let slots = network.networks.indices.map(LogicEnsemble.name(of:))
        let checkpointNetworks = Dictionary(uniqueKeysWithValues: zip(slots, network.networks.map { $0 as Module }))
        let checkpointOptimizers = Dictionary(uniqueKeysWithValues: zip(slots.map { $0.replacingOccurrences(of: "network", with: "optimizer") },
                                                                         optimizers.map { $0 as Optimizer }))
        let x = NDArray(train.concepts).copy()
        var first = 0, losses: [Double] = []
        let checkpoint = checkpoints.appendingPathComponent("last.safetensors")
        if FileManager.default.fileExists(atPath: checkpoint.path) {
            let meta = try TrainingCheckpoint.restore(checkpoint, architecture: arch, resumeKey: s.resumeKey, networks: checkpointNetworks, optimizers: checkpointOptimizers)
            first = meta["epoch"].flatMap(Int.init) ?? 0
            losses = ((try? JSONParser.parse(meta["losses"] ?? "[]"))?.arrayValue ?? []).compactMap(\.doubleValue)
            host.log("resuming from epoch \(first) (\(checkpoint.path))")
        }
        let n = train.classes.count, every = max(1, s.epochs / 10)
        let start = Date()
        for epoch in first..<s.epochs {
            try host.checkCancelled()
            for optimizer in optimizers { s.rates.apply(to: optimizer, step: epoch) }
            var order = Array(0..<n)
            if s.batchSize > 0 {
                var rng = SeededRandom(seed: seed &+ (UInt64(epoch) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
                rng.shuffle(&order)
            }
            let size = s.batchSize > 0 ? s.batchSize : n
            var total = 0.0
            for b in stride(from: 0, to: n, by: size) {
                let idx = Array(order[b..<min(b + size, n)])
                let xb = s.batchSize == 0 ? x : gather(x, idx)
                let (input, labels) = (Var(xb), idx.map { train.classes[$0] })
                for (net, optimizer) in zip(network.networks, optimizers) {
                    let loss = net.loss(input, labels: labels, lambda: s.lambda)
                    guard loss.item.isFinite else { throw PluginError.invalid("the training loss became \(loss.item) in epoch \(epoch + 1); lower the learning rate") }
                    optimizer.zeroGrad()
                    loss.backward()
                    optimizer.step()
                    total += Double(loss.item) * Double(idx.count) / Double(network.networks.count)
                }
            }
            losses.append(total / Double(n))
            host.progress(epoch + 1, of: s.epochs, "epoch \(epoch + 1)/\(s.epochs)")
            if (epoch + 1) % every == 0 || epoch + 1 == s.epochs {
                try TrainingCheckpoint.save(checkpoint, architecture: arch, resumeKey: s.resumeKey, networks: checkpointNetworks,
                                            optimizers: checkpointOptimizers,
                                            metadata: ["epoch": String(epoch + 1), "losses": JSONValue.array(losses.map { .double($0) }).serialized()])
            }
        }
        let trainingSeconds = Date().timeIntervalSince(start)

        // Rules.
        let extraction = Date()
        let trainTable = TruthTable(values: train.concepts.floatArray(), concepts: k)
        let (valTable, valClasses) = val.map { (TruthTable(values: $0.concepts.floatArray(), concepts: k), $0.classes) } ?? (trainTable, train.classes)
        let logits = noGrad { network(Var(x)) }.array
        let attention = network.attention()
        let mask = network.mask()
        let results = (0..<r).map { i in
            RuleExtraction.extract(class: i, classes: r, mask: mask[i], attention: Array(attention[(i * k)..<((i + 1) * k)]),
                                   train: trainTable, trainLabels: train.classes, logits: logits, val: valTable, valLabels: valClasses)
        }
        let extractionSeconds = Date().timeIntervalSince(extraction)
        trained = Trained(network: network, rules: results.map(\.rule), names: names, architecture: arch)

        // Model and rule quality on the validation split.
        let valLogits = val.map { v in noGrad { network(Var(NDArray(v.concepts).copy())) }.array } ?? logits
        func argmax(_ l: [Float], _ s: Int) -> Int { (0..<r).max { l[s * r + $0] < l[s * r + $1] }! }
        let valPredicted = (0..<valTable.count).map { argmax(valLogits, $0) }
        let modelAccuracy = Double(zip(valPredicted, valClasses).filter { $0 == $1 }.count) / Double(max(valTable.count, 1))
        return Outputs([], json: [
            "target": .string(train.target), "concepts": .array(names.map { .string($0) }), "classes": .int(Int64(r)),
            "loss": .array(losses.enumerated().filter { $0.offset % every == every - 1 || $0.offset == losses.count - 1 }.map { .double($0.element) }),
            "val_model_accuracy": .double(modelAccuracy),
            "rules": .array(results.enumerated().map { i, res in
                ["class": .int(Int64(i)), "rule": .string(res.rule.text(names)), "complexity": .int(Int64(res.rule.complexity)),
                 "val_accuracy": .double(res.validationAccuracy),
                 "val_fidelity": .double(res.rule.accuracy(valTable, classes: valPredicted, of: i)),
                 "minterms_before_pruning": .int(Int64(res.minterms)),
                 "mask": .array((0..<k).filter { mask[i][$0] }.map { .string(names[$0]) })]
            }),
            "training_seconds": .double(trainingSeconds), "extraction_seconds": .double(extractionSeconds),
            "resumed_from_epoch": .int(Int64(first)),
        ])
    }

    private func gather(_ x: NDArray, _ idx: [Int]) -> NDArray {
        let k = x.shape[1], out = NDArray.zeros([idx.count, k]), src = x.contiguous()
        for (j, i) in idx.enumerated() { (out.pointer + j * k).update(from: src.pointer + i * k, count: k) }
        return out
    }

    // MARK: Model files

    static func rulesJSON(_ rules: [Rule]) -> JSONValue {
        .array(rules.map { .array($0.minterms.map { .array($0.literals.map { [.int(Int64($0.concept)), .bool($0.positive)] }) }) })
    }

    func save(to url: URL) throws {
        guard let t = trained else { throw PluginError.invalid("nothing to save: the logic explainer is not trained") }
        do {
            try ModelFile.save(t.network, architecture: t.architecture, to: url, metadata: [
                "plugin": Self.description.id, "rules": Self.rulesJSON(t.rules).serialized(),
                "concept_names": JSONValue.array(t.names.map { .string($0) }).serialized(),
            ])
        } catch { throw PluginError.io("save \(url.path): \(error)") }
    }

    func load(from url: URL) throws {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("weights \(url.path): \(error)") }
        guard let text = file.metadata[ModelFile.architectureKey], var arch = try? JSONParser.parse(text),
              arch["type"]?.stringValue == "logic_network", let k = arch["concepts"]?.intValue, let r = arch["classes"]?.intValue else {
            throw PluginError.invalid("weights \(url.path): not a logic network's model file")
        }
        let count = Int(arch["networks"]?.intValue ?? 1)
        guard count == networks else {
            throw PluginError.invalid("weights \(url.path): holds \(count) network\(count == 1 ? "" : "s"), and the explainer is set for \(networks) (its networks parameter)")
        }
        // One network is written without the key; a file that says 1 anyway is the same.
        if count == 1, var o = arch.objectValue, o["networks"] != nil { o["networks"] = nil; arch = .object(o) }
        guard arch == architecture(concepts: Int(k), classes: Int(r)) else {
            throw PluginError.invalid("weights \(url.path): not a logic network of these parameters (check hidden and temperature)")
        }
        guard (1...100_000).contains(k), (2...10_000).contains(r) else {
            throw PluginError.io("weights \(url.path): architecture: \(k) concepts and \(r) classes (needs at least 1 concept and 2 classes)")
        }
        let network = ensemble(concepts: Int(k), classes: Int(r), seed: 0)
        do { try network.loadStateDict(ModelFile.floatArrays(file)) } catch { throw PluginError.io("weights \(url.path): \(error)") }
        guard let rulesText = file.metadata["rules"], let rulesJSON = (try? JSONParser.parse(rulesText))?.arrayValue, rulesJSON.count == Int(r) else {
            throw PluginError.io("weights \(url.path): no rules for \(r) classes in the metadata")
        }
        let rules = rulesJSON.map { rule in
            Rule((rule.arrayValue ?? []).map { m in
                Minterm((m.arrayValue ?? []).compactMap { l in l[0]?.intValue.map { Literal(Int($0), l[1]?.boolValue ?? true) } })
            })
        }
        guard rules.allSatisfy({ $0.minterms.allSatisfy { $0.literals.allSatisfy { $0.concept >= 0 && $0.concept < Int(k) } } }) else {
            throw PluginError.io("weights \(url.path): a rule names a concept outside [0, \(k))")
        }
        let names = file.metadata["concept_names"].flatMap { (try? JSONParser.parse($0))?.arrayValue?.compactMap(\.stringValue) } ?? (0..<Int(k)).map { "c\($0)" }
        trained = Trained(network: network, rules: rules, names: names.count == Int(k) ? names : (0..<Int(k)).map { "c\($0)" }, architecture: arch)
    }
}
