import Foundation
import QuacPluginAPI

/// A loaded plugin library: dlopen'ed once per path, entry negotiated, init called. deinit and dlclose
/// run when the last reference goes, after every instance (each holds its library) is destroyed.
public final class PluginLibrary: @unchecked Sendable {
    public let url: URL
    public let abiMajor: UInt32
    public let abiMinor: UInt32
    let handle: UnsafeMutableRawPointer
    let entry: UnsafePointer<quac_plugin_entry_v1>
    let factory: UnsafePointer<quac_plugin_factory>

    /// The self-description of one plugin in the library.
    public struct Descriptor: Sendable {
        public let id: String
        public let name: String
        public let version: String
        public let description: String
        public let kind: PluginKind?
        public let rawKind: Int32
        public let reentrant: Bool
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: PluginLibrary] = [:]

    /// Loads (or returns the already loaded) library at `url`.
    public static func load(_ url: URL) throws -> PluginLibrary {
        let key = url.standardizedFileURL.resolvingSymlinksInPath().path
        lock.lock(); defer { lock.unlock() }
        if let lib = cache[key] { return lib }
        let lib = try PluginLibrary(path: key)
        cache[key] = lib
        return lib
    }

    private init(path: String) throws {
        url = URL(fileURLWithPath: path)
        guard let h = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw QuacError("\(path): cannot load library: \(why)")
        }
        guard let sym = dlsym(h, QUAC_PLUGIN_ENTRY_SYMBOL) else {
            dlclose(h)
            throw QuacError("\(path): missing entry symbol \(QUAC_PLUGIN_ENTRY_SYMBOL): not a quac-host plugin library (export `const quac_plugin_entry_v1 *\(QUAC_PLUGIN_ENTRY_SYMBOL)(uint32_t, uint32_t)`)")
        }
        let entryFn = unsafeBitCast(sym, to: quac_plugin_entry_fn.self)
        guard let e = entryFn(UInt32(QUAC_ABI_VERSION_MAJOR), UInt32(QUAC_ABI_VERSION_MINOR)) else {
            dlclose(h)
            throw QuacError("\(path): the library refused host ABI \(QUAC_ABI_VERSION_MAJOR).\(QUAC_ABI_VERSION_MINOR) (its entry returned NULL)")
        }
        guard e.pointee.abi_major == UInt32(QUAC_ABI_VERSION_MAJOR) else {
            let msg = "\(path): ABI major version mismatch: library built for \(e.pointee.abi_major).\(e.pointee.abi_minor), host speaks \(QUAC_ABI_VERSION_MAJOR).\(QUAC_ABI_VERSION_MINOR)"
            dlclose(h)
            throw QuacError(msg)
        }
        guard let f = e.pointee.factory, let count = f.pointee.count, f.pointee.get_descriptor != nil, f.pointee.create != nil else {
            dlclose(h)
            throw QuacError("\(path): the library's entry has no complete factory (count, get_descriptor, create)")
        }
        _ = count
        if let initFn = e.pointee.`init` {
            let status = path.withCString { initFn($0) }
            guard status == ABIStatus.ok else {
                dlclose(h)
                throw QuacError("\(path): library init failed (\(ABIStatus.name(status)))")
            }
        }
        handle = h
        entry = e
        factory = f
        abiMajor = e.pointee.abi_major
        abiMinor = e.pointee.abi_minor
    }

    deinit {
        entry.pointee.deinit?()
        dlclose(handle)
    }

    /// Every plugin the library offers.
    public var descriptors: [Descriptor] {
        let n = factory.pointee.count!(factory)
        return (0..<n).compactMap { i in
            guard let d = factory.pointee.get_descriptor!(factory, i) else { return nil }
            return Descriptor(d.pointee)
        }
    }

    public func descriptor(id: String) -> Descriptor? { descriptors.first { $0.id == id } }
}

extension PluginLibrary.Descriptor {
    init(_ d: quac_plugin_descriptor) {
        func s(_ p: UnsafePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }
        id = s(d.id)
        name = s(d.name)
        version = s(d.version)
        description = s(d.description)
        kind = PluginKind(abi: quac_plugin_kind(rawValue: UInt32(bitPattern: d.kind)))
        rawKind = d.kind
        reentrant = d.flags & UInt32(QUAC_PLUGIN_FLAG_REENTRANT) != 0
    }
}
