import ArgumentParser
import Foundation
import QuacHost

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a PyTorch checkpoint (torch.save) into a plugin's model file.",
        discussion: """
        Reads the checkpoint without Python and without running anything in it (only dicts, lists, numbers, \
        strings and tensors are accepted), hands its tensors to the plugin, which checks every name and shape \
        against the network its parameters describe, and writes the plugin's model file: use it as the \
        plugin's "weights". Examples: a classifier's state dict (--as org.quac.cnn-classifier, with the \
        network's input_shape, num_classes, channels and fc), a QuAC StarGAN checkpoint (--as \
        org.quac.stargan-converter, with image_size, input_channels, num_classes and the widths).
        """)
    @Argument(help: "The checkpoint file (torch.save output).") var checkpoint: String
    @Option(name: .customLong("as"), help: "The plugin id to import into.") var plugin: String
    @Option(help: "JSON parameters describing the plugin's network (as in a pipeline manifest).") var params: String = "{}"
    @Option(help: "The model file to write.") var output: String
    @OptionGroup var paths: PluginPathOptions

    func run() throws {
        try QuacHostCommand.guarded {
            let p: JSONValue
            do { p = try JSONParser.parse(params) } catch { throw QuacError("--params: malformed JSON at \(error)") }
            let out = URL(fileURLWithPath: output)
            let summary = try CheckpointImport.run(checkpoint: URL(fileURLWithPath: checkpoint), pluginID: plugin, params: p,
                                                   output: out, registry: paths.registry)
            print("imported \(summary.tensors) tensors into \(plugin): \(out.path)")
            if !summary.skipped.isEmpty {
                print("not tensors, not imported: \(summary.skipped.prefix(10).joined(separator: ", "))\(summary.skipped.count > 10 ? ", ..." : "")")
            }
        }
    }
}
