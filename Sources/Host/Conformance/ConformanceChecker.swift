import Foundation
import QuacPluginAPI

/// `quac-host plugins check`: a conformance validator in the spirit of clap-validator. It loads a
/// plugin, negotiates, creates and destroys it repeatedly, calls every function of its kind with valid
/// and invalid input, and checks outputs, determinism, batch invariance and leaks. One result per check.
public struct ConformanceChecker {
    public struct Result {
        public let name: String
        public let passed: Bool
        public let detail: String
        public init(name: String, passed: Bool, detail: String) { self.name = name; self.passed = passed; self.detail = detail }
    }

    let manifest: PluginManifest
    /// Parameters given on the command line (relative paths against the working folder); nil: the
    /// manifest's "check" parameters (relative paths against the manifest's folder), or none.
    let givenParameters: JSONValue?
    let registry: PluginRegistry
    /// The helper classifier: the one asked for, else the manifest's "check"."classifier", else the MLP.
    let classifierID: String
    let classifierParameters: JSONValue

    public static let defaultClassifier = "org.quac.mlp-classifier"

    public init(manifest: PluginManifest, parameters: JSONValue?, registry: PluginRegistry, classifierID: String?) {
        self.manifest = manifest
        self.givenParameters = parameters
        self.registry = registry
        if let classifierID {
            (self.classifierID, classifierParameters) = (classifierID, .object(JSONObject()))
        } else if let c = manifest.checkClassifier {
            (self.classifierID, classifierParameters) = (c.plugin, c.params)
        } else {
            (self.classifierID, classifierParameters) = (Self.defaultClassifier, .object(JSONObject()))
        }
    }

    /// The string a manifest's check parameters use for the file of the checker's own inputs.
    static let checkInputsPlaceholder = "${check_inputs}"

    /// The manifests a check target names: a plugin id, a manifest file, or a library (every plugin
    /// of the library that has a manifest on the search path or beside the library).
    public static func manifests(for target: String, registry: PluginRegistry) throws -> [PluginManifest] {
        let url = URL(fileURLWithPath: target)
        let allowWritable = PluginRegistry.allowWritableFromEnvironment
        if target.hasSuffix(".json") {
            let m = try PluginManifest.load(url)
            if !allowWritable, let problem = PluginRegistry.writableProblem([url] + [m.resolvedLibraryURL()].compactMap { $0 }) {
                throw QuacError("\(target): \(problem)")
            }
            return [m]
        }
        if target.hasSuffix(".so") || target.hasSuffix(".dylib") || target.contains(".so.") {
            if !allowWritable, let problem = PluginRegistry.writableProblem([url]) { throw QuacError("\(target): \(problem)") }
            let lib = try PluginLibrary.load(url)
            // Manifests usually sit beside the library, one level up (a build/ folder), or in the crate
            // that holds a Cargo target/ folder (target/release/, target/<triple>/debug/...).
            let folder = url.deletingLastPathComponent()
            let besides = PluginRegistry(searchPath: [folder, folder.deletingLastPathComponent()] + Self.cargoCrateFolders(of: url) + registry.searchPath)
            return try lib.descriptors.map { d in
                guard let m = besides.entries.compactMap(\.manifest).first(where: { $0.id == d.id }) else {
                    throw QuacError("\(target): plugin \(d.id) has no manifest beside the library, in its parent folder, in the crate above its Cargo target/ folder or on the search path")
                }
                return m
            }
        }
        return [try registry.manifest(id: target)]
    }

    /// The folder above each `target` folder on a library's path: where Cargo's manifest (and the
    /// plugin's) sits for a library Cargo built under target/.
    static func cargoCrateFolders(of library: URL) -> [URL] {
        var folders: [URL] = []
        var dir = library.deletingLastPathComponent()
        for _ in 0..<4 where dir.path != "/" {
            if dir.lastPathComponent == "target" { folders.append(dir.deletingLastPathComponent()) }
            dir = dir.deletingLastPathComponent()
        }
        return folders
    }

