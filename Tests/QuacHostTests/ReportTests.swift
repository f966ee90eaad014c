import Foundation
import XCTest
@testable import QuacHost

/// The comparison files and the HTML report: numbers agree with the results store, pandas reads the
/// CSV and JSON as they are, and a real browser renders the page without console errors.
final class ReportTests: XCTestCase {
    /// A finished toy run with several methods and a scorer.
    func makeRun() throws -> URL {
        let dir = try TestSupport.tempDir()
        let r = try TestSupport.quacHost(["data", "toy", "--output", dir.appendingPathComponent("data").path, "--count", "12", "--size", "8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let manifest = try TestSupport.writeManifest(dir, [
            "name": "report-test", "output": "out", "batch_size": 5,
            "data": ["format": "safetensors", "path": "data/data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 0, "weights": "data/model.safetensors"]],
            "attributors": [["plugin": "org.quac.saliency"], ["plugin": "org.quac.residual"], ["plugin": "org.quac.occlusion", "params": ["window": 2]]],
            "scorers": [["plugin": "org.quac.insertion", "params": ["steps": 10]]],
        ])
        let run = try TestSupport.quacHost(["run", manifest.path, "-q"])
        XCTAssertEqual(run.status, 0, run.stderr)
        return dir.appendingPathComponent("out")
    }

    func testComparisonNumbersComeFromTheScores() throws {
        let out = try makeRun()
        let r = try TestSupport.quacHost(["compare", out.path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let c = try JSONParser.parse(r.stdout)
        let table = c["table"]?.arrayValue ?? []
        XCTAssertEqual(table.count, 3)
        for row in table {
            let method = row["method"]!.stringValue!
            let scores = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("scores/\(method).json"), encoding: .utf8))
            let values = scores["scorers"]?["insertion"]?["score"]?.arrayValue?.compactMap(\.doubleValue) ?? []
            XCTAssertEqual(values.count, 12)
            let sorted = values.sorted()
            XCTAssertEqual(row["median"]?.doubleValue ?? .nan, (sorted[5] + sorted[6]) / 2, accuracy: 1e-12, method)
            XCTAssertEqual(row["mean"]?.doubleValue ?? .nan, values.reduce(0, +) / 12, accuracy: 1e-12, method)
        }
        // Ranks order the medians; a win is a sample where one method alone scores highest.
        let byRank = table.sorted { $0["rank"]!.intValue! < $1["rank"]!.intValue! }.map { $0["median"]!.doubleValue! }
        XCTAssertEqual(byRank, byRank.sorted(by: >))
        var uniqueTops = 0
        for s in 0..<12 {
            let values = try table.map { row -> Double in
                let method = row["method"]!.stringValue!
                let scores = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("scores/\(method).json"), encoding: .utf8))
                return scores["scorers"]!["insertion"]!["score"]![s]!.doubleValue!
            }
            if values.filter({ $0 == values.max()! }).count == 1 { uniqueTops += 1 }
        }
        XCTAssertEqual(table.compactMap { $0["wins"]?.intValue }.reduce(0, +), Int64(uniqueTops))
        XCTAssertEqual(c["curves"]?.arrayValue?.first?["median"]?.arrayValue?.count, 11)
    }

    /// Three methods with the same scores on every sample: one shared rank, no wins, every sample a tie.
    func testTiedMethodsShareARankAndWinNothing() throws {
        let dir = try TestSupport.tempDir()
        let r = try TestSupport.quacHost(["data", "toy", "--output", dir.appendingPathComponent("data").path, "--count", "8", "--size", "8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let manifest = try TestSupport.writeManifest(dir, [
            "name": "ties", "output": "out", "batch_size": 4,
            "data": ["format": "safetensors", "path": "data/data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 0, "weights": "data/model.safetensors"]],
            "attributors": [["plugin": "org.quac.saliency", "name": "a"], ["plugin": "org.quac.saliency", "name": "b"],
                            ["plugin": "org.quac.saliency", "name": "c"]],
            "scorers": [["plugin": "org.quac.insertion", "params": ["steps": 4]]],
        ])
        let run = try TestSupport.quacHost(["run", manifest.path, "-q"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let c = try TestSupport.quacHost(["compare", dir.appendingPathComponent("out").path, "--json"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let doc = try JSONParser.parse(c.stdout)
        let table = doc["table"]?.arrayValue ?? []
        XCTAssertEqual(table.count, 3)
        XCTAssertEqual(table.compactMap { $0["rank"]?.intValue }, [1, 1, 1])
        XCTAssertEqual(table.compactMap { $0["wins"]?.intValue }, [0, 0, 0])
        XCTAssertEqual(table.compactMap { $0["ties"]?.intValue }, [8, 8, 8])
        XCTAssertEqual(doc["best_per_sample"]?.arrayValue?.count, 0)
    }

    func testPandasReadsTheCSVAndJSON() throws {
        guard let python = ProcessInfo.processInfo.environment["QUAC_TEST_PYTHON"] else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI must set QUAC_TEST_PYTHON (make test does)") }
            throw XCTSkip("set QUAC_TEST_PYTHON to a Python with pandas (make test creates .venv-test)")
        }
        let out = try makeRun()
        XCTAssertEqual(try TestSupport.quacHost(["compare", out.path]).status, 0)
        let script = """
        import json, sys, pandas as pd
        d = sys.argv[1]
        t = pd.read_csv(d + "/comparison.csv")
        s = pd.read_csv(d + "/comparison_samples.csv")
        j = json.load(open(d + "/comparison.json"))
        assert list(t.columns[:4]) == ["run", "method", "scorer", "median"], list(t.columns)
        assert len(t) == 3 and t["median"].dtype.kind == "f" and t["rank"].dtype.kind == "i", t.dtypes
        assert len(s) == 3 * 12 and s["best"].dtype == bool and s.groupby("sample")["best"].sum().eq(1).all()
        jt = pd.DataFrame(j["table"])
        m = t.merge(jt, on=["method", "scorer"], suffixes=("", "_json"))
        assert (m["median"] - m["median_json"]).abs().max() < 1e-12
        for method, g in s.groupby("method"):
            assert abs(g["score"].median() - t.set_index("method").loc[method, "median"]) < 1e-9, method
        print("pandas ok", len(t), len(s))
        """
        let r = try TestSupport.run(URL(fileURLWithPath: python), ["-c", script, out.path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("pandas ok 3 36"), r.stdout)
    }

    func chromium() -> URL? {
        for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] where FileManager.default.isExecutableFile(atPath: p) {
            return URL(fileURLWithPath: p)
        }
        return nil
    }

    func testTheReportRendersInAHeadlessBrowser() throws {
        guard let browser = chromium() else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI must install chromium (scripts/setup.sh --test does)") }
            throw XCTSkip("chromium is not installed (scripts/setup.sh --test installs it)")
        }
        let out = try makeRun()
        XCTAssertEqual(try TestSupport.quacHost(["report", out.path]).status, 0)
        let page = out.appendingPathComponent("report.html")
        let html = try String(contentsOf: page, encoding: .utf8)
        XCTAssertFalse(html.contains("http://") || html.contains("https://") || html.contains("<script src"), "self-contained")
        let common = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files",
                      "--user-data-dir=\(out.appendingPathComponent(".chromium").path)"]

        // The DOM after the page's script ran: the script fills in the sample count, and the table's
        // numbers are the comparison's.
        let dom = try TestSupport.run(browser, common + ["--enable-logging=stderr", "--v=0", "--dump-dom", page.absoluteString])
        XCTAssertEqual(dom.status, 0, dom.stderr)
        let consoleErrors = dom.stderr.split(separator: "\n").filter { $0.contains("CONSOLE") && ($0.contains("Uncaught") || $0.contains(":ERROR:")) }
        XCTAssertEqual(consoleErrors, [], "console errors")
        XCTAssertTrue(dom.stdout.contains("12 of 12 samples shown"), "the page's script ran")
        XCTAssertTrue(dom.stdout.contains("id=\"score-table\"") && dom.stdout.contains("<svg class=\"chart\""))
        XCTAssertEqual(dom.stdout.components(separatedBy: "<polyline").count - 1, 3, "one curve per method")
        let comparison = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("comparison.json"), encoding: .utf8))
        for row in comparison["table"]?.arrayValue ?? [] {
            let median = row["median"]!.doubleValue!
            XCTAssertTrue(dom.stdout.contains("data-value=\"\(median)\">\(String(format: "%.4f", median))</td>"), "median of \(row["method"]!)")
        }
        let rows = dom.stdout.components(separatedBy: "<tr data-source=").count - 1
        XCTAssertEqual(rows, 12, "one grid row per sample")

        // The screenshot shows a page with content: many colours (images, heatmaps, chart), not a blank.
        let shot = out.appendingPathComponent("report.png")
        let s = try TestSupport.run(browser, common + ["--window-size=1280,1600", "--screenshot=\(shot.path)", page.absoluteString])
        XCTAssertEqual(s.status, 0, s.stderr)
        let image = try PNGFile.read(shot)
        XCTAssertEqual(image.width, 1280)
        guard case .uint8(let px) = image.samples else { return XCTFail("8-bit screenshot expected") }
        var colours = Set<UInt32>()
        for i in stride(from: 0, to: px.count - image.channels, by: image.channels * 7) {
            colours.insert(UInt32(px[i]) << 16 | UInt32(px[i + 1]) << 8 | UInt32(px[i + 2]))
        }
        XCTAssertGreaterThan(colours.count, 200, "the rendered page has images, heatmaps and a chart")
    }

    /// Two runs (here: two settings of one method) side by side in one table, one set of curves each,
    /// and one report.
    func testTwoRunsSideBySide() throws {
        let a = try makeRun(), b = try makeRun()
        // Same run name twice: the labels are made unique.
        let r = try TestSupport.quacHost(["compare", a.path, b.path, "--json", "--output", b.deletingLastPathComponent().path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let c = try JSONParser.parse(r.stdout)
        let labels = Set((c["table"]?.arrayValue ?? []).compactMap { $0["run"]?.stringValue })
        XCTAssertEqual(labels, ["report-test", "report-test#2"])
        XCTAssertEqual(c["table"]?.arrayValue?.count, 6)
        XCTAssertEqual(Set((c["curves"]?.arrayValue ?? []).compactMap { $0["run"]?.stringValue }), labels)
        let page = b.deletingLastPathComponent().appendingPathComponent("both.html")
        XCTAssertEqual(try TestSupport.quacHost(["report", a.path, b.path, "--output", page.path]).status, 0)
        let html = try String(contentsOf: page, encoding: .utf8)
        XCTAssertTrue(html.contains("report-test#2: insertion"), "one chart per run and scorer")
        XCTAssertEqual(html.components(separatedBy: "<table class=\"samples\"").count - 1, 2, "a sample grid per run")
    }
}
