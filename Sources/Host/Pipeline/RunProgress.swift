/// How a run reports what it is doing; the CLI draws progress bars from it.
public protocol RunProgress: AnyObject {
    func stageStarted(_ stage: String, total: Int)
    func stageAdvanced(_ stage: String, done: Int, total: Int)
    func stageFinished(_ stage: String, summary: String)
    func note(_ message: String)
}

/// Reports nothing (library use, tests).
public final class SilentProgress: RunProgress {
    public init() {}
    public func stageStarted(_ stage: String, total: Int) {}
    public func stageAdvanced(_ stage: String, done: Int, total: Int) {}
    public func stageFinished(_ stage: String, summary: String) {}
    public func note(_ message: String) {}
}
