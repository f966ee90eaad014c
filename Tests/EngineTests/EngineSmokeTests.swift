import XCTest
@testable import Engine
final class EngineSmokeTests: XCTestCase { func testName() { XCTAssertEqual(EngineInfo.name, "engine") } }
