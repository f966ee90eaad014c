import Engine
import Foundation
import QuacPluginKit

/// StarGAN v2's four networks as QuAC builds them (docs/algorithms.md, "StarGAN v2"), with the
/// parameter names of PyTorch's state_dicts (without DataParallel's "module." prefix), so weights move
/// between the two.
/// Channel widths start at `channels` and double at each downsampling, capped at `maxChannels`
/// (the reference derives channels = 2^14 / image size and caps at 512; small caps make a 32x32 or
/// 64x64 model trainable on a CPU).
struct StarGANConfig: Equatable {
    var imageSize: Int, inputChannels: Int, numDomains: Int
    var channels: Int, maxChannels: Int
    var styleDim: Int, latentDim: Int, mappingDim: Int

    init(_ p: Parameters) throws {
        imageSize = try p.int("image_size")
        inputChannels = try p.int("input_channels")
        numDomains = try p.int("num_classes")
        maxChannels = try p.int("max_channels")
        let derived = imageSize > 0 ? min((1 << 14) / imageSize, maxChannels) : 0
        let c = try p.int("channels")
        channels = c > 0 ? c : derived
        styleDim = try p.int("style_dim")
        latentDim = try p.int("latent_dim")
        mappingDim = try p.int("mapping_dim")
        guard imageSize >= 8, imageSize & (imageSize - 1) == 0 else {
            throw PluginError.invalid("image_size must be a power of 2, at least 8 (got \(imageSize))")
        }
        guard inputChannels >= 1, numDomains >= 2, channels >= 1, maxChannels >= 1, styleDim >= 1, latentDim >= 1, mappingDim >= 1 else {
            throw PluginError.invalid("input_channels, channels, max_channels, style_dim, latent_dim and mapping_dim must be >= 1 and num_classes >= 2")
        }
        if let problem = memoryProblem() { throw PluginError.invalid(problem) }
    }

    /// The largest arrays the four networks allocate, held to the memory budget before any is: a
    /// width or a mapping size at its schema bound would otherwise end the process.
    func memoryProblem() -> String? {
        let widest = max(channels, min(maxChannels, channels << min(encoderLevels, 24)))
        let arrays: [(String, [(String, Int)])] = [
            ("a 3x3 convolution's weights", [("widest width", widest), ("widest width", widest), ("kernel", 9)]),
            ("the mapping network's weights", [("mapping_dim", mappingDim), ("mapping_dim", mappingDim), ("layers (3 + 3 x num_classes)", 3 + 3 * numDomains)]),
            ("the style heads' weights", [("widest width", widest), ("num_classes", numDomains), ("style_dim", styleDim)]),
            ("the style modulation's weights", [("style_dim", styleDim), ("widest width", widest), ("scale and shift", 2)]),
            ("one image's activations", [("widest width", widest), ("image_size", imageSize), ("image_size", imageSize)]),
        ]
        for (what, factors) in arrays {
            if let problem = MemoryBudget.problem(factors) { return "\(what): \(problem)" }
        }
        return nil
    }

