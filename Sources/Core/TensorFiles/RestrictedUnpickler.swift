import Foundation

/// A pickle reader that understands exactly what a weights-only PyTorch checkpoint needs and nothing
/// more: containers (dict, OrderedDict, list, tuple), strings, bytes, numbers, booleans, None, the
/// tensor-rebuild calls and the storage types. Every other global is refused by name before anything
/// is called (nothing is ever imported or run: the "calls" below are the reader's own code), so a
/// hostile file can do no more than fail. Objects are references, as in Python, so a dict filled after
/// it was memoized is the same dict when fetched again.
struct RestrictedUnpickler {
    /// A value on the pickle machine's stack.
    indirect enum Value {
        case none, bool(Bool), int(Int64), bigInt([UInt8]), float(Double), string(String), bytes([UInt8])
        case list(ListBox), tuple([Value]), dict(DictBox)
        /// An allowed global: "module.name".
        case global(String)
        /// A persistent id resolved by the caller (a storage).
        case storage(StorageRef)
        /// A tensor to be cut from a storage once every storage is known.
        case tensor(TensorRef)
    }

    final class ListBox { var items: [Value] = [] }
    final class DictBox { var items: [(Value, Value)] = [] }

    /// A storage of a checkpoint: its element type, key and element count.
    struct StorageRef { let dtype: DType; let key: String; let count: Int }

    /// A view of a storage: offset, sizes and strides in elements.
    final class TensorRef {
        let storage: StorageRef
        let offset: Int
        let shape: [Int]
        let strides: [Int]
        init(storage: StorageRef, offset: Int, shape: [Int], strides: [Int]) {
            self.storage = storage; self.offset = offset; self.shape = shape; self.strides = strides
        }
    }

