import Foundation

/// One way an instance breaks its schema: where (a JSON pointer into the instance, "" = the whole
/// document) and what was expected there. Problems of an object as a whole (a missing required property,
/// an unexpected property) point at the object; problems of a value point at the value.
public struct SchemaViolation: Equatable, Sendable, CustomStringConvertible {
    public let pointer: String
    public let message: String

    public init(pointer: String, message: String) {
        self.pointer = pointer
        self.message = message
    }

    public var description: String { "\(JSONPointer.display(pointer)): \(message)" }
}

/// A schema that cannot be used: it names the schema's source and the pointer into the schema.
public struct JSONSchemaError: Error, CustomStringConvertible, Sendable {
    public let source: String
    /// Pointer into the schema document; nil when the document itself could not be read.
    public let pointer: String?
    public let reason: String

    public var description: String {
        if let pointer { return "\(source): \(JSONPointer.display(pointer)): \(reason)" }
        return "\(source): \(reason)"
    }
}

/// A JSON Schema (a draft 2020-12 subset that also accepts draft-07 spellings: `definitions`, array-form
/// `items` with `additionalItems`). The schema is checked completely when it is built, so a typo in a
/// keyword or a bad regular expression fails at load time rather than letting instances pass silently.
///
/// Supported: type, enum, const, properties, required, additionalProperties, patternProperties,
/// propertyNames, minProperties, maxProperties, dependentRequired, items, prefixItems, contains,
/// minContains, maxContains, minItems, maxItems, uniqueItems, minimum, maximum, exclusiveMinimum,
/// exclusiveMaximum, multipleOf, minLength, maxLength, pattern, allOf, anyOf, oneOf, not, if/then/else,
/// local $ref ("#", "#/$defs/...", any "#/..." pointer), $defs, definitions and the annotations
/// ($schema, $id, $comment, title, description, default, examples, format, deprecated, readOnly,
/// writeOnly). Keywords starting with "x-" are ignored; any other keyword is an error. As in 2020-12, a
/// $ref applies together with the keywords beside it.
public struct JSONSchema: @unchecked Sendable {   // NSRegularExpression is immutable and thread-safe
    public let source: String
    let nodes: [SchemaNode]
    let root: Int

    /// Compiles `schema`; `source` (usually a file path) names the schema in error messages.
    public init(_ schema: JSONValue, source: String) throws {
        var compiler = SchemaCompiler(document: schema, source: source)
        let root = try compiler.compile(schema, at: "")
        try compiler.compileDefinitions()
        try compiler.resolveReferences()
        try compiler.rejectCycles()
        self.source = source
        self.nodes = compiler.nodes
        self.root = root
        try checkDefaults()
    }

    /// Reads and compiles a schema file.
    public init(contentsOfFile path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw JSONSchemaError(source: path, pointer: nil, reason: "cannot read the file (\(error.localizedDescription))")
        }
        let value: JSONValue
        do { value = try JSONParser.parse([UInt8](data)) } catch {
            throw JSONSchemaError(source: path, pointer: nil, reason: "\(error)")
        }
        try self.init(value, source: path)
    }

    /// Every violation of the schema, in document order of the instance. `base` is prefixed to every
    /// pointer, for instances nested in a larger document (a plugin's params inside a pipeline manifest).
    public func validate(_ instance: JSONValue, at base: String = "") -> [SchemaViolation] {
        var found: [SchemaFinding] = []
        check(root, instance, SchemaInstancePath(pointer: base, order: []), into: &found)
        return Self.inDocumentOrder(found)
    }

    public func isValid(_ instance: JSONValue) -> Bool { isValid(root, instance) }

    /// A default in the schema that breaks its own schema is a bug in the schema: report it at load time.
    private func checkDefaults() throws {
        for index in nodes.indices {
            guard let value = nodes[index].defaultValue, let first = validateNode(index, value).first else { continue }
            let at = first.pointer.isEmpty ? "" : " at \(first.pointer)"
            throw JSONSchemaError(source: source, pointer: JSONPointer.appending(nodes[index].pointer, "default"),
                                  reason: "the default does not match its own schema\(at): \(first.message)")
        }
    }

    private func validateNode(_ index: Int, _ value: JSONValue) -> [SchemaViolation] {
        var found: [SchemaFinding] = []
        check(index, value, SchemaInstancePath(pointer: "", order: []), into: &found)
        return Self.inDocumentOrder(found)
    }
}

