import XCTest
@testable import QuacCore

final class JSONTests: XCTestCase {
    func testRoundTripKeepsOrderAndExactIntegers() throws {
        let text = #"{"z":1,"a":[true,null,-2.5e3,"\u00e9\n"],"seed":18446744073709551,"big":9223372036854775807}"#
        let v = try JSONParser.parse(text)
        XCTAssertEqual(v.objectValue?.keys, ["z", "a", "seed", "big"])
        XCTAssertEqual(v["big"], .int(Int64.max))
        XCTAssertEqual(v["a"]?[2]?.doubleValue, -2500)
        XCTAssertEqual(v["a"]?[3]?.stringValue, "é\n")
        XCTAssertEqual(try JSONParser.parse(v.serialized()), v)
        XCTAssertEqual(try JSONParser.parse(v.serialized(pretty: true)), v)
    }

    func testErrorsSayWhere() {
        for (text, line, column, fragment) in [
            ("{\n  \"a\": 1,\n  \"b\" 2\n}", 3, 7, "expected ':'"),
            ("[1, 2,]", 1, 7, "expected a value"),
            ("{\"a\":1,\"a\":2}", 1, 8, "duplicate key"),
            ("{\"a\": 01}", 1, 7, "leading zero"),
            ("\"abc", 1, 1, "unterminated string"),
            ("{} x", 1, 4, "unexpected text"),
        ] {
            XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
                let e = error as! JSONParseError
                XCTAssertEqual(e.line, line, text)
                XCTAssertEqual(e.column, column, text)
                XCTAssertTrue(e.reason.contains(fragment), "\(text): \(e.reason)")
            }
        }
    }
}
