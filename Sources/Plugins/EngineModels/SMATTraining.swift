import Engine
import Foundation
import MetaLearning
import QuacPluginKit

/// Meta-training of the SMAT-style explainer. Per training batch: one real student step on
/// CE(S(x), argmax T(x)) + beta * KL(E_phi(x) || E_psi(x)); then the meta step: the same loss on the
/// same batch gives one simulated SGD update theta' (with the student's momentum state), the student's
/// CE against the teacher on a validation batch after theta' is the outer loss, and its gradient with
/// respect to phi (through the update: second order) moves phi by AdamW with gradient-norm clipping.
/// The first half of the validation split gives the outer loss's batches; the second half is held out
/// for the simulability study. A checkpoint after every epoch; an exact resume.
extension SMATExplainer: TrainablePlugin {
    struct Settings {
        var studentChannels: [Int], beta: Float, studentLR: Float, momentum: Float
        var metaLR: Float, metaWeightDecay: Float, clip: Float, epochs: Int, batchSize: Int
        var budgets: [Int], studySeeds: Int, studyEpochs: Int, resetSteps: Int

        init(_ p: Parameters) throws {
            studentChannels = try p.ints("student_channels")
            beta = try p.float("beta")
            studentLR = try p.float("student_learning_rate")
            momentum = try p.float("student_momentum")
            metaLR = try p.float("meta_learning_rate")
            metaWeightDecay = try p.float("meta_weight_decay")
            clip = try p.float("meta_clip")
            epochs = try p.int("epochs")
            batchSize = try p.int("batch_size")
            budgets = try p.ints("budgets").sorted()   // ascending: the first is the smallest
            studySeeds = try p.int("simulation_seeds")
            studyEpochs = try p.int("simulation_epochs")
            resetSteps = try p.int("student_reset_steps")
            guard (1...6).contains(studentChannels.count), studentChannels.allSatisfy({ $0 >= 1 }) else {
                throw PluginError.invalid("student_channels must list 1 to 6 positive widths")
            }
            guard beta >= 0, beta.isFinite, studentLR > 0, studentLR.isFinite, momentum >= 0, momentum < 1,
                  metaLR > 0, metaLR.isFinite, metaWeightDecay >= 0, clip > 0 else {
                throw PluginError.invalid("training needs beta >= 0, student_learning_rate > 0, 0 <= student_momentum < 1, meta_learning_rate > 0, meta_weight_decay >= 0 and meta_clip > 0")
            }
            guard resetSteps >= 0 else { throw PluginError.invalid("student_reset_steps must be 0 (never) or positive") }
            guard epochs >= 1, batchSize >= 1, studySeeds >= 0, studyEpochs >= 1, budgets.allSatisfy({ $0 >= 1 }) else {
                throw PluginError.invalid("training needs epochs >= 1, batch_size >= 1, simulation_seeds >= 0, simulation_epochs >= 1 and positive budgets")
            }
        }

        var resumeKey: String {
            "student=\(studentChannels) beta=\(beta) lr=\(studentLR) momentum=\(momentum) meta_lr=\(metaLR) meta_wd=\(metaWeightDecay) clip=\(clip) batch=\(batchSize) reset=\(resetSteps)"
        }
    }

    /// A split in memory: inputs, the teacher's classes, and the standardized heads (nil for the held-out
    /// part, which has no explanations).
    struct Split {
        var x: NDArray
        var teacher: [Int]
        var heads: NDArray?
        var count: Int { teacher.count }

        func rows(_ idx: [Int]) -> (NDArray, Labels, NDArray?) {
            func gather(_ a: NDArray) -> NDArray {
                let per = a.count / max(a.shape[0], 1), src = a.contiguous()
                let out = NDArray.zeros([idx.count] + Array(a.shape.dropFirst()))
                for (j, i) in idx.enumerated() { (out.pointer + j * per).update(from: src.pointer + i * per, count: per) }
                return out
            }
            return (gather(x), Labels(idx.map { teacher[$0] }), heads.map(gather))
        }
    }

    /// The split's samples `idx` (all when nil) with heads when `withHeads`.
    func load(_ d: TrainingData, _ what: String, indices: [Int]? = nil, withHeads: Bool) throws -> Split {
        for f in ["x", "teacher"] + (withHeads ? mapHeads.map { "maps.\($0)" } : []) where !d.fields.contains(f) {
            let hint = f == "teacher" ? "set \"teacher\": true in the train block" : "the pipeline computes it when \"heads\" names the attributor \(f.dropFirst(5))"
            throw PluginError.invalid("the \(what) data has no \"\(f)\" field (\(hint))")
        }
        let idx = indices ?? Array(0..<d.count)
        let x = try d.get("x", idx)
        guard Array(x.shape.dropFirst()) == sampleShape else { throw PluginError.invalid("\(what) data: x is \(x.shape.dropFirst()), input_shape is \(sampleShape)") }
        let teacher = try d.get("teacher", idx).int64Array().map { Int($0) }
        var heads: NDArray?
        if withHeads {
            var maps: [String: Tensor] = [:]
            for name in mapHeads { maps[name] = try d.get("maps.\(name)", idx) }
            heads = try self.heads(x: x) { maps[$0]! }
        }
        return Split(x: NDArray(x).copy(), teacher: teacher, heads: heads)
    }

