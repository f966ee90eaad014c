import Foundation
import Logging

/// What the plugins of one run share through the host services: the run's classifier and converter,
/// cancellation, progress and logging.
public final class RunContext: @unchecked Sendable {
    public var classifier: Classifier?
    public var converter: PluginInstance?
    /// The names of the run's concepts, when it has concepts (QUAC_HOST_EXT_CONCEPTS).
    public var conceptNames: [String]?
    public var logger: Logger
    /// Called with (instance label, done, total, label) for every progress report.
    public var onProgress: ((String, Int64, Int64, String?) -> Void)?
    private let cancelLock = NSLock()
    private var cancelled = false

    public init(logger: Logger = Logger(label: "quac-host")) {
        self.logger = logger
    }

    public var isCancelled: Bool {
        cancelLock.lock(); defer { cancelLock.unlock() }
        return cancelled
    }

    public func cancel() {
        cancelLock.lock(); cancelled = true; cancelLock.unlock()
    }
}