// MARK: - Compiled form

/// One compiled (sub)schema; children are indices into `JSONSchema.nodes`, so `$ref` cycles hold no
/// reference cycles.
struct SchemaNode {
    var pointer: String
    var constant: Bool?                       // a boolean schema: true accepts anything, false nothing
    var types: [String]?
    var enumValues: [JSONValue]?
    var constValue: JSONValue?
    var hasConst = false
    var properties: [String: Int] = [:]
    var propertyOrder: [String] = []
    var required: [String] = []
    var additionalProperties: Int?
    var patternProperties: [(source: String, regex: NSRegularExpression, node: Int)] = []
    var propertyNames: Int?
    var minProperties: Int?
    var maxProperties: Int?
    var dependentRequired: [(property: String, requires: [String])] = []
    var prefixItems: [Int] = []
    var items: Int?
    var contains: Int?
    var minContains: Int?
    var maxContains: Int?
    var minItems: Int?
    var maxItems: Int?
    var uniqueItems = false
    var minimum: JSONValue?
    var maximum: JSONValue?
    var exclusiveMinimum: JSONValue?
    var exclusiveMaximum: JSONValue?
    var multipleOf: JSONValue?
    var minLength: Int?
    var maxLength: Int?
    var pattern: (source: String, regex: NSRegularExpression)?
    var allOf: [Int] = []
    var anyOf: [Int] = []
    var oneOf: [Int] = []
    var not: Int?
    var notText = ""
    var ifSchema: Int?
    var thenSchema: Int?
    var elseSchema: Int?
    var ref: Int?
    var defaultValue: JSONValue?

    init(pointer: String) { self.pointer = pointer }

    /// Subschemas applied to the same value (not to a nested one): a cycle through these never ends.
    var inPlaceChildren: [Int] {
        var out = allOf + anyOf + oneOf
        for child in [ref, not, ifSchema, thenSchema, elseSchema] { if let child { out.append(child) } }
        return out
    }
}

// MARK: - Compiler

struct SchemaCompiler {
    /// For "did you mean" hints only: the switch in compile(_:at:) decides what is accepted.
    static let keywords: Set<String> = [
        "$schema", "$id", "$comment", "title", "description", "default", "examples", "format", "deprecated",
        "readOnly", "writeOnly", "$ref", "$defs", "definitions", "type", "enum", "const", "properties", "required",
        "additionalProperties", "patternProperties", "propertyNames", "minProperties", "maxProperties",
        "dependentRequired", "items", "prefixItems", "additionalItems", "contains", "minContains",
        "maxContains", "minItems", "maxItems", "uniqueItems", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "allOf", "anyOf", "oneOf",
        "not", "if", "then", "else",
    ]
    static let typeNames: Set<String> = ["null", "boolean", "object", "array", "number", "integer", "string"]

    let document: JSONValue
    let source: String
    var nodes: [SchemaNode] = []
    private var byPointer: [String: Int] = [:]
    private var pendingRefs: [(node: Int, ref: String, at: String)] = []
    private var definitionBlocks: [(value: JSONValue, at: String)] = []

    init(document: JSONValue, source: String) {
        self.document = document
        self.source = source
    }

    func fail(_ pointer: String, _ reason: String) -> JSONSchemaError {
        JSONSchemaError(source: source, pointer: pointer, reason: reason)
    }

