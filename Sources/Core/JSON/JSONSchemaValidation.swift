import Foundation

/// A violation while it is being collected: `order` is the instance location as indices (object keys in
/// document order, array positions) so the final list can be sorted in document order.
struct SchemaFinding {
    enum Kind: Equatable {
        case type([String])   // the value has the wrong type for this branch
        case mismatch         // const/enum: the value is not the one this branch is about
        case other
    }
    var violation: SchemaViolation
    var order: [Int]
    var kind: Kind
}

/// Where the validator stands in the instance.
struct SchemaInstancePath {
    var pointer: String
    var order: [Int]

    func key(_ key: String, position: Int) -> SchemaInstancePath {
        SchemaInstancePath(pointer: JSONPointer.appending(pointer, key), order: order + [position])
    }

    func index(_ i: Int) -> SchemaInstancePath {
        SchemaInstancePath(pointer: JSONPointer.appending(pointer, i), order: order + [i])
    }
}

extension JSONSchema {
    func isValid(_ node: Int, _ value: JSONValue) -> Bool {
        var found: [SchemaFinding] = []
        check(node, value, SchemaInstancePath(pointer: "", order: []), into: &found)
        return found.isEmpty
    }

    static func inDocumentOrder(_ found: [SchemaFinding]) -> [SchemaViolation] {
        let sorted = found.enumerated().sorted { a, b in
            if a.element.order != b.element.order { return a.element.order.lexicographicallyPrecedes(b.element.order) }
            return a.offset < b.offset
        }
        var out: [SchemaViolation] = []
        for (_, f) in sorted where !out.contains(f.violation) { out.append(f.violation) }   // allOf may repeat one
        return out
    }

    func check(_ index: Int, _ value: JSONValue, _ path: SchemaInstancePath, into out: inout [SchemaFinding]) {
        let node = nodes[index]
        func report(_ message: String, _ kind: SchemaFinding.Kind = .other) {
            out.append(SchemaFinding(violation: SchemaViolation(pointer: path.pointer, message: message), order: path.order, kind: kind))
        }

        if let constant = node.constant {
            if !constant { report("no value is allowed here, found \(SchemaText.describe(value))") }
            return
        }
        if let ref = node.ref { check(ref, value, path, into: &out) }

        var typeMatches = true
        if let types = node.types, !types.contains(where: { Self.value(value, hasType: $0) }) {
            typeMatches = false
            report("expected \(types.joined(separator: " or ")), found \(SchemaText.describe(value))", .type(types))
        }
        // After a wrong type, "must be one of" would only repeat the problem.
        if typeMatches && node.hasConst, let constant = node.constValue, !Self.same(value, constant) {
            report("must be \(SchemaText.short(constant)), found \(SchemaText.short(value))", .mismatch)
        }
        if typeMatches, let values = node.enumValues, !values.contains(where: { Self.same(value, $0) }) {
            let list = values.map { SchemaText.short($0) }.joined(separator: ", ")
            report(values.count == 1 ? "must be \(list), found \(SchemaText.short(value))" : "must be one of \(list), found \(SchemaText.short(value))",
                   .mismatch)
        }

        switch value {
        case .int, .double: checkNumber(node, value) { report($0) }
        case .string(let s): checkString(node, s) { report($0) }
        case .array(let items): checkArray(node, items, path, &out)
        case .object(let object): checkObject(node, object, path, &out)
        default: break
        }

        for sub in node.allOf { check(sub, value, path, into: &out) }
        if !node.anyOf.isEmpty {
            var failures: [[SchemaFinding]] = []
            for sub in node.anyOf {
                var found: [SchemaFinding] = []
                check(sub, value, path, into: &found)
                if found.isEmpty { failures = []; break }
                failures.append(found)
            }
            if !failures.isEmpty { out += mostUseful(failures, value, path) }
        }
        if !node.oneOf.isEmpty {
            var failures: [[SchemaFinding]] = []
            var matching: [Int] = []
            for (i, sub) in node.oneOf.enumerated() {
                var found: [SchemaFinding] = []
                check(sub, value, path, into: &found)
                if found.isEmpty { matching.append(i) } else { failures.append(found) }
            }
            if matching.isEmpty { out += mostUseful(failures, value, path) }
            if matching.count > 1 {
                let list = matching.map(String.init).joined(separator: ", ")
                report("must match exactly one oneOf branch, but matches branches \(list)")
            }
        }
        if let not = node.not, isValid(not, value) { report("must not match \(node.notText)") }
        if let condition = node.ifSchema {
            if isValid(condition, value) {
                if let then = node.thenSchema { check(then, value, path, into: &out) }
            } else if let otherwise = node.elseSchema {
                check(otherwise, value, path, into: &out)
            }
        }
    }

