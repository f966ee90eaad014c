import Foundation
import XCTest
import Engine
@testable import LogicNetworks

/// Several logic networks as one model: one network is exactly that network; several give the mean of
/// their logits and of their attention, and their concept mask is the mean attention's, which can
/// differ from every single network's.
final class LogicEnsembleTests: XCTestCase {
    func concepts(_ n: Int, _ k: Int, seed: UInt64) -> Var {
        var rng = RandomGenerator(seed: seed)
        return Var(.uniform([n, k], low: 0, high: 1, rng: &rng))
    }

    func testOneNetworkIsThatNetwork() {
        let ensemble = LogicEnsemble(concepts: 6, classes: 3, hidden: [5, 4], count: 1, seed: 9)
        let net = LogicNetwork(concepts: 6, classes: 3, hidden: [5, 4], seed: 9)
        let c = concepts(7, 6, seed: 1)
        XCTAssertEqual(ensemble(c).array, net(c).array)
        XCTAssertEqual(ensemble.attention(), net.entropy.attention().normalized.array)
        XCTAssertEqual(ensemble.mask(), net.entropy.mask())
        // The same names (torch_explain's) and values in a state dict.
        XCTAssertEqual(ensemble.stateDict().map(\.0), net.stateDict().map(\.0))
        XCTAssertEqual(ensemble.stateDict().map(\.1.array), net.stateDict().map(\.1.array))
    }

    func testSeveralNetworksAverageTheirLogitsAndAttention() {
        let seed: UInt64 = 4
        let ensemble = LogicEnsemble(concepts: 5, classes: 2, hidden: [6, 3], count: 3, seed: seed)
        let c = concepts(9, 5, seed: 2)
        // Network e is the single network of its own seed; the seeds differ, and so do the weights.
        for (e, net) in ensemble.networks.enumerated() {
            let alone = LogicNetwork(concepts: 5, classes: 2, hidden: [6, 3], seed: LogicEnsemble.seed(of: e, from: seed))
            XCTAssertEqual(net.stateDict().map(\.1.array), alone.stateDict().map(\.1.array), "network \(e)")
        }
        XCTAssertEqual(Set(ensemble.networks.map { $0.entropy.weight.array }).count, 3)
        let logits = ensemble.networks.map { $0(c).array }, attention = ensemble.networks.map { $0.entropy.attention().normalized.array }
        let mean = ensemble(c).array
        for q in mean.indices { XCTAssertEqual(mean[q], (logits[0][q] + logits[1][q] + logits[2][q]) / 3, accuracy: 1e-6) }
        let a = ensemble.attention()
        for q in a.indices { XCTAssertEqual(a[q], (attention[0][q] + attention[1][q] + attention[2][q]) / 3, accuracy: 1e-6) }
        // Network 0 under the plain names, the others under network<e>.
        let names = ensemble.stateDict().map(\.0)
        XCTAssertEqual(names.filter { !$0.hasPrefix("network") }, ensemble.networks[0].stateDict().map(\.0))
        XCTAssertEqual(names.filter { $0.hasPrefix("network2.") }, ensemble.networks[2].stateDict().map { "network2." + $0.0 })
        XCTAssertEqual(names.count, 3 * ensemble.networks[0].stateDict().count)
    }

    /// Network seeds: network 0 keeps the run's seed; the others repeat neither another network's seed
    /// (of this run or of a run seeded nearby) nor a stream the golden-ratio steps of the engine's
    /// generators and the minibatch orders (seed + k * 0x9E3779B97F4A7C15) would reach.
    func testNetworkSeedsAreDistinctStreams() {
        let golden: UInt64 = 0x9E37_79B9_7F4A_7C15
        var seen = Set<UInt64>()
        var steps = Set<UInt64>()
        for s in UInt64(0)..<20 { for k in UInt64(0)..<1100 { steps.insert(s &+ k &* golden) } }
        for s in UInt64(0)..<20 {
            XCTAssertEqual(LogicEnsemble.seed(of: 0, from: s), s)
            for e in 1..<16 {
                let d = LogicEnsemble.seed(of: e, from: s)
                XCTAssertTrue(seen.insert(d).inserted, "seed \(s), network \(e)")
                XCTAssertFalse(steps.contains(d), "seed \(s), network \(e)")
            }
        }
    }

    /// Hand-set attention, one class over three concepts: network A attends alpha~ = [1, 0.9, 0.6],
    /// B [1, 0.2, 0.3]. A's mask is all three, B's the first alone; the mean [1, 0.55, 0.45] masks the
    /// first two, which neither network does alone.
    func testTheMaskIsTheMeanAttentions() throws {
        let ensemble = LogicEnsemble(concepts: 3, classes: 1, hidden: [1], count: 2, seed: 0)
        let tau: Float = 0.6
        for (net, normalized) in zip(ensemble.networks, [[1, 0.9, 0.6], [1, 0.2, 0.3]] as [[Float]]) {
            // alpha~_j = exp((gamma_j - gamma_max) / tau), gamma_j = |w_j| with one hidden unit.
            let gamma = normalized.map { 1 + tau * log($0) }
            var state = Dictionary(uniqueKeysWithValues: net.stateDict())
            state["0.weight"] = NDArray(gamma, shape: [1, 1, 3])
            try net.loadStateDict(state)
            for (x, y) in zip(net.entropy.attention().normalized.array, normalized) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        }
        XCTAssertEqual(ensemble.networks.map { $0.entropy.mask() }, [[[true, true, true]], [[true, false, false]]])
        XCTAssertEqual(ensemble.mask(), [[true, true, false]])
    }
}