    /// Compiles the schema at `pointer` once; a second request (through $ref) reuses it.
    mutating func compile(_ value: JSONValue, at pointer: String) throws -> Int {
        if let known = byPointer[pointer] { return known }
        let index = nodes.count
        nodes.append(SchemaNode(pointer: pointer))
        byPointer[pointer] = index
        var node = SchemaNode(pointer: pointer)

        let schema: JSONObject
        switch value {
        case .bool(let b):
            node.constant = b
            nodes[index] = node
            return index
        case .object(let o): schema = o
        default: throw fail(pointer, "a schema must be an object or a boolean, found \(SchemaText.describe(value))")
        }

        var itemsIsArray = false
        for (key, v) in schema {
            let at = JSONPointer.appending(pointer, key)
            switch key {
            case "$schema", "$id", "$comment", "title", "description", "format": _ = try string(v, at)
            case "examples": _ = try array(v, at)
            case "deprecated", "readOnly", "writeOnly": _ = try bool(v, at)
            case "default": node.defaultValue = v
            case "$defs", "definitions":
                _ = try object(v, at)
                definitionBlocks.append((v, at))   // compiled after the tree so that errors come in order
            case "$ref":
                let ref = try string(v, at)
                pendingRefs.append((index, ref, at))
            case "type":
                node.types = try typeList(v, at)
            case "enum":
                let values = try array(v, at)
                if values.isEmpty { throw fail(at, "enum must list at least one value") }
                node.enumValues = values
            case "const":
                node.constValue = v
                node.hasConst = true
            case "properties":
                for (name, sub) in try object(v, at) {
                    node.properties[name] = try compile(sub, at: JSONPointer.appending(at, name))
                    node.propertyOrder.append(name)
                }
            case "required": node.required = try uniqueStrings(v, at)
            case "additionalProperties": node.additionalProperties = try compile(v, at: at)
            case "patternProperties":
                for (pattern, sub) in try object(v, at) {
                    let patternAt = JSONPointer.appending(at, pattern)
                    node.patternProperties.append((pattern, try regex(pattern, patternAt),
                                                   try compile(sub, at: patternAt)))
                }
            case "propertyNames": node.propertyNames = try compile(v, at: at)
            case "minProperties": node.minProperties = try count(v, at)
            case "maxProperties": node.maxProperties = try count(v, at)
            case "dependentRequired":
                for (name, list) in try object(v, at) {
                    node.dependentRequired.append((name, try uniqueStrings(list, JSONPointer.appending(at, name))))
                }
            case "items":
                if case .array(let tuple) = v {   // draft-07 tuple form
                    itemsIsArray = true
                    node.prefixItems = try tuple.enumerated().map { try compile($1, at: JSONPointer.appending(at, $0)) }
                } else {
                    node.items = try compile(v, at: at)
                }
            case "prefixItems":
                let list = try array(v, at)
                node.prefixItems = try list.enumerated().map { try compile($1, at: JSONPointer.appending(at, $0)) }
            case "additionalItems": break   // checked below: it needs the draft-07 array form of items
            case "contains": node.contains = try compile(v, at: at)
            case "minContains": node.minContains = try count(v, at)
            case "maxContains": node.maxContains = try count(v, at)
            case "minItems": node.minItems = try count(v, at)
            case "maxItems": node.maxItems = try count(v, at)
            case "uniqueItems": node.uniqueItems = try bool(v, at)
            case "minimum": node.minimum = try number(v, at)
            case "maximum": node.maximum = try number(v, at)
            case "exclusiveMinimum": node.exclusiveMinimum = try number(v, at)
            case "exclusiveMaximum": node.exclusiveMaximum = try number(v, at)
            case "multipleOf":
                let m = try number(v, at)
                if (m.doubleValue ?? 0) <= 0 { throw fail(at, "multipleOf must be greater than 0, found \(SchemaText.short(v))") }
                node.multipleOf = m
            case "minLength": node.minLength = try count(v, at)
            case "maxLength": node.maxLength = try count(v, at)
            case "pattern":
                let p = try string(v, at)
                node.pattern = (p, try regex(p, at))
            case "allOf": node.allOf = try schemaList(v, at)
            case "anyOf": node.anyOf = try schemaList(v, at)
            case "oneOf": node.oneOf = try schemaList(v, at)
            case "not":
                node.not = try compile(v, at: at)
                node.notText = SchemaText.short(v)
            case "if": node.ifSchema = try compile(v, at: at)
            case "then": node.thenSchema = try compile(v, at: at)
            case "else": node.elseSchema = try compile(v, at: at)
            default:
                if key.hasPrefix("x-") { continue }
                var reason = "unknown keyword \"\(key)\""
                if let guess = Self.closestKeyword(to: key) { reason += " (did you mean \"\(guess)\"?)" }
                throw fail(at, reason)
            }
        }

        if schema["prefixItems"] != nil && itemsIsArray {
            throw fail(JSONPointer.appending(pointer, "items"), "items must be a schema when prefixItems is given")
        }
        if let extra = schema["additionalItems"] {
            let at = JSONPointer.appending(pointer, "additionalItems")
            guard itemsIsArray else { throw fail(at, "additionalItems needs items as an array (draft-07); use prefixItems and items") }
            node.items = try compile(extra, at: at)
        }
        if schema["if"] == nil {
            for key in ["then", "else"] where schema[key] != nil {
                throw fail(JSONPointer.appending(pointer, key), "\(key) has no effect without if")
            }
        }
        nodes[index] = node
        return index
    }

