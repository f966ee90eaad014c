import Foundation

/// Reads the files `torch.save` writes, without Python and without running anything they contain:
/// the zip container (`<archive>/data.pkl` plus one raw entry per storage under `<archive>/data/`) and
/// the older single-stream format (magic number, protocol, system info, the object, the storage keys,
/// then each storage as an 8-byte element count and its bytes). The pickle is read by
/// `RestrictedUnpickler`, which refuses every global but the few a weights-only file needs. Tensors
/// come out contiguous, in their stored dtype, with strides, storage offsets and storages shared
/// between tensors honoured. Big-endian files and unknown storage types are refused.
public struct TorchCheckpoint {
    /// What a checkpoint holds, with Python's containers as Swift ones.
    public indirect enum Value {
        case none, bool(Bool), int(Int64), float(Double), string(String), bytes([UInt8])
        case list([Value]), dict([(String, Value)]), tensor(Tensor)
    }

    public let root: Value

    public static func read(_ url: URL) throws -> TorchCheckpoint {
        let file = try MappedFile(path: url.path)
        return try withExtendedLifetime(file) {
            try read(UnsafeRawBufferPointer(start: file.storage.base, count: file.byteCount), path: url.path)
        }
    }

    /// Reads from bytes in memory (`path` names them in messages). The tensors are copies.
    public static func read(_ bytes: UnsafeRawBufferPointer, path: String) throws -> TorchCheckpoint {
        if ZipArchive.isZip(bytes) { return try readZip(bytes, path: path) }
        if bytes.count >= 2, bytes[0] == 0x80 { return try readLegacy(bytes, path: path) }
        throw FileError(path: path, reason: "not a PyTorch checkpoint (neither a torch.save zip archive nor the legacy pickle format)")
    }

    /// Every tensor, named by its path ("/" between dict levels and list indices), in file order, and
    /// the paths of the values that are not tensors.
    public func tensors() -> (named: [(String, Tensor)], others: [String]) {
        var named: [(String, Tensor)] = [], others: [String] = []
        func walk(_ v: Value, _ path: String) {
            switch v {
            case .tensor(let t): named.append((path, t))
            case .dict(let items): for (k, x) in items { walk(x, path.isEmpty ? k : path + "/" + k) }
            case .list(let items): for (i, x) in items.enumerated() { walk(x, path.isEmpty ? String(i) : path + "/\(i)") }
            default: others.append(path.isEmpty ? "(root)" : path)
            }
        }
        walk(root, "")
        return (named, others)
    }

    // MARK: Containers