    /// The teacher's log explanations with the current phi (no graph).
    func teacherLogExplanation(_ heads: NDArray) -> NDArray {
        noGrad { SMATMath.logExplanation(SMATMath.mix(Var(heads), phi.sparsemax())) }.data
    }

    struct Epoch { var inner: Double, outer: Double, valSimulability: Double, weights: [Float] }

    func train(_ train: TrainingData, val: TrainingData?, checkpoints: URL, seed: UInt64) throws -> Outputs {
        let s = try Settings(parameters)
        guard train.count > 0 else { throw PluginError.invalid("the training set is empty") }
        guard let val, val.count >= 2 else {
            throw PluginError.invalid("SMAT training needs a validation split (\"val\" in the train block) of at least 2 samples: its first half drives the meta step, its second half is held out for the simulability study")
        }
        guard sampleShape[1] == sampleShape[2], sampleShape[1] % (1 << (s.studentChannels.count - 1)) == 0 else {
            throw PluginError.invalid("input_shape \(sampleShape): the student needs square images whose side is a multiple of \(1 << (s.studentChannels.count - 1)) (one halving per further student width)")
        }
        let classes = train.numClasses
        let pool = try load(train, "training", withHeads: true)
        let half = (val.count + 1) / 2
        let metaVal = try load(val, "validation", indices: Array(0..<half), withHeads: false)
        let heldOut = try load(val, "validation", indices: Array(half..<val.count), withHeads: false)

        func newStudent(_ generation: Int) throws -> SMATStudent {
            try SMATStudent(inputShape: sampleShape, channels: s.studentChannels, classes: classes, seed: seed &+ UInt64(generation),
                            learningRate: s.studentLR, momentum: s.momentum)
        }
        var student = try newStudent(0)
        let metaOptimizer = Adam.adamW([phi], lr: s.metaLR, weightDecay: s.metaWeightDecay)
        var history: [Epoch] = [], first = 0
        let checkpoint = checkpoints.appendingPathComponent("last.safetensors")
        if FileManager.default.fileExists(atPath: checkpoint.path) {
            (first, history) = try restore(checkpoint, student: student, optimizer: metaOptimizer, settings: s)
            host.log("resuming from epoch \(first) (\(checkpoint.path))")
        }
        let batches = stride(from: 0, to: pool.count, by: s.batchSize).map { $0..<min($0 + s.batchSize, pool.count) }
        let valBatch = min(s.batchSize, metaVal.count)
        for epoch in first..<s.epochs {
            var rng = SeededRandom(seed: seed &+ (UInt64(epoch) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
            var order = Array(0..<pool.count), valOrder = Array(0..<metaVal.count)
            rng.shuffle(&order)
            rng.shuffle(&valOrder)
            var inner = 0.0, outer = 0.0
            for (b, range) in batches.enumerated() {
                try host.checkCancelled()
                // A fresh student every student_reset_steps steps keeps the meta step where explanations
                // matter most: early in a student's training, as in the study's small budgets.
                let step = epoch * batches.count + b
                if s.resetSteps > 0, step > 0, step % s.resetSteps == 0 { student = try newStudent(step / s.resetSteps) }
                let (x, y, heads) = pool.rows(Array(order[range]))
                inner += Double(student.step(x, y, teacher: teacherLogExplanation(heads!), beta: s.beta)) * Double(range.count)
                let v = (0..<valBatch).map { valOrder[(b * valBatch + $0) % metaVal.count] }
                let (xv, yv, _) = metaVal.rows(v)
                let (loss, grad) = SMATMeta.metaGradient(student: student, phi: phi, heads: heads!, x: x, y: y, xVal: xv, yVal: yv, beta: s.beta)
                guard loss.isFinite, (0..<grad.count).allSatisfy({ grad.pointer[$0].isFinite }) else {
                    throw PluginError.invalid("the meta step's loss became \(loss) in epoch \(epoch + 1); lower student_learning_rate or meta_learning_rate")
                }
                SMATMeta.metaUpdate(metaOptimizer, phi: phi, grad: grad, clip: s.clip)
                outer += Double(loss) * Double(range.count)
                host.progress(epoch * batches.count + b + 1, of: s.epochs * batches.count, "epoch \(epoch + 1)/\(s.epochs)")
            }
            history.append(Epoch(inner: inner / Double(pool.count), outer: outer / Double(pool.count),
                                 valSimulability: student.accuracy(metaVal.x, metaVal.teacher), weights: headWeights.map(\.1)))
            try saveCheckpoint(checkpoint, epoch: epoch + 1, student: student, optimizer: metaOptimizer, settings: s, history: history)
            host.log(String(format: "epoch %d: inner loss %.4f, outer loss %.4f, student simulability %.3f; weights ", epoch + 1,
                            history.last!.inner, history.last!.outer, history.last!.valSimulability)
                     + headWeights.map { String(format: "%@ %.3f", $0.0, $0.1) }.joined(separator: ", "))
        }
        study = try SMATSimulability(explainer: self, settings: s, pool: pool, heldOut: heldOut, classes: classes).run()
        return Outputs([], json: [
            "heads": .array(headWeights.map { ["name": .string($0.0), "weight": .double(Double($0.1))] }),
            "inner_loss": .array(history.map { .double($0.inner) }),
            "outer_loss": .array(history.map { .double($0.outer) }),
            "val_simulability": .array(history.map { .double($0.valSimulability) }),
            "weights_per_epoch": .array(history.map { .array($0.weights.map { .double(Double($0)) }) }),
            "resumed_from_epoch": .int(Int64(first)),
            "simulability": study ?? .null,
        ])
    }

    // MARK: Model files and checkpoints

    /// What a model file must agree on to be loaded: the heads.
    var headsKey: String { JSONValue.array(headNames.map { .string($0) }).serialized() }

    func save(to url: URL) throws {
        var meta = ["plugin": Self.description.id, "heads": headsKey]
        if let study { meta["simulability"] = study.serialized() }
        do { try Safetensors.write([("phi", phi.data.copy().tensor)], metadata: meta, to: url) } catch {
            throw PluginError.io("save \(url.path): \(error)")
        }
    }

    func load(from url: URL) throws {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("weights \(url.path): \(error)") }
        guard file.metadata["heads"] == headsKey else {
            throw PluginError.invalid("weights \(url.path): learned over the heads \(file.metadata["heads"] ?? "?"), these parameters give \(headsKey)")
        }
        guard let p = file.tensors["phi"], p.dtype == .float32, p.shape == phi.shape, p.isFinite else {
            throw PluginError.io("weights \(url.path): no finite float32 \"phi\" of shape \(phi.shape)")
        }
        phi.setData(NDArray(p).copy())
        study = file.metadata["simulability"].flatMap { try? JSONParser.parse($0) }
    }

    private func saveCheckpoint(_ url: URL, epoch: Int, student: SMATStudent, optimizer: Adam, settings: Settings, history: [Epoch]) throws {
        var tensors = student.state().map { ("student/\($0.0)", $0.1.tensor) } + [("phi", phi.data.copy().tensor)]
        tensors += optimizer.stateArrays().map { ("meta/\($0.0)", $0.1.copy().tensor) }
        let h: JSONValue = .array(history.map { e in
            ["inner": .double(e.inner), "outer": .double(e.outer), "val": .double(e.valSimulability), "weights": .array(e.weights.map { .double(Double($0)) })]
        })
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Safetensors.write(tensors, metadata: ["epoch": String(epoch), "meta_steps": String(optimizer.stepCount), "history": h.serialized(),
                                                      "training": settings.resumeKey, "heads": headsKey], to: url)
        } catch { throw PluginError.io("checkpoint \(url.path): \(error)") }
    }

