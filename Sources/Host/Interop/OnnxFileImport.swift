import Foundation

/// `quac-host import MODEL.onnx`: an ONNX graph into a plugin's model file. The host reads nothing of
/// the graph: it hands the file to the plugin through its `onnx` parameter (org.quac.cnn-classifier
/// converts it into the engine's network, refusing any operator it lacks with the node's name) and
/// writes the plugin's model file with its `save`, so nothing is written unless the whole graph
/// converted.
public enum OnnxFileImport {
    public static let defaultPlugin = "org.quac.cnn-classifier"

    public struct Summary {
        public let inputShape: [Int]
        public let numClasses: Int
    }

    public static func run(model: URL, pluginID: String, params: JSONValue, output: URL, registry: PluginRegistry) throws -> Summary {
        let manifest = try registry.manifest(id: pluginID)
        guard manifest.parameters["properties"]?["onnx"]?["format"]?.stringValue == "path" else {
            throw QuacError("\(pluginID) cannot import ONNX files: its parameters have no \"onnx\" path (\(manifest.url.path))")
        }
        guard manifest.trainable else { throw QuacError("\(pluginID) cannot import ONNX files: it does not save models (\(manifest.url.path))") }
        guard var p = params.objectValue else { throw QuacError("--params: expected a JSON object") }
        for key in ["onnx", "weights", "state_dict", "architecture"] where p[key] != nil {
            throw QuacError("--params: leave out \(key): the ONNX file is the network and its weights")
        }
        guard FileManager.default.isReadableFile(atPath: model.path) else { throw QuacError("\(model.path): no such readable file") }
        p["onnx"] = .string(model.path)
        try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        let instance = try PluginInstance(manifest: manifest, params: .object(p), paramsSource: "--params")
        let info = try instance.info()
        try instance.save(to: output)
        return Summary(inputShape: info.sampleShape, numClasses: info.numClasses)
    }
}
