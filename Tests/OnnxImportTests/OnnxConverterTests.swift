import Engine
import Foundation
import OnnxImport
import QuacCore
import XCTest

/// The ONNX converter on small graphs built here, run on the engine and compared with values worked
/// out by hand (the exported networks against PyTorch are in QuacHostTests/OnnxImportTests), and the
/// graphs it must refuse, each naming the node.
final class OnnxConverterTests: XCTestCase {
    // MARK: Building graphs

    func tensor(_ name: String, _ values: [Float], _ shape: [Int]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = shape.map(Int64.init)
        t.dataType = 1
        t.floatData = values
        return t
    }

    func ints(_ name: String, _ values: [Int64], _ shape: [Int]? = nil) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = (shape ?? [values.count]).map(Int64.init)
        t.dataType = 7
        t.int64Data = values
        return t
    }

    func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = "/" + output
        n.input = inputs
        n.output = [output]
        n.attribute = attributes
        return n
    }

    func attr(_ name: String, ints: [Int64]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = ints
        return a
    }

    func attr(_ name: String, int: Int64) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = int
        return a
    }

    func model(_ nodes: [Onnx_NodeProto], _ initializers: [Onnx_TensorProto], input: [Int], output: String, opset: Int64 = 17) throws -> Data {
        var g = Onnx_GraphProto()
        g.node = nodes
        g.initializer = initializers
        var x = Onnx_ValueInfoProto()
        x.name = "x"
        x.type.tensorType.elemType = 1
        x.type.tensorType.shape.dim = input.enumerated().map { i, d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if i == 0 { dim.dimParam = "N" } else { dim.dimValue = Int64(d) }
            return dim
        }
        var y = Onnx_ValueInfoProto()
        y.name = output
        g.input = [x]
        g.output = [y]
        var m = Onnx_ModelProto()
        m.graph = g
        var o = Onnx_OperatorSetIdProto()
        o.version = opset
        m.opsetImport = [o]
        return try m.serializedData()
    }

    /// Builds the converted network and runs it on `x`.
    func run(_ data: Data, _ x: [Float], shape: [Int]) throws -> (out: [Float], shape: [Int], conversion: OnnxConversion) {
        let c = try OnnxConverter.convert(data)
        let net = try ModelBuilder.build(c.architecture, initialize: false)
        var weights: [String: NDArray] = [:]
        for (name, t) in c.weights { weights[name] = NDArray(t) }
        try net.loadStateDict(weights)
        net.eval()
        let y = noGrad { net(Var(NDArray(x, shape: shape))) }
        return (y.data.contiguous().array, y.shape, c)
    }

    // MARK: Conversions checked by hand

    /// Conv with pads only on the bottom and right (what TensorFlow-style "SAME" exports give): a zero
    /// pad layer first, then the convolution. A 2x2 kernel of ones sums each window.
    func testAsymmetricConvolutionPadsBecomeAPadLayer() throws {
        let data = try model([node("Conv", ["x", "w"], "c", [attr("kernel_shape", ints: [2, 2]), attr("pads", ints: [0, 0, 1, 1])]),
                              node("Flatten", ["c"], "y")],
                             [tensor("w", [1, 1, 1, 1], [1, 1, 2, 2])], input: [1, 1, 3, 3], output: "y")
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let (y, shape, _) = try run(data, x + x.map { -$0 }, shape: [2, 1, 3, 3])
        XCTAssertEqual(shape, [2, 9])
        let expected: [Float] = [12, 16, 9, 24, 28, 15, 15, 17, 9]
        XCTAssertEqual(y, expected + expected.map { -$0 })
    }

    /// Div and Sub by constants, Mul of two network values, a broadcast per-channel constant, global
    /// average pooling and Gemm with transB and alpha: y = Gemm(mean_hw(((x / 2) - c) * x)).
    func testArithmeticWithConstantsAndGemm() throws {
        var alpha = Onnx_AttributeProto()
        alpha.name = "alpha"; alpha.type = .float; alpha.f = 2
        let data = try model([
            node("Div", ["x", "two"], "d"), node("Sub", ["d", "c"], "s"), node("Mul", ["s", "x"], "m"),
            node("GlobalAveragePool", ["m"], "p"), node("Flatten", ["p"], "f"),
            node("Gemm", ["f", "w", "b"], "y", [attr("transB", int: 1), alpha]),
        ], [tensor("two", [2], []), tensor("c", [1, -1], [1, 2, 1, 1]), tensor("w", [1, 10, 100, 1000], [2, 2]), tensor("b", [0.5, -0.5], [2])],
           input: [1, 2, 1, 2], output: "y")
        let x: [Float] = [2, 4, 6, 8]   // channel 0: 2, 4; channel 1: 6, 8
        let (y, shape, c) = try run(data, x, shape: [1, 2, 1, 2])
        XCTAssertEqual(shape, [1, 2])
        // channel 0: ((2/2 - 1) * 2 + (4/2 - 1) * 4) / 2 = 2; channel 1: ((3 + 1) * 6 + (4 + 1) * 8) / 2 = 32
        let (m0, m1): (Float, Float) = (2, 32)
        XCTAssertEqual(y[0], 2 * (1 * m0 + 10 * m1) + 0.5, accuracy: 1e-4)
        XCTAssertEqual(y[1], 2 * (100 * m0 + 1000 * m1) - 0.5, accuracy: 1e-3)
        XCTAssertEqual(c.numClasses, 2)
        XCTAssertEqual(c.inputShape, [2, 1, 2])
    }

    /// PyTorch's x.view(x.size(0), -1) (Shape, Gather, Unsqueeze, Concat, Reshape) folds into a plain
    /// flatten with a symbolic batch, and Softmax over the classes normalises each sample.
    func testShapeArithmeticFoldsAndSoftmaxNormalises() throws {
        var axis = Onnx_AttributeProto()
        axis.name = "axis"; axis.type = .int; axis.i = 0
        let data = try model([
            node("Shape", ["x"], "shape"), node("Gather", ["shape", "zero"], "n", [axis]),
            node("Unsqueeze", ["n", "axes"], "n1"), node("Concat", ["n1", "minus1"], "target", [axis]),
            node("Reshape", ["x", "target"], "flat"), node("Softmax", ["flat"], "y"),
        ], [ints("zero", [0], []), ints("axes", [0]), ints("minus1", [-1])], input: [1, 1, 2, 2], output: "y")
        let (y, shape, c) = try run(data, [0, 0, 0, 0, 1, 2, 3, 4], shape: [2, 1, 2, 2])
        XCTAssertEqual(shape, [2, 4])
        for (a, b) in zip(y[0..<4], [Float](repeating: 0.25, count: 4)) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        let e = [1, 2, 3, 4].map { Float(Foundation.exp(Double($0))) }
        for (a, b) in zip(y[4..<8], e.map { $0 / e.reduce(0, +) }) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertEqual(c.architecture["nodes"]?.arrayValue?.count, 1, "flatten and softmax: one chain")
    }

    // MARK: Refusals

    func assertRefused(_ data: Data, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try OnnxConverter.convert(data), file: file, line: line) { error in
            for p in parts { XCTAssertTrue("\(error)".contains(p), "\(p) in \(error)", file: file, line: line) }
        }
    }

    func testGraphsTheEngineCannotRunAreRefusedNamingTheNode() throws {
        // Grouped convolution.
        assertRefused(try model([node("Conv", ["x", "w"], "y", [attr("group", int: 2)])], [tensor("w", [1, 1], [2, 1, 1, 1])],
                                input: [1, 2, 2, 2], output: "y"), ["node \"/y\" (Conv)", "group = 2"])
        // Division by a network value (only a constant divisor becomes a multiplication).
        assertRefused(try model([node("Div", ["x", "x"], "y")], [], input: [1, 2], output: "y"), ["node \"/y\" (Div)", "constant"])
        // A constant with more dimensions than the values would move the batch dimension.
        assertRefused(try model([node("Add", ["x", "c"], "y")], [tensor("c", [1, 2], [1, 1, 2])], input: [1, 2], output: "y"),
                      ["node \"/y\" (Add)", "batch"])
        // Two network values of different ranks.
        assertRefused(try model([node("Flatten", ["x"], "f"), node("Add", ["x", "f"], "y")], [], input: [1, 2, 1, 1], output: "y"),
                      ["node \"/y\" (Add)", "batch"])
        // A reshape that folds the batch into the features.
        assertRefused(try model([node("Reshape", ["x", "t"], "y")], [ints("t", [1, -1])], input: [2, 4], output: "y"),
                      ["node \"/y\" (Reshape)", "batch"])
        // An operator outside the list, and a node missing an input.
        assertRefused(try model([node("Erf", ["x"], "y")], [], input: [1, 2], output: "y"), ["node \"/y\" (Erf)", "supported operators:", "MatMul"])
        assertRefused(try model([node("Conv", ["x"], "y")], [], input: [1, 1, 2, 2], output: "y"), ["node \"/y\" (Conv)", "at least 2 inputs"])
        // An opset outside 11...18.
        assertRefused(try model([node("Relu", ["x"], "y")], [], input: [1, 2], output: "y", opset: 9), ["opset 9"])
    }
}
