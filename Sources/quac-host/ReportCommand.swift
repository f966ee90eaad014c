import ArgumentParser
import Foundation
import QuacHost

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the HTML report of one or more results folders, from what they hold (nothing is recomputed).",
        discussion: "Also writes the comparison (comparison.json, comparison.csv, comparison_samples.csv) beside the report.")
    @Argument(help: "Results folders.") var runs: [String]
    @Option(help: "Output HTML file (default: report.html in the first folder).") var output: String?
    @Option(help: "Samples drawn per run in the grid.") var samples = 48

    func run() throws {
        try QuacHostCommand.guarded {
            guard !runs.isEmpty else { throw QuacError("report: give at least one results folder") }
            let results = try runs.map { try RunResults.load(URL(fileURLWithPath: $0)) }
            let comparison = Comparison(results)
            var report = HTMLReport(comparison: comparison)
            report.maxSamples = samples
            let url = output.map { URL(fileURLWithPath: $0) } ?? results[0].root.appendingPathComponent("report.html")
            // The numbers behind the page, next to it.
            try comparison.write(to: url.deletingLastPathComponent())
            try report.write(to: url)
            print("report: \(url.path)")
        }
    }
}
