import Foundation

/// `plugins check` runs each plugin's checks in a child quac-host (the running executable, with the
/// hidden `--in-process --jsonl` options) and reads its results line by line, so a plugin that
/// segfaults or aborts becomes a failed check instead of taking the checker down.
public enum IsolatedCheck {
    public static func run(manifest: PluginManifest, options: [String], onResult: (ConformanceChecker.Result) -> Void) throws -> [ConformanceChecker.Result] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = ["plugins", "check", manifest.url.path, "--in-process", "--jsonl"] + options
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        var results: [ConformanceChecker.Result] = []
        var buffer = Data()
        let handle = out.fileHandleForReading
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let nl = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<nl]
                buffer = Data(buffer[(nl + 1)...])
                guard let v = try? JSONParser.parse([UInt8](line)), let name = v["name"]?.stringValue else { continue }
                let r = ConformanceChecker.Result(name: name, passed: v["passed"]?.boolValue ?? false, detail: v["detail"]?.stringValue ?? "")
                results.append(r)
                onResult(r)
            }
        }
        let stderrText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal {
            let r = ConformanceChecker.Result(name: "no crash", passed: false,
                                              detail: "the plugin crashed the process (signal \(p.terminationStatus)) after check \"\(results.last?.name ?? "start")\"")
            results.append(r)
            onResult(r)
        } else if results.isEmpty {
            let firstLine = stderrText.split(separator: "\n").first.map(String.init) ?? "exit status \(p.terminationStatus)"
            let r = ConformanceChecker.Result(name: "run checks", passed: false, detail: firstLine)
            results.append(r)
            onResult(r)
        }
        return results
    }
}
