import Foundation

/// Plugin parameters whose schema says `"format": "path"` are file paths; the host makes relative ones
/// absolute against the manifest's folder, so a manifest means the same wherever it is run from.
enum PathParameters {
    static func resolve(_ params: JSONValue, schema: JSONValue, base: URL) -> JSONValue {
        switch params {
        case .string(let s) where schema["format"]?.stringValue == "path" && !s.hasPrefix("/"):
            return .string(base.appendingPathComponent(s).standardizedFileURL.path)
        case .object(let o):
            var out = o
            for (k, v) in o {
                if let sub = schema["properties"]?[k] { out[k] = resolve(v, schema: sub, base: base) }
            }
            return .object(out)
        case .array(let items):
            guard let sub = schema["items"] else { return params }
            return .array(items.map { resolve($0, schema: sub, base: base) })
        default:
            return params
        }
    }

    /// The regular files that `"format": "path"` parameters name (absolute paths, sorted): what a
    /// plugin reads besides its library (a model's weights, a Python method's module).
    static func files(_ params: JSONValue, schema: JSONValue) -> [String] {
        var found = Set<String>()
        func walk(_ v: JSONValue, _ schema: JSONValue) {
            switch v {
            case .string(let s) where schema["format"]?.stringValue == "path":
                var isDir: ObjCBool = false
                if s.hasPrefix("/"), FileManager.default.fileExists(atPath: s, isDirectory: &isDir), !isDir.boolValue { found.insert(s) }
            case .object(let o):
                for (k, sub) in o { if let s = schema["properties"]?[k] { walk(sub, s) } }
            case .array(let items):
                if let s = schema["items"] { items.forEach { walk($0, s) } }
            default:
                break
            }
        }
        walk(params, schema)
        return found.sorted()
    }
}