    /// The configuration a QuAC checkpoint's shapes imply ("<network>/<state_dict name>" tensors), or
    /// nil when the file lacks the tensors that tell. What the shapes cannot tell (image sizes of 16 and
    /// below look alike; a cap on the widths that no level reaches) comes from `fallback`.
    static func inferred(from file: SafetensorsFile, fallback: StarGANConfig) -> StarGANConfig? {
        func shape(_ name: String) -> [Int]? { file.tensors[name]?.shape }
        guard let rgb = shape("generator/from_rgb.weight"), rgb.count == 4,
              let shared = shape("mapping_network/shared.0.weight"), shared.count == 2,
              let style = shape("mapping_network/unshared.0.6.weight"), style.count == 2 else { return nil }
        func indices(_ prefix: String) -> Set<Int> {
            Set(file.names.compactMap { n -> Int? in
                guard n.hasPrefix(prefix) else { return nil }
                return Int(n.dropFirst(prefix.count).prefix { $0 != "." })
            })
        }
        let encode = indices("generator/encode.").count
        guard encode >= 2 else { return nil }
        var c = fallback
        c.inputChannels = rgb[1]
        c.channels = rgb[0]
        c.imageSize = encode > 2 ? 1 << (encode - 2 + 4) : min(fallback.imageSize, 16)
        c.numDomains = indices("mapping_network/unshared.").count
        c.latentDim = shared[1]
        c.mappingDim = shared[0]
        c.styleDim = style[0]
        // Each downsampling level doubles the width up to the cap: a level below double names the cap.
        // The style encoder goes down further (to 4x4), so it shows a cap the generator does not reach.
        var widest = c.channels, capped = false
        for chain in [(0..<(encode - 2)).map { "generator/encode.\($0).conv2.weight" },
                      (1...max(c.log2Size - 2, 1)).map { "style_encoder/shared.\($0).conv2.weight" }] {
            var width = c.channels
            for name in chain {
                guard let w = shape(name)?.first else { break }
                if w < width * 2 { c.maxChannels = w; capped = true }
                width = w
                widest = max(widest, w)
            }
        }
        if !capped { c.maxChannels = max(fallback.maxChannels, widest) }
        return c
    }

    var log2Size: Int { Int(log2(Double(imageSize)).rounded()) }
    /// Downsampling blocks of the generator's encoder (log2(size) - 4, none below 16x16).
    var generatorLevels: Int { max(log2Size - 4, 0) }
    /// Downsampling blocks of the style encoder and discriminator (log2(size) - 2: down to 4x4).
    var encoderLevels: Int { log2Size - 2 }
    var sampleShape: [Int] { [inputChannels, imageSize, imageSize] }

    /// What a model file must agree with.
    var json: JSONValue {
        ["image_size": .int(Int64(imageSize)), "input_channels": .int(Int64(inputChannels)),
         "num_classes": .int(Int64(numDomains)), "channels": .int(Int64(channels)),
         "max_channels": .int(Int64(maxChannels)), "style_dim": .int(Int64(styleDim)),
         "latent_dim": .int(Int64(latentDim)), "mapping_dim": .int(Int64(mappingDim)), "network": "stargan-v2/quac"]
    }
}

private let invSqrt2 = 1 / Float(2).squareRoot()

/// Selects row n's entry `y[n]` along axis 1 of [N, K, ...] (PyTorch's out[arange(N), y]) as a
/// product with a one-hot mask, which differentiates (twice) like any product.
func selectDomain(_ out: Var, _ y: [Int]) -> Var {
    let (n, k) = (out.shape[0], out.shape[1])
    var shape = [n, k]
    shape += [Int](repeating: 1, count: out.rank - 2)
    let mask = NDArray.zeros(shape)
    for i in 0..<n { mask.pointer[i * k + y[i]] = 1 }
    return (out * Var(mask)).sum(axes: [1])
}

/// nn.ModuleList: children named "0", "1", ...
final class ModuleList: Module, @unchecked Sendable {
    let items: [Module]
    init(_ items: [Module]) { self.items = items }
    override var children: [(String, Module)] { items.enumerated().map { (String($0.offset), $0.element) } }
}

/// Residual block: (shortcut(x) + residual(x)) / sqrt(2), optionally instance-normalized and
/// downsampled by 2x2 average pooling.
final class ResBlk: Module, @unchecked Sendable {
    let conv1: Conv2d, conv2: Conv2d
    let norm1: InstanceNorm?, norm2: InstanceNorm?
    let conv1x1: Conv2d?
    let downsample: Bool

