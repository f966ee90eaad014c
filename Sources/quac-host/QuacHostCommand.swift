import ArgumentParser
import QuacHost

@main
struct QuacHostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "quac-host", abstract: "Explain classifiers with plugins.")
    func run() throws { print("quac-host") }
}
