import Foundation

/// Turns Swift plugin classes into the C ABI. A bundle exports its entry with:
///
///     @_cdecl("quac_plugin_entry")
///     public func quacPluginEntry(_ major: UInt32, _ minor: UInt32) -> UnsafeRawPointer? {
///         PluginExport.entry(hostMajor: major, plugins: [Saliency.self, Occlusion.self])
///     }
///
/// Everything here is per library: the kit is linked statically into each bundle.
public enum PluginExport {
    nonisolated(unsafe) static var plugins: [QuacPlugin.Type] = []
    nonisolated(unsafe) static var descriptors: [UnsafeMutablePointer<quac_plugin_descriptor>] = []
    nonisolated(unsafe) static var entryPointer: UnsafeMutablePointer<quac_plugin_entry_v1>?
    static let lock = NSLock()

    /// The library's entry, built on first use; nil for a host of another ABI major version.
    public static func entry(hostMajor: UInt32, plugins: [QuacPlugin.Type]) -> UnsafeRawPointer? {
        guard hostMajor == UInt32(QUAC_ABI_VERSION_MAJOR) else { return nil }
        lock.lock(); defer { lock.unlock() }
        if let e = entryPointer { return UnsafeRawPointer(e) }
        self.plugins = plugins
        descriptors = plugins.map { makeDescriptor($0.description) }
        let factory = UnsafeMutablePointer<quac_plugin_factory>.allocate(capacity: 1)
        factory.initialize(to: quac_plugin_factory(
            struct_size: UInt32(MemoryLayout<quac_plugin_factory>.size),
            count: { _ in UInt32(PluginExport.descriptors.count) },
            get_descriptor: { _, i in i < PluginExport.descriptors.count ? UnsafePointer(PluginExport.descriptors[Int(i)]) : nil },
            create: factoryCreate))
        let e = UnsafeMutablePointer<quac_plugin_entry_v1>.allocate(capacity: 1)
        e.initialize(to: quac_plugin_entry_v1(abi_major: UInt32(QUAC_ABI_VERSION_MAJOR), abi_minor: UInt32(QUAC_ABI_VERSION_MINOR),
                                              init: { _ in quac_status(QUAC_OK) }, deinit: {}, factory: factory))
        entryPointer = e
        return UnsafeRawPointer(e)
    }

    private static func makeDescriptor(_ d: PluginDescription) -> UnsafeMutablePointer<quac_plugin_descriptor> {
        let p = UnsafeMutablePointer<quac_plugin_descriptor>.allocate(capacity: 1)
        let kind: quac_plugin_kind
        switch d.kind {
        case .classifier: kind = QUAC_KIND_CLASSIFIER
        case .converter: kind = QUAC_KIND_CONVERTER
        case .attributor: kind = QUAC_KIND_ATTRIBUTOR
        case .scorer: kind = QUAC_KIND_SCORER
        }
        p.initialize(to: quac_plugin_descriptor(
            struct_size: UInt32(MemoryLayout<quac_plugin_descriptor>.size),
            id: UnsafePointer(strdup(d.id)), name: UnsafePointer(strdup(d.name)), version: UnsafePointer(strdup(d.version)),
            description: UnsafePointer(strdup(d.summary)), kind: Int32(bitPattern: kind.rawValue),
            flags: d.reentrant ? UInt32(QUAC_PLUGIN_FLAG_REENTRANT) : 0))
        return p
    }
}

/// One live instance: the Swift object and the quac_plugin struct the host holds.
final class InstanceBox {
    let plugin: QuacPlugin
    let host: HostServices
    let raw: UnsafeMutablePointer<quac_plugin>

    init(plugin: QuacPlugin, host: HostServices, descriptor: UnsafePointer<quac_plugin_descriptor>) {
        self.plugin = plugin
        self.host = host
        raw = .allocate(capacity: 1)
        raw.initialize(to: quac_plugin(struct_size: UInt32(MemoryLayout<quac_plugin>.size), descriptor: descriptor,
                                       plugin_data: nil, destroy: instanceDestroy, get_extension: instanceGetExtension))
    }

    /// C strings handed out as "borrowed, valid as long as the instance", made once per key.
    private var strings: [String: UnsafeMutablePointer<CChar>] = [:]
    private let stringsLock = NSLock()

