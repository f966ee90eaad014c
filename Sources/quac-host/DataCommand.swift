import ArgumentParser
import Foundation
import QuacHost

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Make datasets.", subcommands: [Toy.self])

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
}
