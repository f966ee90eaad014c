// swift-tools-version: 6.0
import PackageDescription

/// A built-in plugin bundle: a dynamic library loaded by the host through the C ABI, exactly as a
/// third-party plugin is. Its manifest lives in plugins/.
func pluginBundle(_ name: String, dependencies: [Target.Dependency] = []) -> (Product, Target) {
    (.library(name: "Quac\(name)", type: .dynamic, targets: [name]),
     .target(name: name, dependencies: ["QuacPluginKit"] + dependencies, path: "Sources/Plugins/\(name)"))
}

let bundles = [
    pluginBundle("BasicModels", dependencies: ["COpenBLAS"]),
    pluginBundle("Attributions"),
    pluginBundle("Scorers"),
    pluginBundle("EngineModels", dependencies: ["Engine", "MetaLearning", "LogicNetworks", "OnnxImport"]),
]

let package = Package(
    name: "quac-host",
    products: [
        .executable(name: "quac-host", targets: ["quac-host"]),
        .library(name: "QuacHost", targets: ["QuacHost"]),
        .library(name: "QuacCore", targets: ["QuacCore"]),
        .library(name: "QuacPluginKit", targets: ["QuacPluginKit"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "OnnxImport", targets: ["OnnxImport"]),
    ] + bundles.map(\.0),
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // The ABI: the one header host and plugins share.
        .target(name: "QuacPluginAPI", path: "Sources/PluginAPI"),

        // System libraries.
        .systemLibrary(name: "CFFI", path: "Sources/Shims/CFFI", pkgConfig: "libffi",
                       providers: [.apt(["libffi-dev"])]),
        .systemLibrary(name: "CJSONC", path: "Sources/Shims/CJSONC", pkgConfig: "json-c",
                       providers: [.apt(["libjson-c-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/Shims/CPNG", pkgConfig: "libpng16",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTIFF", path: "Sources/Shims/CTIFF", pkgConfig: "libtiff-4",
                       providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/Shims/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),

        // What host, engine and Swift plugins share: JSON, tensors and their ABI bridge, tensor files
        // (safetensors, NPY), images (PNG, TIFF), atomic writes, SHA-256.
        .target(name: "QuacCore", dependencies: ["QuacPluginAPI", "CPNG", "CTIFF"], path: "Sources/Core"),
        .testTarget(name: "QuacCoreTests", dependencies: ["QuacCore"], path: "Tests/QuacCoreTests", exclude: ["Fixtures"]),

        // The host library and its CLI.
        .target(name: "QuacHost",
                dependencies: ["QuacCore", "QuacPluginAPI", "CFFI", .product(name: "Logging", package: "swift-log")],
                path: "Sources/Host",
                resources: [.copy("Resources/schemas"), .copy("Resources/plugins")]),
        .executableTarget(name: "quac-host",
                          dependencies: ["QuacHost",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/quac-host"),

        // The SDK: a Swift helper for plugins written in Swift, and the C helper library (also built
        // by SDK/Makefile outside SwiftPM; compiled here so every build checks it).
        .target(name: "QuacPluginKit", dependencies: ["QuacCore", "QuacPluginAPI"], path: "SDK/swift/QuacPluginKit"),
        .target(name: "QuacSDK", dependencies: ["QuacPluginAPI", "CJSONC"], path: "SDK/lib"),

        // The compute engine the built-in classifiers, converters and learned explainers run on.
        // Its vectorized C kernels (direct convolution and its gradients, max pooling, small-batch GEMM), built for AVX-512,
        // AVX2 and SSE and chosen at run time. Optimized in debug builds too: the tests would otherwise
        // crawl through them. The *_body.inc files are included once per instruction set.
        .target(name: "EngineKernels", path: "Sources/EngineKernels",
                exclude: ["direct_conv_body.inc", "gemm_body.inc", "max_pool_body.inc", "weight_grad_body.inc",
                          "winograd_body.inc"],
                cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),
        .target(name: "Engine", dependencies: ["COpenBLAS", "EngineKernels", "QuacCore", "QuacPluginAPI"],
                path: "Sources/Engine"),
        // ONNX graphs into the engine's network description (quac-host import MODEL.onnx). onnx.pb.swift is
        // generated from ONNX's schema by scripts/onnx/generate_swift.sh and committed.
        .target(name: "OnnxImport", dependencies: ["QuacCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                path: "Sources/OnnxImport"),
        .testTarget(name: "OnnxImportTests", dependencies: ["OnnxImport", "Engine"], path: "Tests/OnnxImportTests"),
        .testTarget(name: "EngineTests", dependencies: ["Engine"], path: "Tests/EngineTests", exclude: ["Golden"]),
        // Timings, not checks: the engine half of bench/engine_bench.sh (skipped unless QUAC_ENGINE_BENCH=1).
        .testTarget(name: "EngineBenchmarks", dependencies: ["Engine"], path: "bench/EngineBenchmarks"),

        .testTarget(name: "ScorersTests", dependencies: ["Scorers"], path: "Tests/ScorersTests", exclude: ["Fixtures"]),
        // SMAT-style meta-learning on the engine: the student, its explainer and the meta step.
        .target(name: "MetaLearning", dependencies: ["Engine"], path: "Sources/MetaLearning"),
        // Logic explained networks on the engine: the entropy layer, the network and rule extraction.
        .target(name: "LogicNetworks", dependencies: ["Engine"], path: "Sources/LogicNetworks"),
        .testTarget(name: "MetaLearningTests", dependencies: ["MetaLearning", "LogicNetworks"], path: "Tests/MetaLearningTests", exclude: ["Fixtures"]),
        .testTarget(name: "QuacHostTests", dependencies: ["QuacHost", "QuacSDK"], path: "Tests/QuacHostTests",
                    resources: [.copy("Fixtures")]),
    ] + bundles.map(\.1),
    swiftLanguageModes: [.v5]
)