    init(_ dimIn: Int, _ dimOut: Int, normalize: Bool = false, downsample: Bool = false, rng: inout RandomGenerator) {
        conv1 = Conv2d(dimIn, dimIn, kernel: 3, padding: 1, rng: &rng)
        conv2 = Conv2d(dimIn, dimOut, kernel: 3, padding: 1, rng: &rng)
        norm1 = normalize ? InstanceNorm(dimIn, affine: true) : nil
        norm2 = normalize ? InstanceNorm(dimIn, affine: true) : nil
        conv1x1 = dimIn != dimOut ? Conv2d(dimIn, dimOut, kernel: 1, bias: false, rng: &rng) : nil
        self.downsample = downsample
    }

    override func forward(_ x: Var) -> Var {
        var sc = conv1x1.map { $0(x) } ?? x
        if downsample { sc = sc.avgPool2d(kernel: 2) }
        var h = norm1.map { $0(x) } ?? x
        h = conv1(h.leakyRelu(0.2))
        if downsample { h = h.avgPool2d(kernel: 2) }
        if let norm2 { h = norm2(h) }
        h = conv2(h.leakyRelu(0.2))
        return (sc + h) * invSqrt2
    }

    override var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1), ("conv2", conv2)]
        if let norm1, let norm2 { c += [("norm1", norm1), ("norm2", norm2)] }
        if let conv1x1 { c.append(("conv1x1", conv1x1)) }
        return c
    }
}

/// (1 + gamma) * IN(x) + beta with [gamma, beta] = fc(s).
final class AdaINLayer: Module, @unchecked Sendable {
    let fc: Linear
    let features: Int
    init(styleDim: Int, features: Int, rng: inout RandomGenerator) {
        fc = Linear(styleDim, 2 * features, rng: &rng)
        self.features = features
    }
    func forward(_ x: Var, _ s: Var) -> Var {
        let h = fc(s)
        return x.adaIN(gamma: h.slice(axis: 1, 0..<features), beta: h.slice(axis: 1, features..<(2 * features)))
    }
    override var children: [(String, Module)] { [("fc", fc)] }
}

/// Residual block of the decoder: AdaIN, LeakyReLU, optional nearest 2x upsampling, convolutions.
final class AdainResBlk: Module, @unchecked Sendable {
    let conv1: Conv2d, conv2: Conv2d
    let norm1: AdaINLayer, norm2: AdaINLayer
    let conv1x1: Conv2d?
    let upsample: Bool

    init(_ dimIn: Int, _ dimOut: Int, styleDim: Int, upsample: Bool = false, rng: inout RandomGenerator) {
        conv1 = Conv2d(dimIn, dimOut, kernel: 3, padding: 1, rng: &rng)
        conv2 = Conv2d(dimOut, dimOut, kernel: 3, padding: 1, rng: &rng)
        norm1 = AdaINLayer(styleDim: styleDim, features: dimIn, rng: &rng)
        norm2 = AdaINLayer(styleDim: styleDim, features: dimOut, rng: &rng)
        conv1x1 = dimIn != dimOut ? Conv2d(dimIn, dimOut, kernel: 1, bias: false, rng: &rng) : nil
        self.upsample = upsample
    }

    func forward(_ x: Var, _ s: Var) -> Var {
        var h = norm1.forward(x, s).leakyRelu(0.2)
        if upsample { h = h.upsampleNearest(2) }
        h = conv1(h)
        h = conv2(norm2.forward(h, s).leakyRelu(0.2))
        var sc = upsample ? x.upsampleNearest(2) : x
        if let conv1x1 { sc = conv1x1(sc) }
        return (h + sc) * invSqrt2
    }

    override var children: [(String, Module)] {
        [("conv1", conv1), ("conv2", conv2), ("norm1", norm1), ("norm2", norm2)] + (conv1x1.map { [("conv1x1", $0)] } ?? [])
    }
}

final class StarGANGenerator: Module, @unchecked Sendable {
    let fromRGB: Conv2d
    let encode: ModuleList, decode: ModuleList
    let toRGB: Sequential

