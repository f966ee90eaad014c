import Foundation
import QuacPluginAPI

/// Memory behind a tensor: host-allocated, a plugin's managed tensor, or a memory-mapped file. The
/// release closure runs once, when the last tensor viewing it goes away.
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    private let release: (() -> Void)?

    public init(base: UnsafeMutableRawPointer, byteCount: Int, release: (() -> Void)?) {
        self.base = base
        self.byteCount = byteCount
        self.release = release
    }

    /// Zero-filled, 64-byte aligned host memory.
    public static func allocate(byteCount: Int) -> TensorStorage {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        return TensorStorage(base: p, byteCount: byteCount) { p.deallocate() }
    }

    deinit { release?() }
}

/// The host's tensor: compact row-major, any DType, sharing storage without copying (a plugin's output
/// is wrapped where it lies; a safetensors file is read where it is mapped).
public struct Tensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let storage: TensorStorage
    /// Byte offset of element 0 in `storage`.
    public let offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.byteSize }
    public var rank: Int { shape.count }
    public var data: UnsafeMutableRawPointer { storage.base + offset }

    public init(dtype: DType, shape: [Int], storage: TensorStorage, offset: Int = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(offset + shape.reduce(1, *) * dtype.byteSize <= storage.byteCount, "tensor exceeds its storage")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    /// A new zero-filled tensor.
    public init(zeros shape: [Int], dtype: DType = .float32) {
        self.init(dtype: dtype, shape: shape,
                  storage: .allocate(byteCount: shape.reduce(1, *) * dtype.byteSize))
    }

    public init(_ values: [Float], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(zeros: shape, dtype: .float32)
        values.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    public init(_ values: [Int64], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(zeros: shape, dtype: .int64)
        values.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    // MARK: Element access

    public var floats: UnsafeMutableBufferPointer<Float> {
        precondition(dtype == .float32, "tensor is \(dtype.displayName), not float32")
        return UnsafeMutableBufferPointer(start: data.assumingMemoryBound(to: Float.self), count: count)
    }

    public var int64s: UnsafeMutableBufferPointer<Int64> {
        precondition(dtype == .int64, "tensor is \(dtype.displayName), not int64")
        return UnsafeMutableBufferPointer(start: data.assumingMemoryBound(to: Int64.self), count: count)
    }

    public func floatArray() -> [Float] { Array(floats) }
    public func int64Array() -> [Int64] { Array(int64s) }

    /// Every element as a Double, whatever the dtype (for checks and reports, not hot loops).
    public func doubleArray() -> [Double] {
        let p = data
        return (0..<count).map { i -> Double in
            switch dtype {
            case .float64: return p.load(fromByteOffset: i * 8, as: Double.self)
            case .float32: return Double(p.load(fromByteOffset: i * 4, as: Float.self))
            case .float16: return Double(Float(halfBits: p.load(fromByteOffset: i * 2, as: UInt16.self)))
            case .bfloat16: return Double(Float(bitPattern: UInt32(p.load(fromByteOffset: i * 2, as: UInt16.self)) << 16))
            case .int64: return Double(p.load(fromByteOffset: i * 8, as: Int64.self))
            case .int32: return Double(p.load(fromByteOffset: i * 4, as: Int32.self))
            case .int16: return Double(p.load(fromByteOffset: i * 2, as: Int16.self))
            case .int8: return Double(p.load(fromByteOffset: i, as: Int8.self))
            case .uint64: return Double(p.load(fromByteOffset: i * 8, as: UInt64.self))
            case .uint32: return Double(p.load(fromByteOffset: i * 4, as: UInt32.self))
            case .uint16: return Double(p.load(fromByteOffset: i * 2, as: UInt16.self))
            case .uint8: return Double(p.load(fromByteOffset: i, as: UInt8.self))
            case .bool: return p.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0
            }
        }
    }

    /// True when every element is finite (non-float dtypes always are).
    public var isFinite: Bool {
        switch dtype {
        case .float32: return Self.allFinite(floats)
        case .float64, .float16, .bfloat16: return doubleArray().allSatisfy { $0.isFinite }
        default: return true
        }
    }

    /// No NaN or infinity: the largest exponent field, found eight lanes at a time (a float is not
    /// finite exactly when its exponent bits are all ones). A check per element with an early exit
    /// does not vectorize, and classifiers run this on every input batch.
    static func allFinite(_ f: UnsafeMutableBufferPointer<Float>) -> Bool {
        guard let base = f.baseAddress else { return true }
        let exponent: UInt32 = 0x7F80_0000
        let raw = UnsafeRawPointer(base)
        var lanes = SIMD8<UInt32>(repeating: 0)
        var i = 0
        while i + 8 <= f.count {
            lanes = pointwiseMax(lanes, raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<UInt32>.self) & exponent)
            i += 8
        }
        var largest = lanes.max()
        while i < f.count { largest = Swift.max(largest, base[i].bitPattern & exponent); i += 1 }
        return largest != exponent
    }

    // MARK: Shape operations (views share storage)

    /// Rows [start, end) of the first dimension, sharing storage.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0])
        let rowBytes = shape.dropFirst().reduce(1, *) * dtype.byteSize
        return Tensor(dtype: dtype, shape: [range.count] + shape.dropFirst(), storage: storage,
                      offset: offset + range.lowerBound * rowBytes)
    }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(dtype: dtype, shape: newShape, storage: storage, offset: offset)
    }

    /// A copy in fresh storage.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape, dtype: dtype)
        t.data.copyMemory(from: data, byteCount: byteCount)
        return t
    }

    /// Concatenation along the first dimension; all parts share dtype and trailing shape.
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "nothing to concatenate")
        let first = parts[0]
        let trailing = Array(first.shape.dropFirst())
        precondition(parts.allSatisfy { $0.dtype == first.dtype && Array($0.shape.dropFirst()) == trailing },
                     "concatenated tensors differ in dtype or trailing shape")
        let out = Tensor(zeros: [parts.reduce(0) { $0 + $1.shape[0] }] + trailing, dtype: first.dtype)
        var at = 0
        for p in parts {
            (out.data + at).copyMemory(from: p.data, byteCount: p.byteCount)
            at += p.byteCount
        }
        return out
    }

    /// Bitwise equality of dtype, shape and bytes.
    public func bitwiseEqual(_ other: Tensor) -> Bool {
        dtype == other.dtype && shape == other.shape && memcmp(data, other.data, byteCount) == 0
    }
}

extension Float {
    /// IEEE half to single (Float16 is unavailable on some Linux targets).
    init(halfBits h: UInt16) {
        let sign = UInt32(h & 0x8000) << 16
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            self = (sign != 0 ? -1 : 1) * Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
        } else if exp == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
        }
    }
}
