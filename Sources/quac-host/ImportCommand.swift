import ArgumentParser
import Foundation
import QuacHost

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a PyTorch checkpoint (torch.save) or an ONNX file into a plugin's model file.",
        discussion: """
        Reads the checkpoint without Python and without running anything in it (only dicts, lists, numbers, \
        strings and tensors are accepted), hands its tensors to the plugin, which checks every name and shape \
        against the network its parameters describe, and writes the plugin's model file: use it as the \
        plugin's "weights". Examples: a classifier's state dict (--as org.quac.cnn-classifier, with the \
        network's input_shape, num_classes, channels and fc), a QuAC StarGAN checkpoint (--as \
        org.quac.stargan-converter, with image_size, input_channels, num_classes and the widths). \
        A file ending in .onnx (torch.onnx.export) is converted into the engine's network, its input shape \
        and class count read from the graph (--as defaults to org.quac.cnn-classifier); use the model file \
        with {"preset": "file", "weights": FILE}. An operator the engine lacks stops the import naming the \
        node; nothing is written.
        """)
    @Argument(help: "The checkpoint file (torch.save output) or ONNX file (.onnx).") var checkpoint: String
    @Option(name: .customLong("as"), help: "The plugin id to import into (for .onnx files, default org.quac.cnn-classifier).") var plugin: String?
    @Option(help: "JSON parameters describing the plugin's network (as in a pipeline manifest).") var params: String = "{}"
    @Option(help: "The model file to write.") var output: String
    @OptionGroup var paths: PluginPathOptions

    func run() throws {
        try QuacHostCommand.guarded {
            let p: JSONValue
            do { p = try JSONParser.parse(params) } catch { throw QuacError("--params: malformed JSON at \(error)") }
            let out = URL(fileURLWithPath: output)
            if checkpoint.lowercased().hasSuffix(".onnx") {
                let id = plugin ?? OnnxFileImport.defaultPlugin
                let summary = try OnnxFileImport.run(model: URL(fileURLWithPath: checkpoint), pluginID: id, params: p,
                                                     output: out, registry: paths.registry)
                print("imported \(checkpoint) into \(id): input_shape \(summary.inputShape), \(summary.numClasses) classes: \(out.path)")
                print("use it as {\"plugin\": \"\(id)\", \"params\": {\"preset\": \"file\", \"weights\": \"\(out.path)\"}}")
                return
            }
            guard let plugin else { throw QuacError("--as: name the plugin to import the checkpoint into (e.g. org.quac.cnn-classifier)") }
            let summary = try CheckpointImport.run(checkpoint: URL(fileURLWithPath: checkpoint), pluginID: plugin, params: p,
                                                   output: out, registry: paths.registry)
            print("imported \(summary.tensors) tensors into \(plugin): \(out.path)")
            if !summary.skipped.isEmpty {
                print("not tensors, not imported: \(summary.skipped.prefix(10).joined(separator: ", "))\(summary.skipped.count > 10 ? ", ..." : "")")
            }
        }
    }
}
