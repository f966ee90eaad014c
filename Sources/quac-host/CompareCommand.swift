import ArgumentParser
import Foundation
import QuacHost

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare methods side by side: score distributions, curves, run time, ranks, best method per sample.",
        discussion: """
        Each argument is a results folder (from `quac-host run`) or a pipeline manifest (run first, reusing \
        finished work). With several, their tables and curves are put side by side. Writes comparison.json, \
        comparison.csv and comparison_samples.csv into --output (default: the first run's folder).
        """)
    @Argument(help: "Results folders or pipeline manifests.") var targets: [String]
    @Option(help: "Where to write the comparison files.") var output: String?
    @OptionGroup var paths: PluginPathOptions
    @Flag(help: "Print the comparison as JSON.") var json = false

    func run() throws {
        try QuacHostCommand.guarded {
            guard !targets.isEmpty else { throw QuacError("compare: give at least one results folder or manifest") }
            var runs: [RunResults] = []
            for t in targets {
                let url = URL(fileURLWithPath: t)
                if t.hasSuffix(".json") {
                    let m = try PipelineManifest.load(url)
                    _ = try PipelineRunner(manifest: m, extraPluginPaths: paths.urls, progress: json ? SilentProgress() : TerminalProgress()).run()
                    runs.append(try RunResults.load(m.output))
                } else {
                    runs.append(try RunResults.load(url))
                }
            }
            let comparison = Comparison(runs)
            let dir = output.map { URL(fileURLWithPath: $0) } ?? runs[0].root
            try comparison.write(to: dir)
            if json { printJSON(comparison.json); return }
            let header = ["run", "method", "scorer", "median", "IQR", "mean", "ms/sample", "rank", "wins"]
            let rows = comparison.rows.map { r in
                [r.run, r.method, r.scorer, String(format: "%.4f", r.median), String(format: "%.4f-%.4f", r.q25, r.q75),
                 String(format: "%.4f", r.mean), r.secondsPerSample.map { String(format: "%.2f", $0 * 1000) } ?? "-",
                 String(r.rank), String(r.wins)]
            }
            let widths = header.indices.map { c in ([header[c]] + rows.map { $0[c] }).map(\.count).max()! }
            for r in [header] + rows { print(r.indices.map { r[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")) }
            print("wrote \(dir.appendingPathComponent("comparison.json").path), comparison.csv, comparison_samples.csv")
        }
    }
}
