import Foundation
import QuacHost

/// Progress on stderr: a redrawn bar on a terminal, one line per finished stage otherwise (logs stay
/// readable in CI).
final class TerminalProgress: RunProgress {
    private let isTTY = isatty(STDERR_FILENO) != 0
    private var started: [String: Date] = [:]

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    func stageStarted(_ stage: String, total: Int) {
        started[stage] = Date()
        if isTTY { draw(stage, 0, total) }
    }

    func stageAdvanced(_ stage: String, done: Int, total: Int) {
        if isTTY { draw(stage, done, total) }
    }

    func stageFinished(_ stage: String, summary: String) {
        let seconds = started[stage].map { Date().timeIntervalSince($0) } ?? 0
        write((isTTY ? "\r\u{1B}[2K" : "") + String(format: "%@: done in %.1f s (%@)\n", stage, seconds, summary))
    }

    func note(_ message: String) { write((isTTY ? "\r\u{1B}[2K" : "") + message + "\n") }

    private func draw(_ stage: String, _ done: Int, _ total: Int) {
        let width = 30
        let filled = total > 0 ? width * done / total : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let elapsed = started[stage].map { Date().timeIntervalSince($0) } ?? 0
        let eta = done > 0 && total > done ? String(format: " eta %.0fs", elapsed / Double(done) * Double(total - done)) : ""
        write("\r\u{1B}[2K\(stage) [\(bar)] \(done)/\(total)\(eta)")
    }
}

/// Ctrl-C asks the run to stop at the next batch boundary (finished files are kept); a second one
/// exits at once.
enum Signals {
    nonisolated(unsafe) private static var context: RunContext?
    nonisolated(unsafe) private static var source: DispatchSourceSignal?

    static func cancelOnInterrupt(_ c: RunContext) {
        context = c
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler {
            if context?.isCancelled == true { exit(130) }
            FileHandle.standardError.write(Data("\ninterrupt: stopping after the current batch (press Ctrl-C again to abort)\n".utf8))
            context?.cancel()
        }
        s.resume()
        source = s
    }
}
