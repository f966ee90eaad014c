import Foundation
import XCTest
@testable import QuacCore

final class JSONSchemaTests: XCTestCase {
    private func schema(_ text: String) throws -> JSONSchema {
        try JSONSchema(JSONParser.parse(text), source: "test.json")
    }

    private func violations(_ schemaText: String, _ instanceText: String) throws -> [SchemaViolation] {
        try schema(schemaText).validate(JSONParser.parse(instanceText))
    }

    /// One row per keyword: instances that pass, and one instance with exactly one fault.
    func testEveryKeywordAcceptsAndRejects() throws {
        let cases: [(schema: String, pass: [String], fail: String, pointer: String, message: String)] = [
            (#"{"type":"integer"}"#, ["3", "-3", "3.0"], #""abc""#, "", #"expected integer, found string "abc""#),
            (#"{"type":"integer"}"#, ["0"], "2.5", "", "expected integer, found number 2.5"),
            (#"{"type":"number"}"#, ["1", "1.5", "-0.0"], #""1""#, "", #"expected number, found string "1""#),
            (#"{"type":["string","null"]}"#, [#""a""#, "null"], "1", "", "expected string or null, found integer 1"),
            (#"{"type":"boolean"}"#, ["true", "false"], "0", "", "expected boolean, found integer 0"),
            (#"{"type":"object"}"#, ["{}"], "[]", "", "expected object, found empty array"),
            (#"{"type":"array"}"#, ["[1]"], #"{"a":1}"#, "", "expected array, found object"),
            (#"{"type":"null"}"#, ["null"], "false", "", "expected null, found boolean false"),
            (#"{"enum":["riemann_left","gausslegendre"]}"#, [#""gausslegendre""#], #""gauss""#, "",
             #"must be one of "riemann_left", "gausslegendre", found "gauss""#),
            (#"{"enum":[1,[2],{"a":null}]}"#, ["1.0", "[2]", #"{"a":null}"#], #"{"a":0}"#, "",
             #"must be one of 1, [2], {"a":null}, found {"a":0}"#),
            (#"{"const":2}"#, ["2", "2.0"], "3", "", "must be 2, found 3"),
            // A wrong type is reported once, not again as "must be one of".
            (#"{"type":"string","enum":["a","b"]}"#, [#""a""#], "3", "", "expected string, found integer 3"),
            (#"{"type":"string","const":"a"}"#, [#""a""#], "null", "", "expected string, found null"),
            (#"{"properties":{"a":{"type":"string"}}}"#, [#"{"a":"x"}"#, "{}", "7"], #"{"a":1}"#, "/a",
             "expected string, found integer 1"),
            (#"{"required":["plugin"]}"#, [#"{"plugin":1}"#, "[]"], #"{"name":"x"}"#, "", #"missing required property "plugin""#),
            (#"{"properties":{"steps":{},"method":{},"baseline":{}},"additionalProperties":false}"#,
             [#"{"steps":1,"baseline":0}"#], #"{"steps":1,"stpes":2}"#, "",
             #"unexpected property "stpes" (allowed: steps, method, baseline)"#),
            (#"{"additionalProperties":false}"#, ["{}"], #"{"a":1}"#, "", #"unexpected property "a" (no properties are allowed)"#),
            (#"{"properties":{"a":{}},"additionalProperties":{"type":"number"}}"#, [#"{"a":"s","b":1}"#], #"{"a":"s","b":"t"}"#,
             "/b", #"expected number, found string "t""#),
            (#"{"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false}"#, [#"{"x-a":"s"}"#],
             #"{"x-a":1}"#, "/x-a", "expected string, found integer 1"),
            (#"{"properties":{"a":{}},"patternProperties":{"^x-":{}},"additionalProperties":false}"#, [#"{"a":1,"x-b":2}"#],
             #"{"b":1}"#, "", #"unexpected property "b" (allowed: a, names matching ^x-)"#),
            (#"{"propertyNames":{"pattern":"^[a-z]+$"}}"#, [#"{"ab":1}"#], #"{"ab":1,"aB":2}"#, "",
             #"property name "aB" must match the pattern ^[a-z]+$, found "aB""#),
            (#"{"minProperties":1}"#, [#"{"a":1}"#], "{}", "", "must have at least 1 property, found 0"),
            (#"{"maxProperties":1}"#, [#"{"a":1}"#], #"{"a":1,"b":2}"#, "", "must have at most 1 property, found 2"),
            (#"{"dependentRequired":{"x_cf":["target"]}}"#, [#"{"x_cf":1,"target":2}"#, #"{"target":2}"#], #"{"x_cf":1}"#, "",
             #"property "x_cf" requires property "target""#),
            (#"{"items":{"type":"integer"}}"#, ["[]", "[1,2]"], #"[1,"x"]"#, "/1", #"expected integer, found string "x""#),
            (#"{"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}"#, [#"["a",1]"#, #"["a"]"#],
             #"["a","b"]"#, "/1", #"expected integer, found string "b""#),
            (#"{"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}"#, [], #"["a",1,2]"#, "",
             "must have at most 2 items, found 3"),
            (#"{"items":[{"type":"string"}],"additionalItems":{"type":"integer"}}"#, [#"["a",1,2]"#], #"["a","b"]"#, "/1",
             #"expected integer, found string "b""#),
            (#"{"minItems":1}"#, ["[0]"], "[]", "", "must have at least 1 item, found 0"),
            (#"{"maxItems":2}"#, ["[0,1]"], "[0,1,2]", "", "must have at most 2 items, found 3"),
            (#"{"uniqueItems":true}"#, ["[1,2,[1]]", "[]"], "[1,2,1.0]", "/2", "must be unique, but equals item 0 (1)"),
            (#"{"contains":{"type":"string"}}"#, [#"[1,"a"]"#], "[1,2]", "",
             "must contain at least 1 item matching the contains schema, found 0"),
            (#"{"contains":{"type":"string"},"minContains":2,"maxContains":2}"#, [#"["a","b",3]"#], #"["a","b","c"]"#, "",
             "must contain at most 2 items matching the contains schema, found 3"),
            (#"{"minimum":1}"#, ["1", "1.5", #""not a number""#], "0", "", "must be >= 1, found 0"),
            (#"{"maximum":1.5}"#, ["1.5"], "2", "", "must be <= 1.5, found 2"),
            (#"{"exclusiveMinimum":0}"#, ["0.001"], "0", "", "must be > 0, found 0"),
            (#"{"exclusiveMaximum":1}"#, ["0.999"], "1.0", "", "must be < 1, found 1"),
            (#"{"multipleOf":0.1}"#, ["0.3", "2", "-0.7"], "0.35", "", "must be a multiple of 0.1, found 0.35"),
            (#"{"multipleOf":3}"#, ["9", "-3", "0"], "7", "", "must be a multiple of 3, found 7"),
            // Lengths count Unicode scalars: "e\u0301" is one character on screen but two scalars.
            (#"{"minLength":2}"#, [#""ab""#, #""e\u0301""#], #""é""#, "", "must have at least 2 characters, found 1"),
            (#"{"maxLength":1}"#, [#""é""#, #""""#], #""ab""#, "", "must have at most 1 character, found 2"),
            (#"{"pattern":"[0-9]"}"#, [#""ab1c""#, "5"], #""abc""#, "", #"must match the pattern [0-9], found "abc""#),
            // format is an annotation only.
            (#"{"format":"date-time","type":"string"}"#, [#""not a date""#], "1", "", "expected string, found integer 1"),
            (#"{"allOf":[{"minimum":1},{"maximum":3}]}"#, ["2"], "5", "", "must be <= 3, found 5"),
            (#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#, [#""a""#, "1"], "true", "",
             "expected string or integer, found boolean true"),
            (#"{"oneOf":[{"multipleOf":2},{"multipleOf":3}]}"#, ["4", "9"], "6", "",
             "must match exactly one oneOf branch, but matches branches 0, 1"),
            (#"{"not":{"type":"string"}}"#, ["1"], #""a""#, "", #"must not match {"type":"string"}"#),
            (#"{"if":{"properties":{"k":{"const":"a"}}},"then":{"required":["x"]},"else":{"required":["y"]}}"#,
             [#"{"k":"a","x":1}"#, #"{"k":"b","y":1}"#], #"{"k":"a","y":1}"#, "", #"missing required property "x""#),
            (#"{"if":{"properties":{"k":{"const":"a"}}},"then":{"required":["x"]},"else":{"required":["y"]}}"#,
             [], #"{"k":"b","x":1}"#, "", #"missing required property "y""#),
            (##"{"$defs":{"pos":{"type":"integer","minimum":1}},"properties":{"n":{"$ref":"#/$defs/pos"}}}"##,
             [#"{"n":1}"#], #"{"n":0}"#, "/n", "must be >= 1, found 0"),
            (##"{"definitions":{"pos":{"minimum":1}},"items":{"$ref":"#/definitions/pos"}}"##, ["[1,2]"], "[1,0]", "/1",
             "must be >= 1, found 0"),
            (###"{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#"}}},"additionalProperties":false}"###,
             [#"{"children":[{"children":[]}]}"#], #"{"children":[{"children":[{"oops":1}]}]}"#, "/children/0/children/0",
             #"unexpected property "oops" (allowed: children)"#),
            (#"{"properties":{"a":false,"b":true}}"#, [#"{"b":[1]}"#], #"{"a":1}"#, "/a", "no value is allowed here, found integer 1"),
            (#"{"title":"t","description":"d","examples":[1],"$comment":"c","$schema":"https://json-schema.org/draft/2020-12/schema","$id":"x","default":1,"deprecated":false,"readOnly":true,"x-editor":{"any":"thing"},"type":"integer"}"#,
             ["1"], "1.5", "", "expected integer, found number 1.5"),
        ]
        for c in cases {
            let s = try schema(c.schema)
            for text in c.pass {
                XCTAssertEqual(s.validate(try JSONParser.parse(text)), [], "\(c.schema) should accept \(text)")
            }
            XCTAssertEqual(s.validate(try JSONParser.parse(c.fail)), [SchemaViolation(pointer: c.pointer, message: c.message)],
                           "\(c.schema) on \(c.fail)")
        }
    }

    func testEqualityIsExact() throws {
        // Swift's String == calls these equal (canonical equivalence); JSON Schema compares code points.
        let composed = JSONValue.string("\u{E9}"), decomposed = JSONValue.string("e\u{301}")
        XCTAssertEqual(try schema(#"{"enum":["\u00e9"]}"#).validate(decomposed).count, 1)
        XCTAssertEqual(try schema(#"{"enum":["\u00e9"]}"#).validate(composed), [])
        XCTAssertEqual(try schema(#"{"uniqueItems":true}"#).validate([composed, decomposed]), [])
    }

    func testIntegerBoundsCompareExactly() throws {
        // 2^53 + 1 is not representable as a double; compared as doubles both sides would be equal.
        let s = try schema(#"{"minimum":9007199254740993}"#)
        XCTAssertEqual(s.validate(.int(9_007_199_254_740_992)).map(\.message), ["must be >= 9007199254740993, found 9007199254740992"])
        XCTAssertEqual(s.validate(.int(9_007_199_254_740_993)), [])
    }

    func testReportsEveryViolationInDocumentOrder() throws {
        // The schema lists properties in another order than the instance, and allOf checks "name" last:
        // the report follows the instance.
        let s = try schema(#"""
            {"type":"object","required":["name","output"],"additionalProperties":false,
             "properties":{"seed":{"type":"integer"},"batch_size":{"minimum":1},"name":{"type":"string"},"tags":{"items":{"type":"string"}}},
             "allOf":[{"properties":{"name":{"not":{"type":"integer"}}}}]}
            """#)
        let found = s.validate(try JSONParser.parse(#"{"name":3,"batch_size":0,"tags":["a",1,"b",2],"extra":1,"seed":"x"}"#))
        XCTAssertEqual(found.map(\.description), [
            #"/: missing required property "output""#,
            "/name: expected string, found integer 3",
            #"/name: must not match {"type":"integer"}"#,
            "/batch_size: must be >= 1, found 0",
            "/tags/1: expected string, found integer 1",
            "/tags/3: expected string, found integer 2",
            #"/: unexpected property "extra" (allowed: seed, batch_size, name, tags)"#,
            #"/seed: expected integer, found string "x""#,
        ])
    }

    func testNestedPointersAreEscapedAndCanBePrefixed() throws {
        let s = try schema(#"""
            {"properties":{"attributors":{"items":{"properties":{"params":{"properties":{"steps":{"type":"integer","minimum":1}},
             "additionalProperties":{"type":"number"}}}}}}}
            """#)
        let manifest = try JSONParser.parse(#"{"attributors":[{"params":{"steps":5}},{"params":{"steps":0,"a/b~c":"x"}}]}"#)
        XCTAssertEqual(s.validate(manifest), [
            SchemaViolation(pointer: "/attributors/1/params/steps", message: "must be >= 1, found 0"),
            SchemaViolation(pointer: "/attributors/1/params/a~1b~0c", message: #"expected number, found string "x""#),
        ])

        // A plugin's parameter schema checks params where they stand inside the pipeline manifest.
        let params = try schema(#"{"properties":{"steps":{"type":"integer","minimum":1}}}"#)
        XCTAssertEqual(params.validate(manifest["attributors"]![1]!["params"]!, at: "/attributors/1/params"),
                       [SchemaViolation(pointer: "/attributors/1/params/steps", message: "must be >= 1, found 0")])
    }

    func testFailedUnionsReportTheBranchThatFits() throws {
        // The branch of the right shape wins over one whose discriminator (const) does not match.
        let union = try schema(#"""
            {"oneOf":[
              {"properties":{"format":{"const":"a"},"x":{"type":"string"}},"required":["format","x"]},
              {"properties":{"format":{"const":"b"},"y":{"type":"integer"}},"required":["format","y"]}]}
            """#)
        XCTAssertEqual(union.validate(try JSONParser.parse(#"{"format":"b","y":"s"}"#)),
                       [SchemaViolation(pointer: "/y", message: #"expected integer, found string "s""#)])
        XCTAssertEqual(union.validate(try JSONParser.parse(#"{"format":"a"}"#)),
                       [SchemaViolation(pointer: "", message: #"missing required property "x""#)])
        // As many problems either way: the branch whose const matches is the one the author meant.
        let tagged = try schema(#"""
            {"anyOf":[
              {"properties":{"format":{"const":"a"}},"required":["x"]},
              {"properties":{"format":{"const":"b"}},"required":["y","z"]}]}
            """#)
        XCTAssertEqual(tagged.validate(try JSONParser.parse(#"{"format":"b"}"#)).map(\.message),
                       [#"missing required property "y""#, #"missing required property "z""#])

        // An object branch beats a string branch for an object, and fewer problems beat more.
        let classifier = try schema(#"""
            {"anyOf":[
              {"type":"string"},
              {"type":"object","required":["plugin"],"additionalProperties":false,"properties":{"plugin":{},"params":{}}},
              {"type":"object","required":["foreign"],"additionalProperties":false,"properties":{"foreign":{"required":["library"]}}}]}
            """#)
        XCTAssertEqual(classifier.validate(try JSONParser.parse(#"{"params":{}}"#)),
                       [SchemaViolation(pointer: "", message: #"missing required property "plugin""#)])
        XCTAssertEqual(classifier.validate(try JSONParser.parse(#"{"foreign":{}}"#)),
                       [SchemaViolation(pointer: "/foreign", message: #"missing required property "library""#)])
        // One problem each: the deeper one (inside "foreign") says more than "wrong branch" at the top.
        let deep = try schema(#"{"anyOf":[{"required":["plugin"]},{"required":["foreign"],"properties":{"foreign":{"required":["library"]}}}]}"#)
        XCTAssertEqual(deep.validate(try JSONParser.parse(#"{"foreign":{}}"#)),
                       [SchemaViolation(pointer: "/foreign", message: #"missing required property "library""#)])
    }

    func testMalformedSchemasAreRejectedWithSourceAndPointer() throws {
        let cases: [(schema: String, pointer: String, reason: String)] = [
            ("3", "", "a schema must be an object or a boolean, found integer 3"),
            (#"{"type":"strin"}"#, "/type", #"unknown type "strin""#),
            (#"{"type":[]}"#, "/type", "must list at least one type"),
            (#"{"properties":[]}"#, "/properties", "must be an object, found empty array"),
            (#"{"properties":{"a":{"type":"integer","maximum":"3"}}}"#, "/properties/a/maximum", #"must be a number, found string "3""#),
            (#"{"pattern":"["}"#, "/pattern", #"invalid regular expression "[""#),
            (#"{"patternProperties":{"(":{}}}"#, "/patternProperties/(", #"invalid regular expression "(""#),
            (#"{"minimun":1}"#, "/minimun", #"unknown keyword "minimun" (did you mean "minimum"?)"#),
            (#"{"propertys":{}}"#, "/propertys", #"unknown keyword "propertys" (did you mean "properties"?)"#),
            (#"{"frobnicate":true}"#, "/frobnicate", #"unknown keyword "frobnicate""#),
            (##"{"$ref":"#/$defs/missing"}"##, "/$ref", ##"unresolvable $ref "#/$defs/missing""##),
            (#"{"$ref":"other.json#/a"}"#, "/$ref", "only local references"),
            (##"{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}}}"##, "/$defs/b",
             "$ref cycle that never reaches a nested value: #/$defs/a -> #/$defs/b -> #/$defs/a"),
            (###"{"allOf":[{"$ref":"#"}]}"###, "/allOf/0", "$ref cycle"),
            (#"{"minLength":-1}"#, "/minLength", "must be a non-negative integer, found integer -1"),
            (#"{"maxItems":1.5}"#, "/maxItems", "must be a non-negative integer, found number 1.5"),
            (#"{"multipleOf":0}"#, "/multipleOf", "multipleOf must be greater than 0"),
            (#"{"exclusiveMinimum":true}"#, "/exclusiveMinimum", "must be a number, found boolean true"),
            (#"{"required":["a","a"]}"#, "/required/1", #""a" is listed twice"#),
            (#"{"enum":[]}"#, "/enum", "enum must list at least one value"),
            (#"{"anyOf":[]}"#, "/anyOf", "must list at least one schema"),
            (#"{"then":{}}"#, "/then", "then has no effect without if"),
            (#"{"additionalItems":false}"#, "/additionalItems", "additionalItems needs items as an array"),
            (#"{"items":[{}],"prefixItems":[{}]}"#, "/items", "items must be a schema when prefixItems is given"),
            (#"{"$defs":{"unused":{"type":"nope"}}}"#, "/$defs/unused/type", #"unknown type "nope""#),
            (#"{"title":3}"#, "/title", "must be a string"),
            (#"{"properties":{"steps":{"type":"integer","minimum":1,"default":0}}}"#, "/properties/steps/default",
             "the default does not match its own schema: must be >= 1, found 0"),
        ]
        for c in cases {
            XCTAssertThrowsError(try schema(c.schema), c.schema) { error in
                guard let e = error as? JSONSchemaError else { return XCTFail("\(c.schema): \(error)") }
                XCTAssertEqual(e.source, "test.json")
                XCTAssertEqual(e.pointer, c.pointer, c.schema)
                XCTAssertTrue(e.reason.contains(c.reason), "\(c.schema): \(e.reason)")
                XCTAssertTrue(e.description.hasPrefix("test.json: \(JSONPointer.display(c.pointer)): "), e.description)
            }
        }
    }

    func testPointerTokensEscapeAndUnescape() throws {
        XCTAssertEqual(JSONPointer.escape("plain_key"), "plain_key")
        XCTAssertEqual(JSONPointer.escape("a/b~c"), "a~1b~0c")
        XCTAssertEqual(JSONPointer.escape("~1"), "~01", "a literal ~1 must not read back as /")
        XCTAssertEqual(JSONPointer.escape("é/ü"), "é~1ü")
        for token in ["", "plain", "a/b~c", "~1", "~01/", "//~~", "é/ü"] {
            XCTAssertEqual(JSONPointer.unescape(JSONPointer.escape(token)), token)
        }
        XCTAssertEqual(JSONPointer.appending("/properties", "x/y"), "/properties/x~1y")
        // A reference through an escaped key resolves to that key.
        let s = try schema(##"{"$defs":{"a/b":{"type":"integer"}},"$ref":"#/$defs/a~1b"}"##)
        XCTAssertTrue(s.validate(.int(3)).isEmpty)
        XCTAssertFalse(s.validate(.string("x")).isEmpty)
    }

    func testDefaultsAreFilledInRecursively() throws {
        let s = try schema(#"""
            {"$defs":{"method":{"enum":["riemann_left","gausslegendre"],"default":"gausslegendre"}},
             "type":"object",
             "properties":{
               "steps":{"type":"integer","default":50},
               "method":{"$ref":"#/$defs/method"},
               "options":{"type":"object","default":{},"properties":{"eps":{"default":0.001},"mode":{"default":"a"}}},
               "layers":{"type":"array","items":{"properties":{"name":{},"frozen":{"default":false}}}},
               "baseline":{"default":null}},
             "if":{"properties":{"method":{"const":"gausslegendre"}}},
             "then":{"properties":{"nodes":{"default":8}}}}
            """#)
        let filled = s.applyingDefaults(to: try JSONParser.parse(#"{"steps":10,"options":{"mode":"b"},"layers":[{"name":"x"},{"frozen":true}]}"#))
        XCTAssertEqual(filled, try JSONParser.parse(#"""
            {"steps":10,"options":{"mode":"b","eps":0.001},"layers":[{"name":"x","frozen":false},{"frozen":true}],
             "method":"gausslegendre","baseline":null,"nodes":8}
            """#))
        // A default object gets its own nested defaults; given values are kept.
        XCTAssertEqual(s.applyingDefaults(to: try JSONParser.parse(#"{"method":"riemann_left"}"#)), try JSONParser.parse(#"""
            {"method":"riemann_left","steps":50,"options":{"eps":0.001,"mode":"a"},"baseline":null}
            """#))
        // Not an object: nothing to fill.
        XCTAssertEqual(s.applyingDefaults(to: .int(3)), .int(3))
        XCTAssertEqual(s.validate(filled), [])

        // oneOf branches add their defaults only when exactly one branch matches.
        let union = try schema(#"""
            {"oneOf":[{"required":["plugin"],"properties":{"plugin":{},"params":{"default":{}}}},
                      {"required":["foreign"],"properties":{"foreign":{},"strict":{"default":true}}}]}
            """#)
        XCTAssertEqual(union.applyingDefaults(to: ["plugin": "p"]), ["plugin": "p", "params": [:]])
        XCTAssertEqual(union.applyingDefaults(to: ["foreign": 1]), ["foreign": 1, "strict": true])
        XCTAssertEqual(union.applyingDefaults(to: ["plugin": "p", "foreign": 1]), ["plugin": "p", "foreign": 1])
    }

    func testSchemaFilesAreReadAndTheirErrorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quac-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let good = dir.appendingPathComponent("good.json")
        try Data(#"{"type":"object","required":["a"]}"#.utf8).write(to: good)
        let s = try JSONSchema(contentsOfFile: good.path)
        XCTAssertEqual(s.source, good.path)
        XCTAssertEqual(s.validate([:]).map(\.message), [#"missing required property "a""#])

        let broken = dir.appendingPathComponent("broken.json")
        try Data("{\"type\": }".utf8).write(to: broken)
        XCTAssertThrowsError(try JSONSchema(contentsOfFile: broken.path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(broken.path): line 1, column 10"), "\(error)")
        }
        XCTAssertThrowsError(try JSONSchema(contentsOfFile: dir.appendingPathComponent("missing.json").path)) { error in
            XCTAssertTrue("\(error)".contains("missing.json: cannot read the file"), "\(error)")
        }
    }
}
