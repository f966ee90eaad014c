/// A plugin's parameters as the host passes them to `create`: validated against the manifest's JSON
/// Schema, with every default the schema declares filled in. The schema is the only place a default
/// lives. A parameter that has a default is read with a plain accessor (`int`, `double`, `string`...),
/// which fails when the value is missing instead of falling back on a second default in code; a
/// parameter without one (a file that may be absent, a value derived from another parameter) is read
/// with `optional...`, and the rule for its absence is stated in the schema's description.
public struct Parameters: Sendable {
    public let json: JSONValue

    public init(_ json: JSONValue) { self.json = json }

    private func missing(_ key: String) -> PluginError {
        PluginError.invalid("parameter \"\(key)\" is missing: the host fills every default from the plugin's manifest, so the manifest's schema lacks this default or the plugin was created without the host's resolver")
    }

    private func wrong(_ key: String, _ expected: String, _ v: JSONValue) -> PluginError {
        PluginError.invalid("parameter \"\(key)\" must be \(expected), got \(v.serialized())")
    }

    /// The raw value; throws when absent.
    public func value(_ key: String) throws -> JSONValue {
        guard let v = json[key] else { throw missing(key) }
        return v
    }

    public func optional(_ key: String) -> JSONValue? {
        guard let v = json[key], v != .null else { return nil }
        return v
    }

    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard let i = v.intValue else { throw wrong(key, "an integer", v) }
        return Int(i)
    }

    public func double(_ key: String) throws -> Double {
        let v = try value(key)
        guard let d = v.doubleValue else { throw wrong(key, "a number", v) }
        return d
    }

    public func float(_ key: String) throws -> Float { Float(try double(key)) }

    public func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard let b = v.boolValue else { throw wrong(key, "true or false", v) }
        return b
    }

    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard let s = v.stringValue else { throw wrong(key, "a string", v) }
        return s
    }

    public func ints(_ key: String) throws -> [Int] {
        let v = try value(key)
        let ints = v.arrayValue?.compactMap(\.intValue) ?? []
        guard ints.count == v.arrayValue?.count else { throw wrong(key, "a list of integers", v) }
        return ints.map { Int($0) }
    }

    public func strings(_ key: String) throws -> [String] {
        let v = try value(key)
        let ss = v.arrayValue?.compactMap(\.stringValue) ?? []
        guard ss.count == v.arrayValue?.count else { throw wrong(key, "a list of strings", v) }
        return ss
    }

    public func doubles(_ key: String) throws -> [Double] {
        let v = try value(key)
        let ds = v.arrayValue?.compactMap(\.doubleValue) ?? []
        guard ds.count == v.arrayValue?.count else { throw wrong(key, "a list of numbers", v) }
        return ds
    }

    public func optionalString(_ key: String) throws -> String? {
        guard let v = optional(key) else { return nil }
        guard let s = v.stringValue else { throw wrong(key, "a string", v) }
        return s
    }

    public func optionalDouble(_ key: String) throws -> Double? {
        guard let v = optional(key) else { return nil }
        guard let d = v.doubleValue else { throw wrong(key, "a number", v) }
        return d
    }
}
