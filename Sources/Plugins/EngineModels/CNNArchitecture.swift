import Engine
import Foundation
import QuacPluginKit

/// The network a CNN classifier instance runs, as ModelFile JSON: either the caller's own
/// "architecture", or the "vgg" preset built for the input shape.
///
/// The preset is QuAC's Vgg2D: per level [conv3x3-BN-ReLU, conv3x3-BN-ReLU, maxpool 2], then
/// flatten -> linear-ReLU-dropout -> linear-ReLU-dropout -> linear. It is laid out as a graph with the
/// nodes "features", "flatten" and "classifier", so parameter names are Vgg2D's state_dict names
/// ("features.0.weight", "features.1.running_mean", "classifier.6.bias") and PyTorch weights load
/// unchanged. Dropout layers are always present (p = 0 makes them the identity) to keep those indices.
enum CNNArchitecture {
    struct Preset: Equatable {
        var inputShape: [Int]
        var numClasses: Int
        var channels: [Int]
        var fc: [Int]
        var dropout: Double

        /// The spatial size after the pooling levels, or nil when an image is too small for them.
        var featureSize: (Int, Int)? {
            var (h, w) = (inputShape[1], inputShape[2])
            for _ in channels {
                h /= 2; w /= 2
                if h < 1 || w < 1 { return nil }
            }
            return (h, w)
        }
    }

    /// Reads the preset's parameters (defaults: QuAC's reference network for 1x128x128, two classes).
    static func preset(_ p: Parameters) throws -> Preset {
        let shape = try p.ints("input_shape")
        guard shape.count == 3, shape.allSatisfy({ $0 >= 1 }) else {
            throw PluginError.invalid("input_shape must be [C, H, W] with positive sizes for the vgg preset, got \(shape)")
        }
        let classes = try p.int("num_classes")
        guard classes >= 1 else { throw PluginError.invalid("num_classes must be at least 1, got \(classes)") }
        let channels = try p.ints("channels")
        guard !channels.isEmpty, channels.allSatisfy({ $0 >= 1 }) else {
            throw PluginError.invalid("channels must be a non-empty list of positive feature-map counts, got \(channels)")
        }
        let fc = try p.ints("fc")
        guard fc.allSatisfy({ $0 >= 1 }) else { throw PluginError.invalid("fc must list positive layer widths, got \(fc)") }
        let dropout = try p.double("dropout")
        guard dropout >= 0, dropout < 1 else { throw PluginError.invalid("dropout must be in [0, 1), got \(dropout)") }
        let preset = Preset(inputShape: shape, numClasses: classes, channels: channels, fc: fc, dropout: dropout)
        guard preset.featureSize != nil else {
            throw PluginError.invalid("input_shape \(shape) is too small for \(channels.count) max-pooling levels (each halves H and W)")
        }
        return preset
    }

    /// The ModelFile description of the preset, with Kaiming-normal initialization.
    static func vgg(_ p: Preset) -> JSONValue {
        func int(_ v: Int) -> JSONValue { .int(Int64(v)) }
        var features: [JSONValue] = []
        var inChannels = p.inputShape[0]
        for out in p.channels {
            features += [
                ["type": "conv2d", "in": int(inChannels), "out": int(out), "kernel": 3, "padding": 1],
                ["type": "batch_norm", "channels": int(out)], ["type": "relu"],
                ["type": "conv2d", "in": int(out), "out": int(out), "kernel": 3, "padding": 1],
                ["type": "batch_norm", "channels": int(out)], ["type": "relu"],
                ["type": "max_pool2d", "kernel": 2],
            ]
            inChannels = out
        }
        let (h, w) = p.featureSize!
        var classifier: [JSONValue] = []
        var width = inChannels * h * w
        for (i, units) in p.fc.enumerated() {
            classifier += [["type": "linear", "in": int(width), "out": int(units)], ["type": "relu"],
                           ["type": "dropout", "p": .double(p.dropout), "seed": int(i)]]
            width = units
        }
        classifier.append(["type": "linear", "in": int(width), "out": int(p.numClasses)])
        return [
            "type": "graph", "init": "kaiming_normal", "output": "classifier",
            "nodes": [
                ["name": "features", "layer": ["type": "sequential", "layers": .array(features)]],
                ["name": "flatten", "layer": ["type": "flatten"]],
                ["name": "classifier", "layer": ["type": "sequential", "layers": .array(classifier)]],
            ],
        ]
    }

}
