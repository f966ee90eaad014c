import Engine
import Foundation

/// Several logic networks of one architecture, trained independently from seeds drawn from one seed,
/// that act as one model: the logits are the networks' mean and the attention alpha~ is their mean
/// (so the concept mask is "mean alpha~ > 0.5"). One network's mask and correctly classified samples,
/// and so its rules, change with the seed it was drawn from; the mean of a few changes much less.
///
/// With one network it is that network: the same logits, attention, mask and parameter names (the
/// torch_explain names). Network 0 keeps those names in a state dict; network e > 0 is under
/// "network<e>.", so a file of several networks still gives network 0 to torch_explain.
public final class LogicEnsemble: Module, @unchecked Sendable {
    public let networks: [LogicNetwork]

    /// Network e's seed: the seed itself for network 0 (one network is the single network of that
    /// seed); for e >= 1 a SplitMix64 finalizer of the seed mixed with e. Not seed + e * step: the
    /// engine's generators and the minibatch orders step by the golden-ratio constant themselves, so
    /// such seeds would repeat other streams (epoch e - 1's order, or network e - 1 of the run seeded
    /// one step further).
    public static func seed(of e: Int, from seed: UInt64) -> UInt64 {
        guard e > 0 else { return seed }
        var z = seed ^ (UInt64(e) &* 0xD1B5_4A32_D192_ED03)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public init(concepts k: Int, classes r: Int, hidden: [Int], temperature: Float = 0.6, count: Int, seed: UInt64) {
        precondition(count >= 1, "an ensemble needs at least one network")
        networks = (0..<count).map { e in
            LogicNetwork(concepts: k, classes: r, hidden: hidden, temperature: temperature, seed: Self.seed(of: e, from: seed))
        }
    }

    public var concepts: Int { networks[0].entropy.concepts }
    public var classes: Int { networks[0].entropy.classes }

    /// Checkpoint names: "network" for network 0 (what a single network's checkpoint has always used),
    /// "network<e>" for the others.
    public static func name(of e: Int) -> String { e == 0 ? "network" : "network\(e)" }

    /// Mean logits [N, r] of concepts [N, k].
    public override func forward(_ c: Var) -> Var {
        guard networks.count > 1 else { return networks[0](c) }
        let sum = networks.dropFirst().reduce(networks[0](c)) { $0 + $1(c) }
        return sum / Float(networks.count)
    }

    /// Mean alpha~ [r * k] (class-major), without gradients.
    public func attention() -> [Float] {
        var mean = [Float](repeating: 0, count: classes * concepts)
        for net in networks {
            let a = noGrad { net.entropy.attention().normalized }.array
            for q in mean.indices { mean[q] += a[q] }
        }
        return mean.map { $0 / Float(networks.count) }
    }

    /// The concept mask [r][k]: mean alpha~ > 0.5 (one network: its own mask).
    public func mask() -> [[Bool]] {
        let a = attention(), k = concepts
        return (0..<classes).map { i in (0..<k).map { a[i * k + $0] > 0.5 } }
    }

    /// Network 0's own children, so its state-dict names are a single network's (no prefix); the
    /// ensemble therefore never reaches network 0 itself, only its layers (LogicNetwork keeps no
    /// state of its own: no parameters, buffers or use of the training flag).
    public override var children: [(String, Module)] {
        networks[0].children + networks.enumerated().dropFirst().map { (Self.name(of: $0.offset), $0.element) }
    }
}
