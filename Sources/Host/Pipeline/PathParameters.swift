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
}
