import ArgumentParser
import Foundation
import QuacHost

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Make datasets.", subcommands: [Toy.self, Synth.self])

    struct Toy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a toy dataset with a known answer (images, labels, exact counterfactuals, masks) and a linear model that detects it.")
        @Option(help: "Output folder.") var output: String
        @Option(help: "Number of images.") var count = 64
        @Option(help: "Image size in pixels.") var size = 16
        @Option(help: "Seed.") var seed: UInt64 = 0

        func run() throws {
            try QuacHostCommand.guarded {
                var o = ToyDataset.Options()
                o.count = count; o.size = size; o.seed = seed
                let dir = URL(fileURLWithPath: output)
                try ToyDataset.write(to: dir, options: o)
                print("wrote \(dir.appendingPathComponent("data.safetensors").path) and model.safetensors")
            }
        }
    }

    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a synthetic cell-image dataset with ground truth: the class is a small bright dot inside one cell; masks mark it.",
            discussion: """
            png: OUTPUT/{split}/{0_negative,1_positive}/NNNN.png (8-bit gray) and OUTPUT/masks/{split}/{class}/NNNN.png \
            (255 inside the discriminative region), the layout of an image-folder manifest. safetensors: \
            OUTPUT/{split}.safetensors with images in [-1, 1], labels, masks and counterfactuals. Both write \
            OUTPUT/synth.json describing the generator. Deterministic under --seed.
            """)
        @Option(help: "Output folder.") var output: String
        @Option(help: "Images per split (classes alternate).") var count = 64
        @Option(help: "Image size in pixels (square).") var size = 64
        @Option(help: "Seed.") var seed: UInt64 = 0
        @Option(help: "Comma-separated split names.") var splits = "train,val,test"
        @Option(help: "png (class folders) or safetensors (one file per split).") var format = "png"

        func run() throws {
            try QuacHostCommand.guarded {
                var o = SynthDataset.Options()
                o.count = count; o.size = size; o.seed = seed
                o.splits = splits.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard let f = SynthDataset.Format(rawValue: format) else {
                    throw QuacError("data synth: --format must be png or safetensors, got \"\(format)\"")
                }
                o.format = f
                let dir = URL(fileURLWithPath: output)
                let files = try SynthDataset.write(to: dir, options: o)
                print("wrote \(files.count - 1) files (\(o.splits.joined(separator: ", ")), \(count) images each) and \(dir.appendingPathComponent("synth.json").path)")
            }
        }
    }
}
