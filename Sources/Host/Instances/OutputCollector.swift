import QuacPluginAPI

/// The host's side of quac_output_sink: takes ownership of the tensors a plugin puts and parses its JSON.
final class OutputCollector {
    private(set) var outputs = PluginOutputs()
    /// The first protocol violation (bad name, duplicate, non-object JSON): the call fails with it.
    private(set) var violation: String?
    let sink: UnsafeMutablePointer<quac_output_sink>

    init() {
        sink = .allocate(capacity: 1)
        var s = quac_output_sink()
        s.struct_size = UInt32(MemoryLayout<quac_output_sink>.size)
        s.put_tensor = sinkPutTensor
        s.put_json = sinkPutJSON
        sink.initialize(to: s)
        sink.pointee.host_data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { sink.deallocate() }

    fileprivate func put(name: String, managed: UnsafeMutablePointer<quac_managed_tensor>) -> quac_status {
        let tensor: Tensor
        do { tensor = try Tensor(adopting: managed) } catch {
            violation = violation ?? "output \"\(name)\": \(error)"
            return quac_status(QUAC_ERR_INVALID_ARGUMENT)
        }
        guard !name.isEmpty, outputs.tensors[name] == nil else {
            violation = violation ?? (name.isEmpty ? "put_tensor with an empty name" : "output \"\(name)\" put twice")
            return quac_status(QUAC_ERR_INVALID_ARGUMENT)
        }
        outputs.names.append(name)
        outputs.tensors[name] = tensor
        return ABIStatus.ok
    }

    fileprivate func putJSON(_ bytes: [UInt8]) -> quac_status {
        guard outputs.json == nil else {
            violation = violation ?? "put_json called twice"
            return quac_status(QUAC_ERR_INVALID_ARGUMENT)
        }
        do {
            guard let o = try JSONParser.parse(bytes).objectValue else {
                violation = violation ?? "put_json: the document is not a JSON object"
                return quac_status(QUAC_ERR_INVALID_ARGUMENT)
            }
            outputs.json = o
            return ABIStatus.ok
        } catch {
            violation = violation ?? "put_json: malformed JSON at \(error)"
            return quac_status(QUAC_ERR_INVALID_ARGUMENT)
        }
    }
}

private func collector(_ sink: UnsafePointer<quac_output_sink>?) -> OutputCollector? {
    guard let data = sink?.pointee.host_data else { return nil }
    return Unmanaged<OutputCollector>.fromOpaque(data).takeUnretainedValue()
}

private let sinkPutTensor: @convention(c) (UnsafePointer<quac_output_sink>?, UnsafePointer<CChar>?, UnsafeMutablePointer<quac_managed_tensor>?) -> quac_status = { sink, name, tensor in
    guard let tensor else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    guard let c = collector(sink), let name else {
        tensor.pointee.deleter?(tensor)   // ownership moved to the host even on failure
        return quac_status(QUAC_ERR_INVALID_ARGUMENT)
    }
    return c.put(name: String(cString: name), managed: tensor)
}

private let sinkPutJSON: @convention(c) (UnsafePointer<quac_output_sink>?, UnsafePointer<CChar>?, Int) -> quac_status = { sink, json, len in
    guard let c = collector(sink), let json, len >= 0 else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    let bytes = UnsafeRawBufferPointer(start: json, count: len)
    return c.putJSON([UInt8](bytes))
}
