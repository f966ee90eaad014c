import Foundation
import XCTest
@testable import QuacCore

final class SHA256Tests: XCTestCase {
    /// FIPS 180-4 / NIST example vectors.
    func testFIPSVectors() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(Data("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8)),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(SHA256.hex(Data(repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Lengths around the padding boundaries (55/56 bytes leave no room for the length in one block);
    /// the digests come from Python's hashlib.
    func testPaddingBoundaries() {
        let expected = [
            55: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            56: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            63: "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
            64: "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
            65: "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0",
            119: "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb",
            120: "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c",
        ]
        for (count, digest) in expected {
            XCTAssertEqual(SHA256.hex(Data(repeating: UInt8(ascii: "a"), count: count)), digest, "\(count) bytes")
        }
    }

    func testIncrementalUpdatesMatchOneShot() {
        let data = Data((0..<1280).map { UInt8($0 % 256) })
        let oneShot = SHA256.hex(data)
        XCTAssertEqual(oneShot, "d414b085826eb06778483ba35564dc849e643359f69ed9747878ba6e54985bed")
        for pieceSize in [1, 7, 63, 64, 65, 1000] {
            var hasher = SHA256.Hasher()
            var at = 0
            while at < data.count {
                hasher.update(data[at..<min(at + pieceSize, data.count)])
                at += pieceSize
            }
            XCTAssertEqual(hasher.finalizeHex(), oneShot, "pieces of \(pieceSize)")
        }
    }

    func testFileHashStreamsAcrossChunks() throws {
        let dir = try makeTemporaryDirectory()
        // Larger than the 1 MiB read chunk and not a multiple of it or of 64.
        let data = Data((0..<(3 << 20) + 123).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 11)) })
        let url = dir.appendingPathComponent("big.bin")
        try data.write(to: url)
        XCTAssertEqual(try SHA256.hex(fileAt: url), SHA256.hex(data))
        let empty = dir.appendingPathComponent("empty.bin")
        try Data().write(to: empty)
        XCTAssertEqual(try SHA256.hex(fileAt: empty), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let absent = dir.appendingPathComponent("absent.bin")
        assertFileError(try SHA256.hex(fileAt: absent), about: absent, ["cannot open"])
    }
}