    private func restore(_ url: URL, student: SMATStudent, optimizer: Adam, settings: Settings) throws -> (Int, [Epoch]) {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("checkpoint \(url.path): \(error)") }
        guard file.metadata["training"] == settings.resumeKey, file.metadata["heads"] == headsKey else {
            throw PluginError.invalid("checkpoint \(url.path) was written with other training settings or heads; remove it to train from scratch")
        }
        let arrays = ModelFile.floatArrays(file)
        var studentState: [String: NDArray] = [:], meta: [String: NDArray] = [:]
        for (k, v) in arrays {
            if k.hasPrefix("student/") { studentState[String(k.dropFirst(8))] = v }
            if k.hasPrefix("meta/") { meta[String(k.dropFirst(5))] = v }
        }
        guard let p = arrays["phi"], p.shape == phi.shape, let epoch = file.metadata["epoch"].flatMap(Int.init),
              let steps = file.metadata["meta_steps"].flatMap(Int.init) else { throw PluginError.io("checkpoint \(url.path): incomplete") }
        do {
            try student.load(studentState)
            try optimizer.loadState(arrays: meta, stepCount: steps)
        } catch { throw PluginError.io("checkpoint \(url.path): \(error)") }
        phi.setData(p.copy())
        let h = (try? JSONParser.parse(file.metadata["history"] ?? "[]"))?.arrayValue ?? []
        let history = h.map { e in
            Epoch(inner: e["inner"]?.doubleValue ?? .nan, outer: e["outer"]?.doubleValue ?? .nan, valSimulability: e["val"]?.doubleValue ?? .nan,
                  weights: (e["weights"]?.arrayValue ?? []).compactMap { $0.doubleValue.map(Float.init) })
        }
        return (epoch, history)
    }
}
