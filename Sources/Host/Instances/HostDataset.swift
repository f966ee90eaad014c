import Foundation
import QuacPluginAPI

/// The host's side of quac_dataset: named per-sample tensors a trainer gathers in batches.
final class HostDataset {
    let fields: [(String, Tensor)]
    let count: Int
    let raw: UnsafeMutablePointer<quac_dataset>
    private let fieldsJSON: UnsafeMutablePointer<CChar>
    /// The trainer's instance: a failed get becomes the cause of its failure, as a failed service call does.
    weak var context: PluginContext?

    init(fields: [(String, Tensor)], numClasses: Int, context: PluginContext? = nil) {
        self.fields = fields
        self.context = context
        count = fields.first?.1.shape.first ?? 0
        fieldsJSON = strdup(JSONValue.array(fields.map { .string($0.0) }).serialized())!
        raw = .allocate(capacity: 1)
        var d = quac_dataset()
        d.struct_size = UInt32(MemoryLayout<quac_dataset>.size)
        d.count = Int64(count)
        d.num_classes = Int32(numClasses)
        d.fields_json = UnsafePointer(fieldsJSON)
        d.get = datasetGet
        raw.initialize(to: d)
        raw.pointee.host_data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// A dataset's fields as a trainer sees them: "x", "label", and "x_cf"/"target" when present.
    static func fields(of d: Dataset) -> [(String, Tensor)] {
        var f: [(String, Tensor)] = [("x", d.x), ("label", d.labels)]
        if let c = d.xCF { f.append(("x_cf", c)) }
        if let t = d.target { f.append(("target", t)) }
        return f
    }

    deinit {
        raw.deallocate()
        free(fieldsJSON)
    }

    fileprivate func gather(_ field: String, _ indices: UnsafePointer<Int64>?, _ n: Int) throws -> UnsafeMutablePointer<quac_managed_tensor> {
        guard let t = fields.first(where: { $0.0 == field })?.1 else {
            throw QuacError("unknown dataset field \"\(field)\" (fields: \(fields.map(\.0).joined(separator: ", ")))")
        }
        guard n >= 0, n == 0 || indices != nil else { throw QuacError("invalid index list") }
        let rowBytes = t.byteCount / max(count, 1)
        guard let m = HostAllocator.allocate(dtype: t.dtype.abi, shape: ([n] + t.shape.dropFirst()).map(Int64.init)) else {
            throw QuacError("cannot allocate a batch of \(n) for field \(field)")
        }
        for k in 0..<n {
            let i = Int(indices![k])
            guard i >= 0, i < count else {
                m.pointee.deleter?(m)
                throw QuacError("index \(i) out of range [0, \(count))")
            }
            (m.pointee.tensor.data + k * rowBytes).copyMemory(from: t.data + i * rowBytes, byteCount: rowBytes)
        }
        return m
    }
}

private let datasetGet: @convention(c) (UnsafePointer<quac_dataset>?, UnsafePointer<CChar>?, UnsafePointer<Int64>?, Int64, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { d, field, indices, n, out in
    guard let data = d?.pointee.host_data, let field, let out else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    let ds = Unmanaged<HostDataset>.fromOpaque(data).takeUnretainedValue()
    do {
        out.pointee = try ds.gather(String(cString: field), indices, Int(n))
        return ABIStatus.ok
    } catch {
        return ds.context?.serviceFailure(QuacError("dataset get: \(QuacError.wrap(error).message)")) ?? quac_status(QUAC_ERR_INVALID_ARGUMENT)
    }
}