    /// Definitions are schemas too: compile them even when nothing refers to them, so their errors show.
    mutating func compileDefinitions() throws {
        while let (value, at) = definitionBlocks.first {
            definitionBlocks.removeFirst()
            for (name, sub) in value.objectValue! { _ = try compile(sub, at: JSONPointer.appending(at, name)) }
        }
    }

    mutating func resolveReferences() throws {
        while !pendingRefs.isEmpty {
            let (node, ref, at) = pendingRefs.removeFirst()
            guard ref.hasPrefix("#") else {
                throw fail(at, "only local references (starting with #) are supported, found \"\(ref)\"")
            }
            var fragment = String(ref.dropFirst())
            fragment = fragment.removingPercentEncoding ?? fragment
            if !fragment.isEmpty && !fragment.hasPrefix("/") {
                throw fail(at, "only JSON-pointer references (#/...) are supported, found \"\(ref)\"")
            }
            var target = document
            var pointer = ""
            if !fragment.isEmpty {
                for raw in fragment.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
                    let token = JSONPointer.unescape(raw)
                    switch target {
                    case .object(let o) where o[token] != nil:
                        target = o[token]!
                        pointer = JSONPointer.appending(pointer, token)
                    case .array(let a) where Int(token).map(a.indices.contains) == true:
                        target = a[Int(token)!]
                        pointer = JSONPointer.appending(pointer, Int(token)!)
                    default:
                        throw fail(at, "unresolvable $ref \"\(ref)\": nothing at \(fragment)")
                    }
                }
            }
            nodes[node].ref = try compile(target, at: pointer)
            try compileDefinitions()
        }
    }

    /// A $ref (or allOf/anyOf/...) loop that never moves into a nested value would recurse forever.
    func rejectCycles() throws {
        var state = [UInt8](repeating: 0, count: nodes.count)   // 0 new, 1 on the stack, 2 done
        var stack: [Int] = []
        func visit(_ i: Int) throws {
            state[i] = 1
            stack.append(i)
            for child in nodes[i].inPlaceChildren {
                if state[child] == 1 {
                    let loop = stack[stack.lastIndex(of: child)!...].map { "#" + nodes[$0].pointer } + ["#" + nodes[child].pointer]
                    throw fail(nodes[i].pointer, "$ref cycle that never reaches a nested value: \(loop.joined(separator: " -> "))")
                }
                if state[child] == 0 { try visit(child) }
            }
            stack.removeLast()
            state[i] = 2
        }
        for i in nodes.indices where state[i] == 0 { try visit(i) }
    }

    // MARK: keyword value checks

    private func string(_ v: JSONValue, _ at: String) throws -> String {
        guard let s = v.stringValue else { throw fail(at, "must be a string, found \(SchemaText.describe(v))") }
        return s
    }

    private func bool(_ v: JSONValue, _ at: String) throws -> Bool {
        guard let b = v.boolValue else { throw fail(at, "must be a boolean, found \(SchemaText.describe(v))") }
        return b
    }

    private func array(_ v: JSONValue, _ at: String) throws -> [JSONValue] {
        guard let a = v.arrayValue else { throw fail(at, "must be an array, found \(SchemaText.describe(v))") }
        return a
    }

    private func object(_ v: JSONValue, _ at: String) throws -> JSONObject {
        guard let o = v.objectValue else { throw fail(at, "must be an object, found \(SchemaText.describe(v))") }
        return o
    }

    private func number(_ v: JSONValue, _ at: String) throws -> JSONValue {
        guard v.isNumber else { throw fail(at, "must be a number, found \(SchemaText.describe(v))") }
        return v
    }

    private func count(_ v: JSONValue, _ at: String) throws -> Int {
        guard let i = v.intValue, i >= 0, i <= Int64(Int32.max) else {
            throw fail(at, "must be a non-negative integer, found \(SchemaText.describe(v))")
        }
        return Int(i)
    }

    private func uniqueStrings(_ v: JSONValue, _ at: String) throws -> [String] {
        let list = try array(v, at)
        var seen = Set<String>()
        return try list.enumerated().map { i, item in
            let s = try string(item, JSONPointer.appending(at, i))
            if !seen.insert(s).inserted { throw fail(JSONPointer.appending(at, i), "\"\(s)\" is listed twice") }
            return s
        }
    }

    private func typeList(_ v: JSONValue, _ at: String) throws -> [String] {
        let names: [String]
        if case .string(let s) = v { names = [s] } else if case .array = v { names = try uniqueStrings(v, at) } else {
            throw fail(at, "must be a type name or an array of them, found \(SchemaText.describe(v))")
        }
        if names.isEmpty { throw fail(at, "must list at least one type") }
        for name in names where !Self.typeNames.contains(name) {
            throw fail(at, "unknown type \"\(name)\" (known: \(Self.typeNames.sorted().joined(separator: ", ")))")
        }
        return names
    }

    private mutating func schemaList(_ v: JSONValue, _ at: String) throws -> [Int] {
        let list = try array(v, at)
        if list.isEmpty { throw fail(at, "must list at least one schema") }
        return try list.enumerated().map { try compile($1, at: JSONPointer.appending(at, $0)) }
    }

    private func regex(_ pattern: String, _ at: String) throws -> NSRegularExpression {
        do { return try NSRegularExpression(pattern: pattern) } catch {
            throw fail(at, "invalid regular expression \"\(pattern)\"")
        }
    }

    /// The known keyword within two edits of a misspelled one ("minimun" -> "minimum").
    static func closestKeyword(to key: String) -> String? {
        var best: (String, Int)?
        for candidate in keywords {
            let d = editDistance(Array(key.lowercased()), Array(candidate.lowercased()))
            if d <= 2 && d < key.count / 2 + 1 && (best == nil || d < best!.1 || (d == best!.1 && candidate < best!.0)) {
                best = (candidate, d)
            }
        }
        return best?.0
    }

    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

// MARK: - Describing values in messages

/// How values appear in messages.
enum SchemaText {
    /// "string \"abc\"", "integer 3", "object": what was found, for messages.
    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return "boolean \(b)"
        case .int, .double: return "\(v.typeName) \(short(v))"
        case .string: return "string \(short(v))"
        case .array(let a): return a.isEmpty ? "empty array" : "array"
        case .object(let o): return o.isEmpty ? "empty object" : "object"
        }
    }

    /// Compact JSON text, cut to a readable length.
    static func short(_ v: JSONValue, limit: Int = 60) -> String {
        var text: String
        if case .double(let d) = v, d.rounded() == d, abs(d) < 1e15 { text = String(Int64(d)) } else { text = v.serialized() }
        if text.count > limit { text = String(text.prefix(limit - 1)) + "…" }
        return text
    }
}
