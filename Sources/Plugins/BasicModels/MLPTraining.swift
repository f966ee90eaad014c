import Foundation
import QuacPluginKit

/// Training of the MLP classifier: minibatch SGD with momentum on the mean cross-entropy, seeded
/// shuffling per epoch, a checkpoint after every epoch (weights, momentum, epoch), exact resume.
extension MLPClassifier: TrainablePlugin {
    struct Settings {
        var epochs: Int, learningRate: Float, momentum: Float, batchSize: Int
        init(_ p: Parameters) throws {
            epochs = try p.int("epochs")
            learningRate = try p.float("learning_rate")
            momentum = try p.float("momentum")
            batchSize = try p.int("batch_size")
        }
    }

    func train(_ train: TrainingData, val: TrainingData?, checkpoints: URL, seed: UInt64) throws -> Outputs {
        let s = try Settings(parameters)
        guard train.count > 0 else { throw PluginError.invalid("the training set is empty") }
        guard s.epochs >= 1, s.batchSize >= 1, s.learningRate > 0 else { throw PluginError.invalid("epochs, batch_size and learning_rate must be positive") }
        var velocity = [[Float](repeating: 0, count: w1.count), [Float](repeating: 0, count: b1.count),
                        [Float](repeating: 0, count: w2.count), [Float](repeating: 0, count: b2.count)]
        var history: [(loss: Double, valAccuracy: Double?)] = []
        let checkpoint = checkpoints.appendingPathComponent("last.safetensors")
        var first = 0
        if FileManager.default.fileExists(atPath: checkpoint.path) {
            (first, velocity, history) = try restore(checkpoint)
            host.log("resuming from epoch \(first) (\(checkpoint.path))")
        }
        for epoch in first..<s.epochs {
            try host.checkCancelled()
            var rng = SeededRandom(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
            var order = Array(0..<train.count)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            var total = 0.0
            for start in stride(from: 0, to: order.count, by: s.batchSize) {
                let idx = Array(order[start..<min(start + s.batchSize, order.count)])
                let x = try train.get("x", idx), y = try train.get("label", idx)
                let (loss, grads) = try lossAndGradients(x, y.int64Array())
                total += loss * Double(idx.count)
                step(grads, &velocity, s)
            }
            let valAccuracy = try val.map { try accuracy($0) }
            history.append((total / Double(train.count), valAccuracy))
            try save(checkpoint: checkpoint, epoch: epoch + 1, velocity: velocity, history: history)
            host.progress(epoch + 1, of: s.epochs, "epochs")
        }
        let json: JSONValue = [
            "train_loss": .array(history.map { .double($0.loss) }),
            "val_accuracy": .array(history.map { $0.valAccuracy.map(JSONValue.double) ?? .null }),
            "train_accuracy": .double(try accuracy(train)),
        ]
        return Outputs([], json: json)
    }

    /// Mean cross-entropy of a batch and its gradients (w1, b1, w2, b2).
    func lossAndGradients(_ x: Tensor, _ labels: [Int64]) throws -> (Double, [[Float]]) {
        let n = labels.count, k = spec.numClasses, width = hidden > 0 ? hidden : inputSize
        var g = [[Float](repeating: 0, count: w1.count), [Float](repeating: 0, count: b1.count),
                 [Float](repeating: 0, count: w2.count), [Float](repeating: 0, count: b2.count)]
        let xs = x.floats
        var loss = 0.0
        for s in 0..<n {
            let y = Int(labels[s])
            guard y >= 0, y < k else { throw PluginError.invalid("label \(y) outside [0, \(k))") }
            let input = Array(xs[(s * inputSize)..<((s + 1) * inputSize)])
            let z: [Float] = hidden > 0 ? (0..<hidden).map { j in
                var v = b1[j]; for i in 0..<inputSize { v += w1[j * inputSize + i] * input[i] }; return v
            } : input
            let h = hidden > 0 ? z.map { max($0, 0) } : input
            let logits = (0..<k).map { c -> Float in var v = b2[c]; for j in 0..<width { v += w2[c * width + j] * h[j] }; return v }
            let m = logits.max()!
            let e = logits.map { Foundation.exp(Double($0 - m)) }
            let sum = e.reduce(0, +)
            loss += -(Double(logits[y] - m) - Foundation.log(sum))
            let dl = (0..<k).map { Float(e[$0] / sum) - ($0 == y ? 1 : 0) }
            var dh = [Float](repeating: 0, count: width)
            for c in 0..<k {
                g[3][c] += dl[c]
                for j in 0..<width { g[2][c * width + j] += dl[c] * h[j]; dh[j] += dl[c] * w2[c * width + j] }
            }
            if hidden > 0 {
                for j in 0..<hidden where z[j] > 0 {
                    g[1][j] += dh[j]
                    for i in 0..<inputSize { g[0][j * inputSize + i] += dh[j] * input[i] }
                }
            }
        }
        let scale = 1 / Float(n)
        return (loss / Double(n), g.map { $0.map { $0 * scale } })
    }

    private func step(_ g: [[Float]], _ v: inout [[Float]], _ s: Settings) {
        func update(_ w: inout [Float], _ gi: [Float], _ vi: inout [Float]) {
            for i in w.indices { vi[i] = s.momentum * vi[i] + gi[i]; w[i] -= s.learningRate * vi[i] }
        }
        update(&w1, g[0], &v[0]); update(&b1, g[1], &v[1]); update(&w2, g[2], &v[2]); update(&b2, g[3], &v[3])
    }

    func accuracy(_ data: TrainingData) throws -> Double {
        var correct = 0
        for start in stride(from: 0, to: data.count, by: 256) {
            let idx = Array(start..<min(start + 256, data.count))
            let logits = try forward(try data.get("x", idx)), y = try data.get("label", idx).int64Array()
            let l = logits.floatArray(), k = spec.numClasses
            for s in 0..<idx.count {
                let row = l[(s * k)..<(s * k + k)]
                if row.indices.max(by: { row[$0] < row[$1] })! - s * k == Int(y[s]) { correct += 1 }
            }
        }
        return Double(correct) / Double(max(data.count, 1))
    }

    private func weightTensors() -> [(String, Tensor)] {
        let width = hidden > 0 ? hidden : inputSize
        var t: [(String, Tensor)] = []
        if hidden > 0 { t += [("fc1.weight", Tensor(w1, shape: [hidden, inputSize])), ("fc1.bias", Tensor(b1, shape: [hidden]))] }
        return t + [("fc2.weight", Tensor(w2, shape: [spec.numClasses, width])), ("fc2.bias", Tensor(b2, shape: [spec.numClasses]))]
    }

    func save(to url: URL) throws {
        let arch: JSONValue = ["kind": "mlp", "hidden": .int(Int64(hidden)), "num_classes": .int(Int64(spec.numClasses)),
                               "input_shape": .array(spec.sampleShape.map { .int(Int64($0)) })]
        do { try Safetensors.write(weightTensors(), metadata: ["architecture": arch.serialized()], to: url) } catch {
            throw PluginError.io("save: \(error)")
        }
    }

    func load(from url: URL) throws {
        (w1, b1, w2, b2) = try MLPClassifier.loadWeights(url, hidden: hidden, inputSize: inputSize, classes: spec.numClasses)
    }

    private func save(checkpoint: URL, epoch: Int, velocity: [[Float]], history: [(loss: Double, valAccuracy: Double?)]) throws {
        let v = zip(weightTensors(), velocity.filter { !$0.isEmpty }).map { ("velocity." + $0.0, Tensor($1, shape: $0.1.shape)) }
        let h: JSONValue = .array(history.map { [.double($0.loss), $0.valAccuracy.map(JSONValue.double) ?? .null] })
        do {
            try Safetensors.write(weightTensors() + v, metadata: ["epoch": String(epoch), "history": h.serialized()], to: checkpoint)
        } catch { throw PluginError.io("checkpoint: \(error)") }
    }

    private func restore(_ checkpoint: URL) throws -> (Int, [[Float]], [(loss: Double, valAccuracy: Double?)]) {
        let file: SafetensorsFile
        do { file = try Safetensors.read(checkpoint) } catch { throw PluginError.io("checkpoint: \(error)") }
        guard let epoch = file.metadata["epoch"].flatMap(Int.init) else { throw PluginError.io("\(checkpoint.path): no epoch in the metadata") }
        try load(from: checkpoint)
        let names = weightTensors().map(\.0)
        var velocity = [[Float]](repeating: [], count: 4)
        let slots = hidden > 0 ? [0, 1, 2, 3] : [2, 3]
        for (slot, name) in zip(slots, names) {
            guard let t = file.tensors["velocity." + name] else { throw PluginError.io("\(checkpoint.path): no velocity.\(name)") }
            velocity[slot] = t.floatArray()
        }
        let h = (try? JSONParser.parse(file.metadata["history"] ?? "[]"))?.arrayValue ?? []
        return (epoch, velocity, h.map { ($0[0]?.doubleValue ?? .nan, $0[1]?.doubleValue) })
    }
}
