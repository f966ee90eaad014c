/// Filling in defaults, so plugins receive complete parameters and run.json records every value used.
extension JSONSchema {
    /// `instance` with the `default` of every property its schema declares but the instance lacks, in
    /// nested objects and array items too. A default object gets its own nested defaults. Branches of
    /// anyOf/oneOf/if apply only where the instance matches them (oneOf: exactly one).
    public func applyingDefaults(to instance: JSONValue) -> JSONValue { fill(root, instance) }

    private func fill(_ index: Int, _ value: JSONValue) -> JSONValue {
        let node = nodes[index]
        if node.constant != nil { return value }
        var value = value
        switch value {
        case .object(var object):
            for name in node.propertyOrder where object[name] == nil {
                if let given = defaultValue(node.properties[name]!) { object[name] = given }
            }
            for key in object.keys {
                var item = object[key]!
                var known = false
                if let sub = node.properties[key] { item = fill(sub, item); known = true }
                for (_, regex, sub) in node.patternProperties where Self.matches(regex, key) { item = fill(sub, item); known = true }
                if !known, let extra = node.additionalProperties { item = fill(extra, item) }
                object[key] = item
            }
            value = .object(object)
        case .array(var items):
            for i in items.indices {
                if i < node.prefixItems.count { items[i] = fill(node.prefixItems[i], items[i]) }
                else if let rest = node.items { items[i] = fill(rest, items[i]) }
            }
            value = .array(items)
        default: break
        }

        // Subschemas that apply to this same value (a $ref cycle through them is rejected at load time).
        if let ref = node.ref { value = fill(ref, value) }
        for sub in node.allOf { value = fill(sub, value) }
        for sub in node.anyOf where isValid(sub, value) { value = fill(sub, value) }
        let matching = node.oneOf.filter { isValid($0, value) }
        if matching.count == 1 { value = fill(matching[0], value) }
        if let condition = node.ifSchema {
            if isValid(condition, value) {
                if let then = node.thenSchema { value = fill(then, value) }
            } else if let otherwise = node.elseSchema {
                value = fill(otherwise, value)
            }
        }
        return value
    }

    /// The default of a property's schema, also when the schema is only a $ref to a definition.
    private func defaultValue(_ index: Int) -> JSONValue? {
        var current = index
        while true {
            if let given = nodes[current].defaultValue { return given }
            guard let next = nodes[current].ref else { return nil }
            current = next
        }
    }
}