    static let storageTypes: [String: DType] = [
        "torch.FloatStorage": .float32, "torch.DoubleStorage": .float64, "torch.HalfStorage": .float16,
        "torch.BFloat16Storage": .bfloat16, "torch.LongStorage": .int64, "torch.IntStorage": .int32,
        "torch.ShortStorage": .int16, "torch.CharStorage": .int8, "torch.ByteStorage": .uint8, "torch.BoolStorage": .bool,
    ]
    static let callables: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter",
    ]

    let bytes: UnsafeRawBufferPointer
    let path: String
    /// Turns a persistent id (a tuple) into a value: the checkpoint's storages.
    let persistentLoad: ([Value]) throws -> Value
    var position: Int

    init(_ bytes: UnsafeRawBufferPointer, at position: Int = 0, path: String, persistentLoad: @escaping ([Value]) throws -> Value) {
        self.bytes = bytes
        self.position = position
        self.path = path
        self.persistentLoad = persistentLoad
    }

    func fail(_ reason: String) -> FileError { FileError(path: path, reason: "pickle: \(reason)") }

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - position else { throw fail("truncated (wanted \(n) bytes at offset \(position))") }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }
    private mutating func byte() throws -> UInt8 { try take(1)[0] }
    private mutating func le(_ n: Int) throws -> UInt64 {
        let b = try take(n)
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(b[i]) << (8 * UInt64(i)) }
        return v
    }
    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A), end - position <= 4096 else { throw fail("unterminated text at offset \(position)") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
        position = end + 1
        return text
    }

    /// Reads one pickle (up to its STOP) and returns its value.
    mutating func load() throws -> Value {
        var stack: [Value] = []
        var marks: [Int] = []
        var memo: [Int: Value] = [:]
        let limit = 10_000_000
        func pop() throws -> Value {
            guard let v = stack.popLast() else { throw fail("stack underflow at offset \(position)") }
            if let m = marks.last, stack.count < m { throw fail("stack underflow past a mark at offset \(position)") }
            return v
        }
        func popMark() throws -> [Value] {
            guard let m = marks.popLast(), m <= stack.count else { throw fail("no mark at offset \(position)") }
            defer { stack.removeSubrange(m...) }
            return Array(stack[m...])
        }
        func push(_ v: Value) throws {
            guard stack.count < limit else { throw fail("more than \(limit) values on the stack") }
            stack.append(v)
        }
        func memoize(_ key: Int) throws {
            guard let top = stack.last else { throw fail("memo store with an empty stack at offset \(position)") }
            guard memo.count < limit else { throw fail("more than \(limit) memo entries") }
            memo[key] = top
        }
        func fetch(_ key: Int) throws -> Value {
            guard let v = memo[key] else { throw fail("memo entry \(key) used before it was stored") }
            return v
        }
        func string(_ b: UnsafeRawBufferPointer) -> Value { .string(String(decoding: b, as: UTF8.self)) }
        func setItems(_ target: Value, _ pairs: [Value]) throws {
            guard case .dict(let d) = target else { throw fail("SETITEMS on something that is not a dict") }
            guard pairs.count % 2 == 0 else { throw fail("odd number of values for SETITEMS") }
            for i in stride(from: 0, to: pairs.count, by: 2) { d.items.append((pairs[i], pairs[i + 1])) }
        }
        func append(_ target: Value, _ items: [Value]) throws {
            guard case .list(let l) = target else { throw fail("APPEND on something that is not a list") }
            l.items += items
        }
        func global(_ module: String, _ name: String) throws -> Value {
            let full = "\(module).\(name)"
            guard Self.callables.contains(full) || Self.storageTypes[full] != nil else {
                throw fail("refused global \(full): only weights are read from a checkpoint (dicts, lists, numbers, strings and tensors), no other object and no code")
            }
            return .global(full)
        }

        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                   // PROTO
            case 0x95: _ = try take(8)                                  // FRAME
            case 0x2E: return try pop()                                 // STOP
            case 0x28: marks.append(stack.count)                        // MARK
            case 0x4E: try push(.none)                                  // NONE
            case 0x88: try push(.bool(true))                            // NEWTRUE
            case 0x89: try push(.bool(false))                           // NEWFALSE
            case 0x4B: try push(.int(Int64(try byte())))                // BININT1
            case 0x4D: try push(.int(Int64(try le(2))))                 // BININT2
            case 0x4A: try push(.int(Int64(Int32(bitPattern: UInt32(try le(4))))))   // BININT
            case 0x8A, 0x8B:                                            // LONG1, LONG4
                let n = op == 0x8A ? Int(try byte()) : Int(try le(4))
                let b = try take(n)
                if n <= 8 {
                    var v: UInt64 = 0
                    for i in 0..<n { v |= UInt64(b[i]) << (8 * UInt64(i)) }
                    // Sign-extend from the top byte (two's complement, little-endian).
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(n)) }
                    try push(.int(Int64(bitPattern: v)))
                } else {
                    try push(.bigInt(Array(b)))
                }
            case 0x47:                                                  // BINFLOAT (big-endian)
                let b = try take(8)
                var v: UInt64 = 0
                for i in 0..<8 { v = v << 8 | UInt64(b[i]) }
                try push(.float(Double(bitPattern: v)))
            case 0x58: try push(string(try take(Int(try le(4)))))       // BINUNICODE
            case 0x8C: try push(string(try take(Int(try byte()))))      // SHORT_BINUNICODE
            case 0x8D:                                                  // BINUNICODE8
                let n = try le(8)
                guard n <= UInt64(bytes.count) else { throw fail("string of \(n) bytes is longer than the file") }
                try push(string(try take(Int(n))))
            case 0x54: try push(.bytes(Array(try take(Int(try le(4))))))   // BINSTRING (legacy str)
            case 0x55: try push(.bytes(Array(try take(Int(try byte())))))  // SHORT_BINSTRING
            case 0x42: try push(.bytes(Array(try take(Int(try le(4))))))   // BINBYTES
            case 0x43: try push(.bytes(Array(try take(Int(try byte())))))  // SHORT_BINBYTES
            case 0x7D: try push(.dict(DictBox()))                       // EMPTY_DICT
            case 0x5D: try push(.list(ListBox()))                       // EMPTY_LIST
            case 0x29: try push(.tuple([]))                             // EMPTY_TUPLE
            case 0x74: try push(.tuple(try popMark()))                  // TUPLE
            case 0x85: try push(.tuple([try pop()]))                    // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); try push(.tuple([a, b]))                  // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); try push(.tuple([a, b, c]))  // TUPLE3
            case 0x6C: let items = try popMark(); let l = ListBox(); l.items = items; try push(.list(l))   // LIST
            case 0x64:                                                  // DICT
                let items = try popMark(); let d = DictBox(); try push(.dict(d)); try setItems(.dict(d), items)
            case 0x73: let v = try pop(), k = try pop(); guard let t = stack.last else { throw fail("SETITEM without a dict") }; try setItems(t, [k, v])
            case 0x75: let items = try popMark(); guard let t = stack.last else { throw fail("SETITEMS without a dict") }; try setItems(t, items)
            case 0x61: let v = try pop(); guard let t = stack.last else { throw fail("APPEND without a list") }; try append(t, [v])
            case 0x65: let items = try popMark(); guard let t = stack.last else { throw fail("APPENDS without a list") }; try append(t, items)
            case 0x71: try memoize(Int(try byte()))                     // BINPUT
            case 0x72: try memoize(Int(try le(4)))                      // LONG_BINPUT
            case 0x94: try memoize(memo.count)                          // MEMOIZE
            case 0x68: try push(try fetch(Int(try byte())))             // BINGET
            case 0x6A: try push(try fetch(Int(try le(4))))              // LONG_BINGET
            case 0x63:                                                  // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                try push(try global(module, name))
            case 0x93:                                                  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL needs two strings") }
                try push(try global(module, name))
            case 0x51:                                                  // BINPERSID
                guard case .tuple(let pid) = try pop() else { throw fail("persistent id is not a tuple") }
                try push(try persistentLoad(pid))
            case 0x52:                                                  // REDUCE
                guard case .tuple(let args) = try pop() else { throw fail("REDUCE arguments are not a tuple") }
                guard case .global(let callable) = try pop() else { throw fail("REDUCE of something that is not an allowed function") }
                try push(try call(callable, args))
            case 0x62:                                                  // BUILD: attributes of an object
                let state = try pop()
                guard let target = stack.last else { throw fail("BUILD without an object") }
                switch (target, state) {
                case (.dict, .dict), (.dict, .none), (.tensor, _): break   // an OrderedDict's _metadata, a tensor's hooks
                default: throw fail("BUILD of an object this reader does not know")
                }
            case 0x81, 0x92, 0x6F, 0x69, 0x50:                            // NEWOBJ, NEWOBJ_EX, OBJ, INST, PERSID (text)
                throw fail("refused opcode 0x\(String(op, radix: 16)) at offset \(position - 1): it builds arbitrary objects")
            default:
                throw fail("unsupported opcode 0x\(String(op, radix: 16)) at offset \(position - 1)")
            }
        }
    }

    /// The allowed functions, done by the reader itself.
    func call(_ callable: String, _ args: [Value]) throws -> Value {
        switch callable {
        case "collections.OrderedDict":
            guard args.isEmpty else { throw fail("OrderedDict with arguments") }
            return .dict(DictBox())
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard args.count >= 4, case .storage(let s) = args[0], case .int(let offset) = args[1],
                  case .tuple(let size) = args[2], case .tuple(let stride) = args[3] else {
                throw fail("\(callable): expected (storage, offset, size, stride, ...)")
            }
            func ints(_ v: [Value], _ what: String) throws -> [Int] {
                // The message names the entry, not the tuple: printing nested values recurses as deep as they nest.
                try v.map {
                    guard case .int(let i) = $0 else { throw fail("\(callable): a \(what) entry that is not an integer") }
                    guard i >= 0, i <= Int64(Int32.max) else { throw fail("\(callable): bad \(what) \(i)") }
                    return Int(i)
                }
            }
            let shape = try ints(size, "size"), strides = try ints(stride, "stride")
            guard shape.count == strides.count, shape.count <= 64, offset >= 0 else { throw fail("\(callable): size and stride disagree") }
            return .tensor(TensorRef(storage: s, offset: Int(offset), shape: shape, strides: strides))
        case "torch._utils._rebuild_parameter":
            guard let first = args.first, case .tensor = first else { throw fail("_rebuild_parameter without a tensor") }
            return first
        default:
            throw fail("\(callable) cannot be called")
        }
    }
}
