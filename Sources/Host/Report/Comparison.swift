import Foundation

/// Methods side by side: per method and scorer the distribution of scores, the median curve with its
/// interquartile band, time per sample, convergence deltas, ranks, and per sample the best method.
public struct Comparison {
    public struct Row {
        public let run: String
        public let method: String
        public let scorer: String
        public let median: Double, q25: Double, q75: Double, mean: Double
        public let secondsPerSample: Double?
        public let meanAbsConvergenceDelta: Double?
        /// 1 = best median for this scorer within the run; equal medians share a rank (1, 2, 2, 4).
        public let rank: Int
        /// Samples for which this method alone has the highest score of this scorer.
        public let wins: Int
        /// Samples for which this method shares the highest score with at least one other method.
        public let ties: Int
        /// The median simulability of students taught with this method's explanations, at the
        /// smallest budget of the run's simulability study (nil when the run has none for it).
        public var simulability: Double?
        /// Whether a higher score is better for this scorer (else lower).
        public var higherIsBetter: Bool = true
        public var simulabilityBudget: Int?
    }

    public struct Curve {
        public let run: String, method: String, scorer: String
        public let x: [Double]
        public let median: [Double], q25: [Double], q75: [Double]
    }

    public let runs: [RunResults]
    public let rows: [Row]
    public let curves: [Curve]
    /// Per run, scorer and sample: the best method, for samples where one method alone scores highest.
    public let best: [(run: String, scorer: String, sample: Int, method: String, score: Double)]
    /// Logic explainers' rules across runs (two or more runs with the same method).
    public var consistency: [RuleConsistency] { RuleConsistency.of(runs, labels: Comparison.labels(runs)) }

    public init(_ runs: [RunResults]) {
        self.runs = runs
        var rows: [Row] = [], curves: [Curve] = [], best: [(String, String, Int, String, Double)] = []
        let label = Comparison.labels(runs)
        for (run, tag) in zip(runs, label) {
            for scorer in run.scorerNames {
                let scored = run.methods.filter { $0.scores[scorer] != nil }
                // Scores are compared as "higher is better"; a scorer that says lower is better is negated.
                let sign: Double = scored.first?.scores[scorer]?.fields["better"]?.stringValue == "lower" ? -1 : 1
                // Best method per sample: a win only for a score no other method reaches; a tie at the
                // top is counted as a tie for every method that shares it.
                var wins = [String: Int](), ties = [String: Int]()
                let n = scored.map { $0.scores[scorer]!.perSample.count }.min() ?? 0
                for s in 0..<n {
                    let values = scored.map { ($0.name, sign * $0.scores[scorer]!.perSample[s]) }.filter { $0.1.isFinite }
                    guard let top = values.map(\.1).max() else { continue }
                    let leaders = values.filter { $0.1 == top }
                    if leaders.count == 1 {
                        wins[leaders[0].0, default: 0] += 1
                        best.append((tag, scorer, s, leaders[0].0, sign * top))
                    } else {
                        for l in leaders { ties[l.0, default: 0] += 1 }
                    }
                }
                // Competition ranking ("1224"): methods with the same median share the better rank.
                func key(_ m: RunResults.Method) -> Double { m.scores[scorer]!.median.isNaN ? -.infinity : sign * m.scores[scorer]!.median }
                for m in scored {
                    let sc = m.scores[scorer]!
                    let simulability = run.simulability(of: m.name)
                    let deltas = m.fields["convergence_delta"]?.arrayValue?.compactMap(\.doubleValue)
                    rows.append(Row(run: tag, method: m.name, scorer: scorer, median: sc.median, q25: sc.q25, q75: sc.q75,
                                    mean: sc.mean, secondsPerSample: m.seconds.map { $0 / Double(max(run.samples, 1)) },
                                    meanAbsConvergenceDelta: deltas.flatMap { $0.isEmpty ? nil : $0.map(abs).reduce(0, +) / Double($0.count) },
                                    rank: 1 + scored.filter { key($0) > key(m) }.count, wins: wins[m.name] ?? 0,
                                    ties: ties[m.name] ?? 0, simulability: simulability?.median,
                                    higherIsBetter: sign > 0, simulabilityBudget: simulability?.budget))
                    if let c = sc.curves, c.rank == 2, c.shape[0] > 0 {
                        let (p, pts) = (c.shape[0], c.shape[1])
                        let values = c.floatArray()
                        var med: [Double] = [], lo: [Double] = [], hi: [Double] = []
                        for j in 0..<pts {
                            let st = Statistics((0..<p).map { Double(values[$0 * pts + j]) })
                            med.append(st.median); lo.append(st.q25); hi.append(st.q75)
                        }
                        curves.append(Curve(run: tag, method: m.name, scorer: scorer, x: sc.curveX, median: med, q25: lo, q75: hi))
                    }
                }
            }
        }
        self.rows = rows
        self.curves = curves
        self.best = best
    }

    /// Run labels: the runs' names, made unique.
    static func labels(_ runs: [RunResults]) -> [String] {
        var seen: [String: Int] = [:]
        return runs.map { r in
            seen[r.name, default: 0] += 1
            return seen[r.name]! == 1 ? r.name : "\(r.name)#\(seen[r.name]!)"
        }
    }

    // MARK: Output