    init(_ c: StarGANConfig, rng: inout RandomGenerator) {
        var dimIn = c.channels
        fromRGB = Conv2d(c.inputChannels, dimIn, kernel: 3, padding: 1, rng: &rng)
        var enc: [Module] = [], dec: [Module] = []
        var dimOut = dimIn
        for _ in 0..<c.generatorLevels {
            dimOut = min(dimIn * 2, c.maxChannels)
            enc.append(ResBlk(dimIn, dimOut, normalize: true, downsample: true, rng: &rng))
            dec.insert(AdainResBlk(dimOut, dimIn, styleDim: c.styleDim, upsample: true, rng: &rng), at: 0)
            dimIn = dimOut
        }
        for _ in 0..<2 {
            enc.append(ResBlk(dimOut, dimOut, normalize: true, rng: &rng))
            dec.insert(AdainResBlk(dimOut, dimOut, styleDim: c.styleDim, rng: &rng), at: 0)
        }
        encode = ModuleList(enc)
        decode = ModuleList(dec)
        toRGB = Sequential([InstanceNorm(c.channels, affine: true), Lambda("leaky_relu") { $0.leakyRelu(0.2) },
                            Conv2d(c.channels, c.inputChannels, kernel: 1, rng: &rng)])
    }

    func forward(_ x: Var, _ s: Var) -> Var {
        var h = fromRGB(x)
        for b in encode.items { h = b(h) }
        for b in decode.items { h = (b as! AdainResBlk).forward(h, s) }
        return toRGB(h).tanh()
    }

    override var children: [(String, Module)] { [("from_rgb", fromRGB), ("encode", encode), ("decode", decode), ("to_rgb", toRGB)] }
}

final class MappingNetwork: Module, @unchecked Sendable {
    let shared: Sequential
    let unshared: ModuleList

    init(_ c: StarGANConfig, rng: inout RandomGenerator) {
        let relu = { Lambda("relu") { $0.relu() } }
        var layers: [Module] = [Linear(c.latentDim, c.mappingDim, rng: &rng), relu()]
        for _ in 0..<3 { layers += [Linear(c.mappingDim, c.mappingDim, rng: &rng), relu()] }
        shared = Sequential(layers)
        var heads: [Module] = []
        for _ in 0..<c.numDomains {
            var h: [Module] = []
            for _ in 0..<3 { h += [Linear(c.mappingDim, c.mappingDim, rng: &rng), relu()] }
            h.append(Linear(c.mappingDim, c.styleDim, rng: &rng))
            heads.append(Sequential(h))
        }
        unshared = ModuleList(heads)
    }

    func forward(_ z: Var, _ y: [Int]) -> Var {
        let h = shared(z)
        return selectDomain(Var.stack(unshared.items.map { $0(h) }, axis: 1), y)
    }

    override var children: [(String, Module)] { [("shared", shared), ("unshared", unshared)] }
}

/// The trunk shared by the style encoder and the discriminator: conv, downsampling residual blocks
/// to 4x4, LeakyReLU, 4x4 conv, LeakyReLU. Returns the layers and the last width.
private func encoderTrunk(_ c: StarGANConfig, rng: inout RandomGenerator) -> ([Module], Int) {
    var dimIn = c.channels
    var blocks: [Module] = [Conv2d(c.inputChannels, dimIn, kernel: 3, padding: 1, rng: &rng)]
    var dimOut = dimIn
    for _ in 0..<c.encoderLevels {
        dimOut = min(dimIn * 2, c.maxChannels)
        blocks.append(ResBlk(dimIn, dimOut, downsample: true, rng: &rng))
        dimIn = dimOut
    }
    blocks += [Lambda("leaky_relu") { $0.leakyRelu(0.2) }, Conv2d(dimOut, dimOut, kernel: 4, rng: &rng),
               Lambda("leaky_relu") { $0.leakyRelu(0.2) }]
    return (blocks, dimOut)
}

final class StyleEncoder: Module, @unchecked Sendable {
    let shared: Sequential
    let unshared: ModuleList

