extension UnsafeMutablePointer {
    /// `count` elements of new memory, each `value` (the caller deallocates it): the evaluator's per-slot
    /// buffers, which it hands out by pointer and keeps between calls.
    static func filled(_ count: Int, with value: Pointee) -> UnsafeMutablePointer<Pointee> {
        let p = allocate(capacity: count)
        p.initialize(repeating: value, count: count)
        return p
    }
}