    public var json: JSONValue {
        func num(_ d: Double?) -> JSONValue { d.map { $0.isFinite ? .double($0) : .null } ?? .null }
        return [
            "runs": .array(zip(runs, Comparison.labels(runs)).map { r, tag in
                ["label": .string(tag), "path": .string(r.root.path), "samples": .int(Int64(r.samples))] }),
            "table": .array(rows.map { r in
                ["run": .string(r.run), "method": .string(r.method), "scorer": .string(r.scorer), "median": num(r.median),
                 "q25": num(r.q25), "q75": num(r.q75), "mean": num(r.mean), "seconds_per_sample": num(r.secondsPerSample),
                 "mean_abs_convergence_delta": num(r.meanAbsConvergenceDelta), "rank": .int(Int64(r.rank)), "wins": .int(Int64(r.wins)), "ties": .int(Int64(r.ties)),
                 "simulability": num(r.simulability), "simulability_budget": r.simulabilityBudget.map { .int(Int64($0)) } ?? .null,
                 "better": .string(r.higherIsBetter ? "higher" : "lower")] }),
            "curves": .array(curves.map { c in
                ["run": .string(c.run), "method": .string(c.method), "scorer": .string(c.scorer),
                 "x": .array(c.x.map(num)), "median": .array(c.median.map(num)), "q25": .array(c.q25.map(num)), "q75": .array(c.q75.map(num))] }),
            "convergence": .array(zip(runs, Comparison.labels(runs)).flatMap { r, tag in
                r.convergence.map { c -> JSONValue in
                    var o = c.objectValue ?? JSONObject()
                    o["run"] = .string(tag)
                    o["fingerprint"] = nil
                    return .object(o)
                }
            }),
            "simulability": .array(zip(runs, Comparison.labels(runs)).flatMap { r, tag in
                r.simulability.map { method, study -> JSONValue in
                    var o = study.objectValue ?? JSONObject()
                    o["run"] = .string(tag)
                    o["method"] = .string(method)
                    return .object(o)
                }
            }),
            "rules": .array(zip(runs, Comparison.labels(runs)).flatMap { r, tag in
                r.ruleSummaries.flatMap { sm in sm.classes.map { c -> JSONValue in
                    ["run": .string(tag), "method": .string(sm.method), "class": .int(Int64(c.classIndex)), "rule": .string(c.rule),
                     "complexity": .int(Int64(c.complexity)), "accuracy": num(c.accuracy), "fidelity": num(c.fidelity),
                     "model_accuracy": num(sm.modelAccuracy)]
                } }
            }),
            "consistency": .array(consistency.map { c in
                ["method": .string(c.method), "class": .int(Int64(c.classIndex)), "runs": .int(Int64(c.runs)),
                 "concepts": .object(JSONObject(c.concepts.map { ($0.0, .double($0.1)) })),
                 "rules": .array(c.rules.map { ["run": .string($0.run), "rule": .string($0.rule), "accuracy": num($0.accuracy)] })]
            }),
            "best_per_sample": .array(best.map { b in
                ["run": .string(b.run), "scorer": .string(b.scorer), "sample": .int(Int64(b.sample)), "method": .string(b.method), "score": num(b.score)] }),
        ]
    }

    /// The score table as CSV (one header row; pandas.read_csv reads it as is).
    public var tableCSV: String {
        var out = "run,method,scorer,median,q25,q75,mean,seconds_per_sample,mean_abs_convergence_delta,rank,wins,ties,simulability,simulability_budget,better\n"
        for r in rows {
            out += [CSV.field(r.run), CSV.field(r.method), CSV.field(r.scorer), CSV.number(r.median), CSV.number(r.q25), CSV.number(r.q75),
                    CSV.number(r.mean), CSV.number(r.secondsPerSample), CSV.number(r.meanAbsConvergenceDelta), String(r.rank), String(r.wins), String(r.ties),
                    CSV.number(r.simulability), r.simulabilityBudget.map(String.init) ?? "", r.higherIsBetter ? "higher" : "lower"]
                .joined(separator: ",") + "\n"
        }
        return out
    }

    /// Per sample and scorer, every method's score and the best method (long format).
    public var samplesCSV: String {
        var out = "run,scorer,sample,label,target,method,score,best\n"
        for (run, tag) in zip(runs, Comparison.labels(runs)) {
            for scorer in run.scorerNames {
                for m in run.methods {
                    guard let sc = m.scores[scorer] else { continue }
                    for (s, v) in sc.perSample.enumerated() {
                        let winner = best.first { $0.run == tag && $0.scorer == scorer && $0.sample == s }?.method
                        out += [CSV.field(tag), CSV.field(scorer), String(s), run.labels.indices.contains(s) ? String(run.labels[s]) : "",
                                run.targets.indices.contains(s) ? String(run.targets[s]) : "", CSV.field(m.name), CSV.number(v),
                                winner == m.name ? "true" : "false"].joined(separator: ",") + "\n"
                    }
                }
            }
        }
        return out
    }

    /// Writes comparison.json, comparison.csv and comparison_samples.csv into `dir`.
    public func write(to dir: URL) throws {
        try AtomicFile.write(json.serialized(pretty: true) + "\n", to: dir.appendingPathComponent("comparison.json"))
        try AtomicFile.write(tableCSV, to: dir.appendingPathComponent("comparison.csv"))
        try AtomicFile.write(samplesCSV, to: dir.appendingPathComponent("comparison_samples.csv"))
    }
}

/// RFC 4180 fields.
enum CSV {
    static func field(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
    static func number(_ d: Double?) -> String {
        guard let d, d.isFinite else { return "" }
        return "\(d)"
    }
}