    init(_ c: StarGANConfig, rng: inout RandomGenerator) {
        let (blocks, dim) = encoderTrunk(c, rng: &rng)
        shared = Sequential(blocks)
        var heads: [Module] = []
        for _ in 0..<c.numDomains { heads.append(Linear(dim, c.styleDim, rng: &rng)) }
        unshared = ModuleList(heads)
    }

    func forward(_ x: Var, _ y: [Int]) -> Var {
        let h = shared(x).flatten()
        return selectDomain(Var.stack(unshared.items.map { $0(h) }, axis: 1), y)
    }

    override var children: [(String, Module)] { [("shared", shared), ("unshared", unshared)] }
}

final class Discriminator: Module, @unchecked Sendable {
    let main: Sequential

    init(_ c: StarGANConfig, rng: inout RandomGenerator) {
        var (blocks, dim) = encoderTrunk(c, rng: &rng)
        blocks.append(Conv2d(dim, c.numDomains, kernel: 1, rng: &rng))
        main = Sequential(blocks)
    }

    /// One logit per sample: the head of its class y.
    func forward(_ x: Var, _ y: [Int]) -> Var { selectDomain(main(x).flatten(), y) }

    override var children: [(String, Module)] { [("main", main)] }
}

/// The trained networks, their moving averages (which generate) and the discriminator.
final class StarGANNets {
    let config: StarGANConfig
    let generator: StarGANGenerator, mapping: MappingNetwork, styleEncoder: StyleEncoder, discriminator: Discriminator
    let generatorEMA: StarGANGenerator, mappingEMA: MappingNetwork, styleEncoderEMA: StyleEncoder

    /// He (Kaiming-normal, fan-in) weights and zero biases for every convolution and linear layer,
    /// drawn from `seed`; the EMA copies start equal to the networks.
    init(_ c: StarGANConfig, seed: UInt64) {
        config = c
        var rng = RandomGenerator(seed: seed)
        generator = StarGANGenerator(c, rng: &rng)
        mapping = MappingNetwork(c, rng: &rng)
        styleEncoder = StyleEncoder(c, rng: &rng)
        discriminator = Discriminator(c, rng: &rng)
        generatorEMA = StarGANGenerator(c, rng: &rng)
        mappingEMA = MappingNetwork(c, rng: &rng)
        styleEncoderEMA = StyleEncoder(c, rng: &rng)
        var init_ = RandomGenerator(seed: seed ^ 0x5EED_57A6_A2)
        for net in [generator, mapping, styleEncoder, discriminator] as [Module] {
            for (name, p) in net.namedParameters() {
                if p.rank >= 2 { p.setData(.kaimingNormal(p.shape, rng: &init_)) }
                else if name.hasSuffix("bias") { p.setData(.zeros(p.shape)) }  // instance-norm biases start at 0 too
            }
        }
        copyToEMA()
    }

    var networks: [String: Module] {
        ["generator": generator, "mapping_network": mapping, "style_encoder": styleEncoder, "discriminator": discriminator]
    }
    var emaNetworks: [String: Module] {
        ["generator": generatorEMA, "mapping_network": mappingEMA, "style_encoder": styleEncoderEMA]
    }

    func copyToEMA() {
        for (name, net) in emaNetworks {
            for ((_, d), (_, s)) in zip(net.namedParameters(), networks[name]!.namedParameters()) { d.setData(s.data.copy()) }
        }
    }

    func updateEMA(beta: Float) {
        updateMovingAverage(generatorEMA, from: generator, beta: beta)
        updateMovingAverage(mappingEMA, from: mapping, beta: beta)
        updateMovingAverage(styleEncoderEMA, from: styleEncoder, beta: beta)
    }
}

/// Switches gradient recording of a network's parameters (a network that is only read in a pass
/// need not collect gradients).
func setRequiresGrad(_ net: Module, _ on: Bool) {
    for p in net.parameters { p.requiringGrad(on) }
}