    static func readZip(_ bytes: UnsafeRawBufferPointer, path: String) throws -> TorchCheckpoint {
        let zip = try ZipArchive(bytes, path: path)
        guard let pickleName = zip.names.first(where: { $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }) else {
            throw FileError(path: path, reason: "zip archive without data.pkl: not a torch.save file")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = zip.entries[prefix + "byteorder"] {
            let text = String(decoding: zip.data(order), as: UTF8.self)
            guard text == "little" else { throw FileError(path: path, reason: "byteorder \"\(text)\": only little-endian checkpoints are read") }
        }
        var storages: [String: UnsafeRawBufferPointer] = [:]
        var unpickler = RestrictedUnpickler(zip.data(zip.entries[pickleName]!), path: path + ":" + pickleName) { pid in
            let ref = try storageRef(pid, path: path, legacy: false)
            guard let entry = zip.entries[prefix + "data/" + ref.key] else {
                throw FileError(path: path, reason: "storage \(ref.key) has no entry \(prefix)data/\(ref.key)")
            }
            storages[ref.key] = zip.data(entry)
            return .storage(ref)
        }
        let value = try unpickler.load()
        return TorchCheckpoint(root: try convert(value, storages: storages, path: path, Conversion(bytes.count)))
    }

    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    static func readLegacy(_ bytes: UnsafeRawBufferPointer, path: String) throws -> TorchCheckpoint {
        func fail(_ reason: String) -> FileError { FileError(path: path, reason: "legacy format: \(reason)") }
        var position = 0
        func next(_ persistentLoad: @escaping ([RestrictedUnpickler.Value]) throws -> RestrictedUnpickler.Value = { _ in
            throw FileError(path: path, reason: "pickle: persistent id outside the object")
        }) throws -> RestrictedUnpickler.Value {
            var u = RestrictedUnpickler(bytes, at: position, path: path, persistentLoad: persistentLoad)
            let v = try u.load()
            position = u.position
            return v
        }
        guard case .bigInt(let magic) = try next(), magic == legacyMagic else { throw fail("bad magic number: not a torch.save file") }
        guard case .int(1001) = try next() else { throw fail("unknown protocol version") }
        guard case .dict(let info) = try next() else { throw fail("no system information") }
        for (k, v) in info.items {
            if case .string("little_endian") = k, case .bool(false) = v { throw fail("big-endian checkpoint: only little-endian checkpoints are read") }
        }
        var refs: [String: RestrictedUnpickler.StorageRef] = [:]
        let object = try next { pid in
            let ref = try storageRef(pid, path: path, legacy: true)
            refs[ref.key] = ref
            return .storage(ref)
        }
        guard case .list(let keyList) = try next() else { throw fail("no list of storage keys") }
        var storages: [String: UnsafeRawBufferPointer] = [:]
        for k in keyList.items {
            guard case .string(let key) = k else { throw fail("a storage key is not a string") }
            guard position + 8 <= bytes.count else { throw fail("truncated before storage \(key)") }
            var count: UInt64 = 0
            for i in 0..<8 { count |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            let size = refs[key]?.dtype.byteSize ?? 1
            guard count <= UInt64(bytes.count - position) / UInt64(size) else { throw fail("storage \(key) of \(count) elements runs past the end of the file (truncated?)") }
            let n = Int(count) * size
            storages[key] = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
            position += n
        }
        return TorchCheckpoint(root: try convert(object, storages: storages, path: path, Conversion(bytes.count)))
    }

    /// ('storage', storage type, key, location, element count[, view metadata]).
    static func storageRef(_ pid: [RestrictedUnpickler.Value], path: String, legacy: Bool) throws -> RestrictedUnpickler.StorageRef {
        guard pid.count >= 5, case .string("storage") = pid[0] else {
            throw FileError(path: path, reason: "pickle: persistent id is not a storage reference")
        }
        guard case .global(let type) = pid[1], let dtype = RestrictedUnpickler.storageTypes[type] else {
            throw FileError(path: path, reason: "pickle: unknown storage type in a persistent id")
        }
        let key: String
        switch pid[2] {
        case .string(let s): key = s
        case .int(let i): key = String(i)
        default: throw FileError(path: path, reason: "pickle: storage key is neither a string nor a number")
        }
        guard case .int(let count) = pid[4], count >= 0 else { throw FileError(path: path, reason: "pickle: storage \(key) has no element count") }
        if legacy, pid.count > 5, case .tuple = pid[5] {
            throw FileError(path: path, reason: "storage \(key) is a view of another storage (legacy format): not supported; re-save the checkpoint with a current torch.save")
        }
        return RestrictedUnpickler.StorageRef(dtype: dtype, key: key, count: Int(count))
    }

    // MARK: Values and tensors

    /// What one conversion has done so far. The pickle's memo lets a container hold the same object
    /// twice, so a few bytes per level can describe a tree of 2^levels values: the values converted
    /// are counted against a limit that no file without such sharing reaches (a value per byte), and
    /// a tensor met again is the tensor already cut, not another copy.
    final class Conversion {
        let limit: Int
        var values = 0
        var tensors: [ObjectIdentifier: Tensor] = [:]
        init(_ fileSize: Int) { limit = max(1_000_000, fileSize) }
    }

    static func convert(_ v: RestrictedUnpickler.Value, storages: [String: UnsafeRawBufferPointer], path: String, _ conversion: Conversion, depth: Int = 0) throws -> Value {
        guard depth < 1000 else { throw FileError(path: path, reason: "containers nested more than 1000 deep") }
        conversion.values += 1
        guard conversion.values <= conversion.limit else {
            throw FileError(path: path, reason: "more than \(conversion.limit) values: containers that hold the same containers over and over")
        }
        func sub(_ x: RestrictedUnpickler.Value) throws -> Value { try convert(x, storages: storages, path: path, conversion, depth: depth + 1) }
        switch v {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt: throw FileError(path: path, reason: "an integer wider than 64 bits")
        case .float(let f): return .float(f)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .list(let l): return .list(try l.items.map(sub))
        case .tuple(let t): return .list(try t.map(sub))
        case .dict(let d):
            return .dict(try d.items.map { k, x in
                switch k {
                case .string(let s): return (s, try sub(x))
                case .int(let i): return (String(i), try sub(x))
                default: throw FileError(path: path, reason: "a dict key that is neither a string nor a number")
                }
            })
        case .global(let g): throw FileError(path: path, reason: "the function \(g) stored as a value, not called")
        case .storage(let s): throw FileError(path: path, reason: "a bare storage (\(s.key)) outside a tensor")
        case .tensor(let ref):
            if let done = conversion.tensors[ObjectIdentifier(ref)] { return .tensor(done) }
            guard let data = storages[ref.storage.key] else { throw FileError(path: path, reason: "storage \(ref.storage.key) has no data") }
            let tensor = try materialize(ref, data, path: path)
            conversion.tensors[ObjectIdentifier(ref)] = tensor
            return .tensor(tensor)
        }
    }

    /// A contiguous copy of a strided view of a storage, bounds-checked.
    static func materialize(_ ref: RestrictedUnpickler.TensorRef, _ data: UnsafeRawBufferPointer, path: String) throws -> Tensor {
        let size = ref.storage.dtype.byteSize
        let available = data.count / size
        guard ref.storage.count <= available else {
            throw FileError(path: path, reason: "storage \(ref.storage.key) claims \(ref.storage.count) elements, its data holds \(available)")
        }
        if let problem = MemoryBudget.problem(ref.shape.enumerated().map { ("size[\($0.offset)]", $0.element) }, bytesEach: size) {
            throw FileError(path: path, reason: "a tensor of storage \(ref.storage.key): \(problem)")
        }
        let count = ref.shape.reduce(1, *)
        let out = Tensor(zeros: ref.shape, dtype: ref.storage.dtype)
        guard count > 0 else { return out }
        var last = ref.offset
        for (n, s) in zip(ref.shape, ref.strides) {
            let (p, o1) = (n - 1).multipliedReportingOverflow(by: s)
            let (q, o2) = last.addingReportingOverflow(p)
            guard !o1, !o2 else { throw FileError(path: path, reason: "a tensor of storage \(ref.storage.key) has strides that overflow") }
            last = q
        }
        guard last < ref.storage.count else {
            throw FileError(path: path, reason: "a tensor of shape \(ref.shape), strides \(ref.strides), offset \(ref.offset) reaches element \(last) of storage \(ref.storage.key), which has \(ref.storage.count)")
        }
        let src = data.baseAddress!, dst = out.data
        let contiguous = zip(ref.shape, ref.strides).reversed().reduce((true, 1)) { acc, d in
            (acc.0 && (d.0 == 1 || d.1 == acc.1), acc.1 * d.0)
        }.0
        if contiguous {
            dst.copyMemory(from: src + ref.offset * size, byteCount: count * size)
            return out
        }
        var index = [Int](repeating: 0, count: ref.shape.count)
        for i in 0..<count {
            var element = ref.offset
            for d in 0..<index.count { element += index[d] * ref.strides[d] }
            (dst + i * size).copyMemory(from: src + element * size, byteCount: size)
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < ref.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }
}