    public func run(onResult: (Result) -> Void = { _ in }) -> [Result] {
        var results: [Result] = []
        func record(_ name: String, _ passed: Bool, _ detail: String = "") {
            let r = Result(name: name, passed: passed, detail: detail)
            results.append(r)
            onResult(r)
        }
        /// A check whose body throws a failure reason; returns whether it passed.
        @discardableResult
        func check(_ name: String, _ body: () throws -> String) -> Bool {
            do { record(name, true, try body()); return true } catch {
                record(name, false, QuacError.wrap(error).message)
                return false
            }
        }

        let liveBefore = HostAllocator.liveCount
        // Loading and self-description.
        var library: PluginLibrary?
        guard check("library found", {
            guard let u = manifest.resolvedLibraryURL() else { throw QuacError("\(manifest.library) not found") }
            return u.path
        }) else { return results }
        guard check("load and negotiate ABI", {
            let lib = try PluginLibrary.load(manifest.resolvedLibraryURL()!)
            library = lib
            return "library ABI \(lib.abiMajor).\(lib.abiMinor), host \(QUAC_ABI_VERSION_MAJOR).\(QUAC_ABI_VERSION_MINOR)"
        }) else { return results }
        check("self-description matches manifest") {
            guard let d = library!.descriptor(id: manifest.descriptorID) else { throw QuacError("the library offers no plugin \(manifest.descriptorID)") }
            var problems: [String] = []
            if d.kind != manifest.kind { problems.append("kind \(d.kind?.rawValue ?? "\(d.rawKind)") vs manifest \(manifest.kind.rawValue)") }
            if "\(library!.abiMajor).\(library!.abiMinor)" != manifest.abiVersion { problems.append("ABI \(library!.abiMajor).\(library!.abiMinor) vs manifest \(manifest.abiVersion)") }
            // A bridged method has its own version; the bridge's is the descriptor's.
            if manifest.bridge == nil && d.version != manifest.version { problems.append("version \(d.version) vs manifest \(manifest.version)") }
            if d.name.isEmpty { problems.append("empty name") }
            guard problems.isEmpty else { throw QuacError(problems.joined(separator: "; ")) }
            return "\(d.id) \(d.version) \(d.kind!.rawValue)"
        }
        check("sha256 pin") {
            guard let pin = manifest.sha256 else { return "no pin in the manifest" }
            let actual = try SHA256.hex(fileAt: manifest.resolvedLibraryURL()!)
            guard actual == pin else { throw QuacError("library sha256 \(actual) differs from the pinned \(pin)") }
            return "matches"
        }
        var parameters = givenParameters ?? manifest.checkParameters ?? .object(JSONObject())
        let base = givenParameters != nil ? URL(fileURLWithPath: FileManager.default.currentDirectoryPath) : manifest.url.deletingLastPathComponent()
        var filled = parameters
        check("parameters validate against the schema") {
            let schema = try manifest.parameterSchema()
            let v = schema.validate(parameters)
            if let first = v.first { throw QuacError("\(first.pointer.isEmpty ? "/" : first.pointer): \(first.message)") }
            filled = schema.applyingDefaults(to: parameters)
            return parameters.serialized()
        }

        // The run's classifier for non-classifier kinds, sized like the plugin under test says its
        // data is (its input_shape, or image_size and input_channels, and num_classes), when it says.
        let context = RunContext()
        var helperClassifier: PluginInstance?
        var scratch: URL?
        defer { if let scratch { try? FileManager.default.removeItem(at: scratch) } }
        if manifest.kind != .classifier {
            guard check("helper classifier \(classifierID)", {
                let m = try registry.manifest(id: classifierID)
                helperClassifier = try PluginInstance(manifest: m, params: JSONMerge.overlay(classifierParameters, Self.helperParameters(m, sizedFor: filled)), run: context)
                context.classifier = helperClassifier
                return "\(try helperClassifier!.info().sampleShape)"
            }) else { return results }
            if parameters.serialized().contains(Self.checkInputsPlaceholder) {
                guard check("write the checker's inputs for \(Self.checkInputsPlaceholder)", {
                    let info = try helperClassifier!.info()
                    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quac-check-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
                    scratch = dir
                    let file = dir.appendingPathComponent("check-inputs.safetensors")
                    let b = Inputs.batch(4, sample: info.concreteSampleShape(), classes: info.numClasses, kind: manifest.kind)
                    try Safetensors.write([("images", b.x), ("counterfactuals", b.xCF!), ("targets", b.target!)], to: file)
                    parameters = Self.substitute(parameters, Self.checkInputsPlaceholder, with: file.path)
                    return file.path
                }) else { return results }
            }
        }
        parameters = PathParameters.resolve(parameters, schema: manifest.parameters, base: base)

        check("create and destroy 5 times") {
            for _ in 0..<5 { _ = try PluginInstance(manifest: manifest, params: parameters, run: context) }
            return "ok"
        }
        var instance: PluginInstance?
        guard check("create", {
            instance = try PluginInstance(manifest: manifest, params: parameters, run: context)
            return "ok"
        }) else { return results }
        let plugin = instance!
        check("kind table and unknown extension") {
            guard plugin.hasExtension(manifest.kind.tableID) else { throw QuacError("get_extension(\"\(manifest.kind.tableID)\") returned NULL") }
            guard !plugin.hasExtension("org.quac.check.no-such-extension/1") else { throw QuacError("an unknown extension id did not return NULL") }
            return manifest.kind.tableID
        }

        switch manifest.kind {
        case .classifier: checkClassifier(plugin, check)
        default: checkBatchKind(plugin, classifier: helperClassifier!, check)
        }

        instance = nil
        helperClassifier = nil
        context.classifier = nil
        check("no leaked host tensors") {
            let leaked = HostAllocator.liveCount - liveBefore
            guard leaked <= 0 else { throw QuacError("\(leaked) host-allocated tensors were never released") }
            return "0 outstanding"
        }
        return results
    }