    func cachedString(_ key: String, _ make: () -> String) -> UnsafePointer<CChar>? {
        stringsLock.lock(); defer { stringsLock.unlock() }
        if let s = strings[key] { return UnsafePointer(s) }
        guard let s = strdup(make()) else { return nil }
        strings[key] = s
        return UnsafePointer(s)
    }

    deinit {
        raw.deallocate()
        for s in strings.values { free(s) }
    }

    static func from(_ p: UnsafePointer<quac_plugin>?) -> InstanceBox? {
        guard let data = p?.pointee.plugin_data else { return nil }
        return Unmanaged<InstanceBox>.fromOpaque(data).takeUnretainedValue()
    }
}

/// Runs a plugin function body: thrown errors become a status and a message through set_error.
func guarded(_ host: HostServices?, _ body: () throws -> Void) -> quac_status {
    do {
        try body()
        return quac_status(QUAC_OK)
    } catch let e as PluginError {
        host?.setError(e.message)
        return e.status
    } catch {
        host?.setError("\(error)")
        return quac_status(QUAC_ERR_INVALID_ARGUMENT)
    }
}

private let factoryCreate: @convention(c) (UnsafePointer<quac_plugin_factory>?, UnsafePointer<quac_host>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafePointer<quac_plugin>?>?) -> quac_status = { _, hostPtr, idPtr, json, out in
    guard let hostPtr, let idPtr, let out else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    let host = HostServices(hostPtr)
    let id = String(cString: idPtr)
    return guarded(host) {
        guard let index = PluginExport.plugins.firstIndex(where: { $0.description.id == id }) else {
            throw PluginError.invalid("this library has no plugin \"\(id)\"")
        }
        let params: JSONValue
        do { params = try JSONParser.parse(json.map { String(cString: $0) } ?? "{}") } catch {
            throw PluginError.invalid("parameters are not valid JSON: \(error)")
        }
        let instance = try PluginExport.plugins[index].init(host: host, parameters: Parameters(params))
        let box = InstanceBox(plugin: instance, host: host, descriptor: PluginExport.descriptors[index])
        box.raw.pointee.plugin_data = Unmanaged.passRetained(box).toOpaque()
        out.pointee = UnsafePointer(box.raw)
    }
}

private let instanceDestroy: @convention(c) (UnsafePointer<quac_plugin>?) -> Void = { p in
    guard let data = p?.pointee.plugin_data else { return }
    Unmanaged<InstanceBox>.fromOpaque(data).release()
}

private let instanceGetExtension: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<CChar>?) -> UnsafeRawPointer? = { p, idPtr in
    guard let box = InstanceBox.from(p), let idPtr else { return nil }
    let id = String(cString: idPtr)
    switch (box.plugin, id) {
    case (is ClassifierPlugin, QUAC_KIND_TABLE_CLASSIFIER): return UnsafeRawPointer(KindTables.classifier)
    case (is LayeredClassifierPlugin, QUAC_EXT_CLASSIFIER_LAYERS): return UnsafeRawPointer(ClassifierLayersTable.table)
    case (is RandomizableClassifierPlugin, QUAC_EXT_CLASSIFIER_RANDOMIZE): return UnsafeRawPointer(ClassifierRandomizeTable.table)
    case (is WeightedClassifierPlugin, QUAC_EXT_CLASSIFIER_WEIGHTS): return UnsafeRawPointer(ClassifierWeightsTable.table)
    case (let c as ClassifierPlugin, QUAC_EXT_MODIFIED_BACKWARD): return c.supportsModifiedBackward ? UnsafeRawPointer(KindTables.modifiedBackward) : nil
    case (is AttributorPlugin, QUAC_KIND_TABLE_ATTRIBUTOR): return UnsafeRawPointer(KindTables.attributor)
    case (is ScorerPlugin, QUAC_KIND_TABLE_SCORER): return UnsafeRawPointer(KindTables.scorer)
    case (is ConverterPlugin, QUAC_KIND_TABLE_CONVERTER): return UnsafeRawPointer(KindTables.converter)
    case (is TrainablePlugin, QUAC_EXT_TRAINER): return UnsafeRawPointer(TrainerTable.table)
    default: return nil
    }
}
