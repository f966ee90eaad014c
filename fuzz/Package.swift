// swift-tools-version: 6.0
// libFuzzer harnesses for the readers of untrusted bytes in QuacCore and QuacHost. Each target defines
// LLVMFuzzerTestOneInput, and <module>_main (the symbol SwiftPM makes `main` on Linux), which runs
// libFuzzer's driver (FuzzDriver). Build (see README.md):
//   swift build --package-path fuzz --scratch-path .build-fuzz -c debug \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import PackageDescription

func harness(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: "fuzz-\(name)", dependencies: dependencies + ["FuzzSupport", "FuzzDriver"], path: "Sources/fuzz-\(name)")
}

let core: [Target.Dependency] = [.product(name: "QuacCore", package: "quac-host")]

let package = Package(
    name: "quac-fuzz",
    dependencies: [.package(name: "quac-host", path: "..")],
    targets: [
        .target(name: "FuzzDriver", path: "Sources/FuzzDriver"),
        .target(name: "FuzzSupport", path: "Sources/FuzzSupport"),
        harness("safetensors", core),
        harness("npy", core),
        harness("json", core),
        harness("png", core),
        harness("tiff", core),
        harness("torch", core),
        harness("manifest", [.product(name: "QuacHost", package: "quac-host")]),
        harness("onnx", core + [.product(name: "OnnxImport", package: "quac-host")]),
    ],
    swiftLanguageModes: [.v5]
)