    /// JSON Schema equality: like JSONValue's (1 == 1.0), but strings compare code point by code point
    /// where Swift's String equality would call "é" and "e\u{301}" equal.
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
        default: return a == b
        }
    }

    static func value(_ value: JSONValue, hasType type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
             ("number", .int), ("number", .double), ("integer", .int):
            return true
        case ("integer", .double(let d)): return d.isFinite && d.rounded() == d
        default: return false
        }
    }

    private func checkNumber(_ node: SchemaNode, _ value: JSONValue, _ report: (String) -> Void) {
        let found = SchemaText.short(value)
        if let bound = node.minimum, Self.compare(value, bound) < 0 { report("must be >= \(SchemaText.short(bound)), found \(found)") }
        if let bound = node.maximum, Self.compare(value, bound) > 0 { report("must be <= \(SchemaText.short(bound)), found \(found)") }
        if let bound = node.exclusiveMinimum, Self.compare(value, bound) <= 0 { report("must be > \(SchemaText.short(bound)), found \(found)") }
        if let bound = node.exclusiveMaximum, Self.compare(value, bound) >= 0 { report("must be < \(SchemaText.short(bound)), found \(found)") }
        if let step = node.multipleOf, !Self.isMultiple(value, of: step) {
            report("must be a multiple of \(SchemaText.short(step)), found \(found)")
        }
    }

    /// Integers compare exactly (seeds are 64-bit); anything else as doubles.
    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int {
        if case .int(let x) = a, case .int(let y) = b { return x < y ? -1 : (x > y ? 1 : 0) }
        let x = a.doubleValue!, y = b.doubleValue!
        return x < y ? -1 : (x > y ? 1 : 0)
    }

    static func isMultiple(_ value: JSONValue, of step: JSONValue) -> Bool {
        if case .int(let x) = value, case .int(let m) = step { return x % m == 0 }
        let q = value.doubleValue! / step.doubleValue!
        guard q.isFinite else { return false }
        // 0.3 / 0.1 is 2.9999999999999996 in binary floating point: allow for that rounding.
        return abs(q - q.rounded()) <= 1e-9 * max(1, abs(q))
    }

    private func checkString(_ node: SchemaNode, _ s: String, _ report: (String) -> Void) {
        let length = s.unicodeScalars.count
        if let min = node.minLength, length < min {
            report("must have at least \(min) character\(min == 1 ? "" : "s"), found \(length)")
        }
        if let max = node.maxLength, length > max {
            report("must have at most \(max) character\(max == 1 ? "" : "s"), found \(length)")
        }
        if let (source, regex) = node.pattern, !Self.matches(regex, s) {
            report("must match the pattern \(source), found \(SchemaText.short(.string(s)))")
        }
    }

    /// An unanchored search, as JSON Schema's pattern means.
    static func matches(_ regex: NSRegularExpression, _ s: String) -> Bool {
        regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    private func checkArray(_ node: SchemaNode, _ items: [JSONValue], _ path: SchemaInstancePath, _ out: inout [SchemaFinding]) {
        func report(_ message: String, at order: [Int]? = nil) { Self.add(&out, path, message, order) }
        let closed = node.items.map { nodes[$0].constant == false } ?? false
        for (i, item) in items.enumerated() {
            if i < node.prefixItems.count {
                check(node.prefixItems[i], item, path.index(i), into: &out)
            } else if let rest = node.items, !closed {
                check(rest, item, path.index(i), into: &out)
            }
        }
        if closed && items.count > node.prefixItems.count {
            report("must have at most \(plural(node.prefixItems.count, "item")), found \(items.count)")
        }
        if let min = node.minItems, items.count < min { report("must have at least \(plural(min, "item")), found \(items.count)") }
        if let max = node.maxItems, items.count > max { report("must have at most \(plural(max, "item")), found \(items.count)") }
        if node.uniqueItems {
            for i in items.indices.dropFirst() {
                if let j = items[..<i].firstIndex(where: { Self.same($0, items[i]) }) {
                    out.append(SchemaFinding(violation: SchemaViolation(pointer: JSONPointer.appending(path.pointer, i),
                                                                message: "must be unique, but equals item \(j) (\(SchemaText.short(items[i])))"),
                                     order: path.order + [i], kind: .other))
                }
            }
        }
        if let contains = node.contains {
            let count = items.filter { isValid(contains, $0) }.count
            let min = node.minContains ?? 1
            if count < min {
                report("must contain at least \(plural(min, "item")) matching the contains schema, found \(count)")
            }
            if let max = node.maxContains, count > max {
                report("must contain at most \(plural(max, "item")) matching the contains schema, found \(count)")
            }
        }
    }

    private func checkObject(_ node: SchemaNode, _ object: JSONObject, _ path: SchemaInstancePath, _ out: inout [SchemaFinding]) {
        func report(_ message: String, at order: [Int]? = nil) { Self.add(&out, path, message, order) }
        for name in node.required where object[name] == nil { report("missing required property \"\(name)\"") }

        for (position, (key, value)) in object.enumerated() {
            let at = path.key(key, position: position)
            var known = false
            if let sub = node.properties[key] {
                known = true
                check(sub, value, at, into: &out)
            }
            for (_, regex, sub) in node.patternProperties where Self.matches(regex, key) {
                known = true
                check(sub, value, at, into: &out)
            }
            if !known, let extra = node.additionalProperties {
                if nodes[extra].constant == false {
                    // Reported on the object, sorted where the key stands.
                    report("unexpected property \"\(key)\" (\(allowedProperties(node)))", at: at.order)
                } else {
                    check(extra, value, at, into: &out)
                }
            }
            if let names = node.propertyNames {
                var found: [SchemaFinding] = []
                check(names, .string(key), at, into: &found)
                for f in found { report("property name \"\(key)\" \(f.violation.message)", at: at.order) }
            }
        }

        if let min = node.minProperties, object.count < min {
            report("must have at least \(plural(min, "property", "properties")), found \(object.count)")
        }
        if let max = node.maxProperties, object.count > max {
            report("must have at most \(plural(max, "property", "properties")), found \(object.count)")
        }
        for (name, needs) in node.dependentRequired where object[name] != nil {
            for other in needs where object[other] == nil {
                report("property \"\(name)\" requires property \"\(other)\"")
            }
        }
    }

    private static func add(_ out: inout [SchemaFinding], _ path: SchemaInstancePath, _ message: String, _ order: [Int]?) {
        out.append(SchemaFinding(violation: SchemaViolation(pointer: path.pointer, message: message), order: order ?? path.order, kind: .other))
    }

    private func allowedProperties(_ node: SchemaNode) -> String {
        var allowed = node.propertyOrder
        allowed += node.patternProperties.map { "names matching \($0.source)" }
        return allowed.isEmpty ? "no properties are allowed" : "allowed: " + allowed.joined(separator: ", ")
    }

    /// When no anyOf/oneOf branch matches, the branch that says most about the value: first one that is
    /// of the right type, then one whose const/enum "discriminators" match, then fewest and deepest problems.
    private func mostUseful(_ failures: [[SchemaFinding]], _ value: JSONValue, _ path: SchemaInstancePath) -> [SchemaFinding] {
        func isTypeAtValue(_ f: SchemaFinding) -> Bool {
            if case .type = f.kind { return f.violation.pointer == path.pointer }
            return false
        }
        // Every branch wants another type: say so in one message ("expected string or integer").
        if failures.allSatisfy({ $0.count == 1 && isTypeAtValue($0[0]) }) {
            var types: [String] = []
            for f in failures { if case .type(let t) = f[0].kind { for name in t where !types.contains(name) { types.append(name) } } }
            let message = "expected \(types.joined(separator: " or ")), found \(SchemaText.describe(value))"
            return [SchemaFinding(violation: SchemaViolation(pointer: path.pointer, message: message), order: path.order, kind: .type(types))]
        }
        func rank(_ found: [SchemaFinding]) -> (Int, Int, Int, Int) {
            (found.contains(where: isTypeAtValue) ? 1 : 0,
             found.filter { $0.kind == .mismatch }.count,
             found.count,
             -(found.map(\.order.count).max() ?? 0))
        }
        return failures.min { rank($0) < rank($1) }!
    }
}

private func plural(_ n: Int, _ singular: String, _ pluralForm: String? = nil) -> String {
    "\(n) \(n == 1 ? singular : (pluralForm ?? singular + "s"))"
}