    // MARK: Classifiers

    private func checkClassifier(_ c: PluginInstance, _ check: (String, () throws -> String) -> Bool) {
        var info: ClassifierInfo?
        guard check("get_info", {
            info = try c.info()
            return "\(info!.numClasses) classes, sample \(info!.sampleShape), vjp \(info!.hasVJP), modified backward \(info!.hasModifiedBackward), layers \(info!.hasLayers)"
        }) else { return }
        let i = info!
        let shape = [4] + i.concreteSampleShape()
        let x = Inputs.uniform(shape, seed: 1)
        _ = check("forward: shape, dtype, finite") {
            let l = try c.forward(x)
            guard l.isFinite else { throw QuacError("logits contain NaN or infinity") }
            return "\(l.shape)"
        }
        _ = check("forward: deterministic") {
            guard try c.forward(x).bitwiseEqual(try c.forward(x)) else { throw QuacError("two forward passes on the same input differ") }
            return "bitwise equal"
        }
        _ = check("forward: batch of 4 equals 4 batches of 1") {
            let whole = try c.forward(x)
            let singles = Tensor.concatenate(try (0..<4).map { try c.forward(x.rows($0..<$0 + 1)) })
            return try Inputs.close(whole, singles, what: "logits")
        }
        badInputs(i, check) { try c.rawForward($0) }
        if i.hasVJP {
            let g = Inputs.uniform([4, i.numClasses], seed: 2)
            _ = check("vjp: shape and agreement with finite differences") {
                let (logits, gx) = try c.vjp(x, gradLogits: g, wantLogits: true)
                guard let logits else { throw QuacError("vjp returned no logits though asked for them") }
                _ = try Inputs.close(logits, try c.forward(x), what: "vjp's logits vs forward's")
                // <g, f(x + eps v) - f(x - eps v)> / 2 eps  ==  <vjp(g), v>. A ReLU network is piecewise
                // linear: a step may cross a kink, so several step sizes are tried and the best counts.
                let v = Inputs.uniform(x.shape, seed: 3)
                var analytic = 0.0
                for k in 0..<x.count { analytic += Double(gx.floats[k]) * Double(v.floats[k]) }
                var err = Double.infinity, numericBest = 0.0
                for eps: Float in [1e-2, 1e-3, 3e-4] {
                    let plus = x.copy(), minus = x.copy()
                    for k in 0..<x.count { plus.floats[k] += eps * v.floats[k]; minus.floats[k] -= eps * v.floats[k] }
                    let fp = try c.forward(plus), fm = try c.forward(minus)
                    var numeric = 0.0
                    for k in 0..<g.count { numeric += Double(g.floats[k]) * Double(fp.floats[k] - fm.floats[k]) / Double(2 * eps) }
                    let e = abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-3)
                    if e < err { err = e; numericBest = numeric }
                }
                guard err < 5e-2 else { throw QuacError(String(format: "directional derivative %.6g by finite differences, %.6g by vjp (relative error %.2g at the best of three step sizes)", numericBest, analytic, err)) }
                return String(format: "relative error %.2g", err)
            }
            _ = check("vjp: batch of 4 equals 4 batches of 1") {
                let whole = try c.vjp(x, gradLogits: g).gradX
                let singles = Tensor.concatenate(try (0..<4).map { try c.vjp(x.rows($0..<$0 + 1), gradLogits: g.rows($0..<$0 + 1)).gradX })
                return try Inputs.close(whole, singles, what: "grad_x")
            }
            badInputs(i, check) { try c.rawVJP($0, gradLogits: Inputs.uniform([$0.shape.first ?? 0, i.numClasses], seed: 4), wantLogits: false).gradX }
        }
        if i.hasLayers { checkLayers(c, x, i, check) }
        if let weights = c.rawWeights() { checkWeights(c, weights, check) }
        if i.hasModifiedBackward {
            let g = Inputs.oneHot([0, 1, 0, 1].map { Int64($0 % i.numClasses) }, classes: i.numClasses)
            let baseline = Tensor(zeros: x.shape)
            for (rule, label) in [(QUAC_RULE_DEEPLIFT_RESCALE, "DeepLift rescale"), (QUAC_RULE_GUIDED_BACKPROP, "guided backprop")] {
                _ = check("vjp_rule \(label): shape, finite, batch invariant") {
                    let whole = try c.vjpRule(rule, x: x, baseline: baseline, gradLogits: g)
                    guard whole.isFinite else { throw QuacError("gradient contains NaN or infinity") }
                    let singles = Tensor.concatenate(try (0..<4).map {
                        try c.vjpRule(rule, x: x.rows($0..<$0 + 1), baseline: baseline.rows($0..<$0 + 1), gradLogits: g.rows($0..<$0 + 1))
                    })
                    return try Inputs.close(whole, singles, what: "grad_x")
                }
            }
        }
    }

    /// QUAC_EXT_CLASSIFIER_WEIGHTS: the description is a JSON object listing tensors; each one reads back
    /// as float32 of its listed shape, finite, the same twice; an unknown name is refused.
    private func checkWeights(_ c: PluginInstance, _ weights: ClassifierWeightCalls, _ check: (String, () throws -> String) -> Bool) {
        _ = check("weights: every listed tensor reads back with its shape") {
            let doc = try JSONParser.parse(try weights.describe())
            let names = (doc["tensors"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            guard !names.isEmpty else { throw QuacError("the classifier offers the extension but lists no tensors") }
            for name in names {
                let t = try weights.get(name)
                guard t.isFinite else { throw QuacError("weight \(name) contains NaN or infinity") }
                guard t.bitwiseEqual(try weights.get(name)) else { throw QuacError("weight \(name) differs between two reads") }
            }
            // An unknown name goes to the plugin itself (the host's wrapper would refuse it first).
            if let t = c.table(QUAC_EXT_CLASSIFIER_WEIGHTS, quac_classifier_weights.self), let get = t.pointee.get {
                var out: UnsafeMutablePointer<quac_managed_tensor>?
                let status = "no such weight".withCString { get(c.plugin, $0, &out) }
                if let out { out.pointee.deleter?(out) }
                guard status == quac_status(QUAC_ERR_INVALID_ARGUMENT), out == nil else {
                    throw QuacError("an unknown weight name gave status \(status)\(out == nil ? "" : " and a tensor"), expected QUAC_ERR_INVALID_ARGUMENT and none")
                }
            }
            return "\(names.count) tensors, format \(doc["format"]?.stringValue ?? "none")"
        }
    }

    /// QUAC_EXT_CLASSIFIER_LAYERS: the list parses; every layer's activations have their listed shape and
    /// come with forward's logits; the pass from a layer's own activations gives the same logits; the VJP
    /// from the logits to the last listed layer, then from it to the input, equals the classifier's own
    /// VJP (the chain rule); unknown layers are refused.
    private func checkLayers(_ c: PluginInstance, _ x: Tensor, _ info: ClassifierInfo, _ check: (String, () throws -> String) -> Bool) {
        var layers: CheckedLayers?
        guard check("layers: list", {
            layers = try c.layers()
            guard !layers!.layers.isEmpty else { throw QuacError("the classifier offers the extension but lists no layers") }
            return "\(layers!.layers.count) layers, last \(layers!.layers.last!.name) \(layers!.layers.last!.shape)"
        }) else { return }
        let l = layers!
        _ = check("layers: forward gives each layer's listed shape and forward's logits") {
            let logits = try c.forward(x)
            for layer in l.layers {
                let r = try l.forward(layer.name, x: x)
                _ = try Inputs.close(r.logits, logits, what: "logits of the pass reading \(layer.name)")
            }
            return "\(l.layers.count) layers"
        }
        _ = check("layers: vjp_logits from a layer's own activations keeps forward's logits") {
            for layer in l.layers {
                let (a, logits) = try l.forward(layer.name, x: x)
                let g = Inputs.uniform([x.shape[0], info.numClasses], seed: 8)
                let r = try l.vjpLogits(layer.name, x: x, activations: a, gradLogits: g)
                _ = try Inputs.close(r.logits, logits, what: "logits of the pass from \(layer.name)'s activations")
                guard r.gradActivations.isFinite else { throw QuacError("\(layer.name): gradient contains NaN or infinity") }
            }
            return "\(l.layers.count) layers"
        }
        if info.hasVJP {
            _ = check("layers: vjp_input after vjp_logits equals the classifier's vjp") {
                let g = Inputs.uniform([x.shape[0], info.numClasses], seed: 9)
                let direct = try c.vjp(x, gradLogits: g).gradX
                // The chain rule holds through a layer every path to the logits passes; which layers
                // those are is not listed, so the checker takes the last one (the network's last part).
                let layer = l.layers.last!
                let ga = try l.vjpLogits(layer.name, x: x, activations: nil, gradLogits: g).gradActivations
                let chained = try l.vjpInput(layer.name, x: x, gradActivations: ga)
                return try Inputs.close(chained, direct, what: "grad_x through \(layer.name)")
            }
        }
        _ = check("layers: an unknown layer is refused") {
            do { _ = try l.calls.forward("no.such.layer", x: x) } catch { return "refused: \(QuacError.wrap(error).message)" }
            throw QuacError("the classifier accepted the layer name \"no.such.layer\"")
        }
    }

    /// Wrong rank, wrong dtype, NaN and an empty batch, sent straight to the plugin (bypassing the host's
    /// own checks): each must be refused with an error, or (NaN, empty) handled without a bad output.
    private func badInputs(_ info: ClassifierInfo, _ check: (String, () throws -> String) -> Bool, _ call: @escaping (Tensor) throws -> Tensor) {
        let sample = info.concreteSampleShape()
        _ = check("refuses wrong rank") {
            do { _ = try call(Inputs.uniform([2, sample.reduce(1, *) + 1], seed: 5)) } catch { return "refused: \(QuacError.wrap(error).message)" }
            throw QuacError("accepted a [2, \(sample.reduce(1, *) + 1)] input for sample shape \(sample)")
        }
        _ = check("refuses wrong dtype") {
            do { _ = try call(Tensor(zeros: [2] + sample, dtype: .float64)) } catch { return "refused: \(QuacError.wrap(error).message)" }
            throw QuacError("accepted a float64 input")
        }
        _ = check("NaN input: refused or handled") {
            let x = Inputs.uniform([2] + sample, seed: 6)
            x.floats[0] = .nan
            do { _ = try call(x) } catch { return "refused: \(QuacError.wrap(error).message)" }
            return "accepted (outputs were checked)"
        }
        _ = check("empty batch: refused or empty output") {
            do {
                let out = try call(Tensor(zeros: [0] + sample))
                guard out.shape.first == 0 else { throw QuacError("an empty batch gave an output of shape \(out.shape)") }
                return "empty output \(out.shape)"
            } catch let e as QuacError where e.message.contains("empty batch gave") { throw e } catch {
                return "refused: \(QuacError.wrap(error).message)"
            }
        }
    }

    // MARK: Attributors, scorers, converters

    private func checkBatchKind(_ p: PluginInstance, classifier: PluginInstance, _ check: (String, () throws -> String) -> Bool) {
        guard let info = try? classifier.info() else { return }
        let sample = info.concreteSampleShape()
        // A plugin built on other attributors' maps gets random maps under the names it asks for.
        let mapNames = MapSources.names(p.manifest, p.parameters)
        func batch(_ n: Int) -> BatchInputs {
            var b = Inputs.batch(n, sample: sample, classes: info.numClasses, kind: p.kind)
            // Concepts in [0, 1]: as many as a tabular sample has values (x may be the concept table), else 3.
            b.concepts = Inputs.uniform([n, sample.count == 1 ? sample[0] : 3], seed: 30, low: 0, high: 1)
            b.methodJSON = manifest.checkMethodJSON.map { JSONMerge.rows($0, 0..<min(n, 4), of: 4) }
            b.maps = mapNames.enumerated().map { ($0.element, Inputs.uniform(b.x.shape, seed: 20 + UInt64($0.offset))) }
            return b
        }
        let output: String
        let callFn: (BatchInputs, Bool) throws -> PluginOutputs
        switch p.kind {
        case .attributor: output = "attribution"; callFn = { try p.attribute($0, checkInputs: $1) }
        case .scorer:
            output = "score"
            // A method to score for scorers that re-run it (QUAC_HOST_EXT_SCORED_METHOD): Saliency on the
            // helper classifier, when the registry has it.
            let method = (try? registry.manifest(id: "org.quac.saliency")).flatMap { try? PluginInstance(manifest: $0, run: classifier.context.run) }
            callFn = { b, check in
                guard let method else { return try p.score(b, checkInputs: check) }
                return try p.context.withScoredMethod(method) { try p.score(b, checkInputs: check) }
            }
        default: output = "counterfactual"; callFn = { try p.convert($0, checkInputs: $1) }
        }
        let full = batch(4)
        _ = check("\(p.kind.rawValue): \"\(output)\" shape, dtype, finite") {
            let out = try callFn(full, true)
            return "\(out.tensors[output]!.shape)" + (out.json != nil ? " + JSON \(out.json!.keys.joined(separator: ","))" : "")
        }
        _ = check("deterministic under a fixed seed") {
            let a = try callFn(full, true).tensors[output]!, b = try callFn(full, true).tensors[output]!
            guard a.bitwiseEqual(b) else { throw QuacError("two calls with seed \(full.seed) differ") }
            return "bitwise equal"
        }
        _ = check("batch of 4 equals 4 batches of 1") {
            let whole = try callFn(full, true).tensors[output]!
            let singles = Tensor.concatenate(try (0..<4).map { i -> Tensor in
                var b = full
                b.x = full.x.rows(i..<i + 1); b.source = full.source!.rows(i..<i + 1); b.target = full.target!.rows(i..<i + 1)
                b.xCF = full.xCF!.rows(i..<i + 1); b.attribution = full.attribution?.rows(i..<i + 1)
                b.maps = full.maps.map { ($0.0, $0.1.rows(i..<i + 1)) }
                b.concepts = full.concepts?.rows(i..<i + 1)
                b.methodJSON = full.methodJSON.map { JSONMerge.rows($0, i..<i + 1, of: 4) }
                return try callFn(b, true).tensors[output]!
            })
            return try Inputs.close(whole, singles, what: output)
        }
        _ = check("refuses wrong rank") {
            var b = full
            b.x = full.x.reshaped([4, full.x.count / 4])
            b.xCF = full.xCF!.reshaped(b.x.shape)
            b.attribution = full.attribution?.reshaped(b.x.shape)
            b.maps = full.maps.map { ($0.0, $0.1.reshaped(b.x.shape)) }
            do { _ = try callFn(b, false) } catch { return "refused: \(QuacError.wrap(error).message)" }
            // A method that never calls the classifier (e.g. Residual) may work on any shape.
            let usesClassifier = manifest.requires.contains { $0 != .counterfactual && $0 != .converter }
            guard usesClassifier else { return "accepted: the plugin does not use the classifier, and its output was shaped like x" }
            throw QuacError("accepted x of shape \(b.x.shape) for a classifier of sample shape \(sample)")
        }
        _ = check("refuses wrong dtype") {
            var b = full
            b.x = Tensor(zeros: full.x.shape, dtype: .float64)
            do { _ = try callFn(b, false) } catch { return "refused: \(QuacError.wrap(error).message)" }
            throw QuacError("accepted a float64 x")
        }
        _ = check("NaN input: refused or handled") {
            var b = full
            b.x = full.x.copy()
            b.x.floats[0] = .nan
            do { _ = try callFn(b, false) } catch { return "refused: \(QuacError.wrap(error).message)" }
            return "accepted (outputs were checked)"
        }
        _ = check("empty batch: refused or empty output") {
            var b = batch(0)
            b.seed = 7
            do {
                let out = try callFn(b, false)
                guard out.tensors[output]?.shape.first == 0 else { throw QuacError("an empty batch gave \(output) of shape \(out.tensors[output]?.shape ?? [])") }
                return "empty output"
            } catch let e as QuacError where e.message.contains("empty batch gave") { throw e } catch {
                return "refused: \(QuacError.wrap(error).message)"
            }
        }
    }
}

extension ConformanceChecker {
    /// Parameters of the helper classifier that fit the plugin under test: its input_shape (or
    /// [input_channels, image_size, image_size]) and num_classes, for the helper parameters of the same
    /// names; nothing when the plugin says nothing about its data.
    static func helperParameters(_ helper: PluginManifest, sizedFor plugin: JSONValue) -> JSONValue {
        let accepts = Set(helper.parameters["properties"]?.objectValue?.keys ?? [])
        var out = JSONObject()
        if accepts.contains("input_shape") {
            if let shape = plugin["input_shape"], shape.arrayValue != nil {
                out["input_shape"] = shape
            } else if let size = plugin["image_size"]?.intValue {
                out["input_shape"] = [.int(plugin["input_channels"]?.intValue ?? 1), .int(size), .int(size)]
            }
        }
        if accepts.contains("num_classes"), let k = plugin["num_classes"], k.intValue != nil { out["num_classes"] = k }
        return .object(out)
    }

    /// `value` with every string equal to `placeholder` replaced.
    static func substitute(_ value: JSONValue, _ placeholder: String, with replacement: String) -> JSONValue {
        switch value {
        case .string(let s) where s == placeholder: return .string(replacement)
        case .array(let a): return .array(a.map { substitute($0, placeholder, with: replacement) })
        case .object(let o):
            var out = o
            for (k, v) in o { out[k] = substitute(v, placeholder, with: replacement) }
            return .object(out)
        default: return value
        }
    }
}

/// Inputs the checks make, and comparisons they use.
enum Inputs {
    /// The checker's batch of n samples: fixed random images and counterfactuals, sources cycling
    /// through the classes, targets the next class; a map in [0, 1] for scorers.
    static func batch(_ n: Int, sample: [Int], classes: Int, kind: PluginKind) -> BatchInputs {
        let labels = (0..<n).map { Int64($0 % classes) }
        return BatchInputs(x: uniform([n] + sample, seed: 10), source: Tensor(labels, shape: [n]),
                           target: Tensor(labels.map { ($0 + 1) % Int64(classes) }, shape: [n]),
                           xCF: uniform([n] + sample, seed: 11),
                           attribution: kind == .scorer ? uniform([n] + sample, seed: 12, low: 0, high: 1) : nil,
                           seed: 7)
    }

    static func uniform(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
        var rng = SeededRandom(seed: seed)
        let t = Tensor(zeros: shape)
        for i in 0..<t.count { t.floats[i] = low + (high - low) * rng.uniform() }
        return t
    }

    static func oneHot(_ labels: [Int64], classes: Int) -> Tensor {
        let t = Tensor(zeros: [labels.count, classes])
        for (i, y) in labels.enumerated() { t.floats[i * classes + Int(y)] = 1 }
        return t
    }

    /// Equal within 1e-5 relative to the largest magnitude (float sums may be ordered differently).
    static func close(_ a: Tensor, _ b: Tensor, what: String) throws -> String {
        guard a.shape == b.shape else { throw QuacError("\(what): shapes \(a.shape) and \(b.shape) differ") }
        let scale = max(a.floats.map(abs).max() ?? 0, b.floats.map(abs).max() ?? 0, 1e-12)
        var worst: Float = 0
        for i in 0..<a.count { worst = max(worst, abs(a.floats[i] - b.floats[i])) }
        guard worst <= 1e-5 * scale else { throw QuacError(String(format: "%@: max difference %.3g (relative %.3g)", what, worst, worst / scale)) }
        return String(format: "max relative difference %.2g", worst / scale)
    }
}
