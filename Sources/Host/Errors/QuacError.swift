/// Every failure the host reports to a user: one line, naming the file and the field (JSON pointer)
/// or the plugin it is about. `exitCode` follows the CLI's contract: 1 for bad input (a file, a
/// manifest, a plugin that refused), 2 for the host's own bugs, 130 for a run the user stopped
/// (Ctrl-C: the shell's code for SIGINT).
public struct QuacError: Error, CustomStringConvertible, Sendable {
    public enum Category: Sendable { case user, `internal`, cancelled }
    public let message: String
    public let category: Category

    public init(_ message: String, category: Category = .user) {
        self.message = message
        self.category = category
    }

    /// "file: /pointer: reason", the shape of every manifest error.
    public static func at(_ file: String, _ pointer: String, _ reason: String) -> QuacError {
        QuacError("\(file): \(JSONPointer.display(pointer)): \(reason)")
    }

    public var description: String { message }
    public var exitCode: Int32 {
        switch category {
        case .user: return 1
        case .internal: return 2
        case .cancelled: return 130
        }
    }

    /// A run stopped at the user's request; what it finished is kept.
    public static let cancelled = QuacError("cancelled; finished work is kept and a rerun resumes from it", category: .cancelled)
}

extension QuacError {
    /// Wraps any error as a QuacError, keeping the message of errors that already say where they are.
    public static func wrap(_ error: Error, context: String? = nil) -> QuacError {
        let base: QuacError
        switch error {
        case let e as QuacError: base = e
        case let e as FileError: base = QuacError(e.description)
        case let e as TensorError: base = QuacError(e.description)
        default: base = QuacError(String(describing: error))
        }
        guard let context else { return base }
        return QuacError("\(context): \(base.message)", category: base.category)
    }
}
