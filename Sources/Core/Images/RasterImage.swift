import Foundation

/// A decoded image as its file stores it: interleaved samples, row-major, top row first
/// (`samples[(y * width + x) * channels + c]`). PNG and TIFF readers return one; the writers take one.
///
/// `colorChannels` is 1 (gray) or 3 (RGB); any further channels are alpha or other extra samples, which
/// conversion to a model's input drops (as PIL's `convert("RGB")` and `convert("L")` do: no compositing).
public struct RasterImage: Sendable, Equatable {
    public enum Samples: Sendable, Equatable {
        case uint8([UInt8])
        case uint16([UInt16])
        /// Float images (TIFF SampleFormat 3) are taken as intensities in [0, 1].
        case float32([Float])

        public var count: Int {
            switch self {
            case .uint8(let a): return a.count
            case .uint16(let a): return a.count
            case .float32(let a): return a.count
            }
        }
    }

    public let width: Int
    public let height: Int
    /// Samples per pixel, extras included.
    public let channels: Int
    /// 1 (gray) or 3 (RGB): the first samples of each pixel.
    public let colorChannels: Int
    public var samples: Samples
    /// What the reader did that a user may want to know (e.g. "multi-page TIFF: read page 1 of 3").
    public var notes: [String]

    public init(width: Int, height: Int, channels: Int, colorChannels: Int? = nil, samples: Samples, notes: [String] = []) {
        precondition(width >= 0 && height >= 0 && channels >= 1, "bad image geometry \(width)x\(height)x\(channels)")
        precondition(samples.count == width * height * channels,
                     "\(samples.count) samples for a \(width)x\(height) image with \(channels) channels")
        let color = colorChannels ?? (channels >= 3 ? 3 : 1)
        precondition(color == 1 || color == 3, "colorChannels must be 1 or 3")
        precondition(color <= channels, "colorChannels \(color) > channels \(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.colorChannels = color
        self.samples = samples
        self.notes = notes
    }

    /// 8, 16 or 32 (float).
    public var bitDepth: Int {
        switch samples {
        case .uint8: return 8
        case .uint16: return 16
        case .float32: return 32
        }
    }

    public var hasExtraChannels: Bool { channels > colorChannels }

    /// Every sample scaled to [-1, 1] the way QuAC's data loaders do (ToTensor then Normalize(0.5, 0.5)):
    /// uint8 x / 127.5 - 1, uint16 x / 32767.5 - 1, float32 2x - 1 (not clamped).
    @inline(__always)
    private static func scale8(_ v: UInt8) -> Float { Float(v) / 127.5 - 1 }
    @inline(__always)
    private static func scale16(_ v: UInt16) -> Float { Float(v) / 32767.5 - 1 }

    /// The image as planes (channel-major, [channels][height][width]) scaled to [-1, 1], with `channels`
    /// 1 or 3: extra channels (alpha) are dropped, gray is repeated to RGB, and RGB becomes gray with
    /// ITU-R 601 luma weights (0.299 R + 0.587 G + 0.114 B, what PIL's convert("L") uses).
    public func planes(channels target: Int) -> [Float] {
        precondition(target == 1 || target == 3, "channels must be 1 or 3")
        let n = width * height
        var out = [Float](repeating: 0, count: n * target)
        let stride = channels
        out.withUnsafeMutableBufferPointer { o in
            func fill(_ sample: (Int) -> Float) {
                if colorChannels == 1 {
                    for i in 0..<n { o[i] = sample(i * stride) }
                    if target == 3 { for i in 0..<n { o[n + i] = o[i]; o[2 * n + i] = o[i] } }
                } else if target == 3 {
                    for i in 0..<n {
                        o[i] = sample(i * stride); o[n + i] = sample(i * stride + 1); o[2 * n + i] = sample(i * stride + 2)
                    }
                } else {
                    for i in 0..<n {
                        o[i] = 0.299 * sample(i * stride) + 0.587 * sample(i * stride + 1) + 0.114 * sample(i * stride + 2)
                    }
                }
            }
            switch samples {
            case .uint8(let a): a.withUnsafeBufferPointer { p in fill { Self.scale8(p[$0]) } }
            case .uint16(let a): a.withUnsafeBufferPointer { p in fill { Self.scale16(p[$0]) } }
            case .float32(let a): a.withUnsafeBufferPointer { p in fill { 2 * p[$0] - 1 } }
            }
        }
        return out
    }

    /// How float values in a tensor map to 8-bit samples when an image is written.
    public enum Mapping: String, Sendable {
        /// [-1, 1] -> 0...255: round((x + 1) * 127.5), clamped (the inverse of the loaders' scaling).
        case signedUnit = "[-1,1]"
        /// [0, 1] -> 0...255: round(x * 255), clamped.
        case unit = "[0,1]"
    }

    /// An 8-bit gray or RGB image from a float32 tensor shaped [H, W], [1, H, W] or [3, H, W].
    public init(tensor t: Tensor, mapping: Mapping) throws {
        guard t.dtype == .float32 else { throw TensorError.invalid("image from a tensor: expected float32, got \(t.dtype.displayName)") }
        let c: Int, h: Int, w: Int
        switch t.shape.count {
        case 2: (c, h, w) = (1, t.shape[0], t.shape[1])
        case 3 where t.shape[0] == 1 || t.shape[0] == 3: (c, h, w) = (t.shape[0], t.shape[1], t.shape[2])
        default: throw TensorError.invalid("image from a tensor: expected shape [H, W], [1, H, W] or [3, H, W], got \(t.shape)")
        }
        let f = t.floats
        if let i = f.firstIndex(where: { !$0.isFinite }) {
            throw TensorError.invalid("image from a tensor: element \(i) is \(f[i].isNaN ? "NaN" : "infinite")")
        }
        let n = h * w
        var bytes = [UInt8](repeating: 0, count: n * c)
        for ch in 0..<c {
            for i in 0..<n {
                let x = f[ch * n + i]
                let v: Float = mapping == .signedUnit ? (x + 1) * 127.5 : x * 255
                bytes[i * c + ch] = UInt8(min(max(v.rounded(), 0), 255))
            }
        }
        self.init(width: w, height: h, channels: c, samples: .uint8(bytes))
    }
}

/// Reads PNG and TIFF files, recognised by their first bytes (not their names).
public enum ImageFile {
    public enum Format: String, Sendable { case png, tiff }

    /// The format of a file's first bytes, or nil.
    public static func sniff(_ head: [UInt8]) -> Format? {
        if head.count >= 8, Array(head.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if head.count >= 4, head[0] == 0x49, head[1] == 0x49, (head[2] == 42 || head[2] == 43), head[3] == 0 { return .tiff }
        if head.count >= 4, head[0] == 0x4D, head[1] == 0x4D, head[2] == 0, (head[3] == 42 || head[3] == 43) { return .tiff }
        return nil
    }

    /// Decodes a PNG or TIFF file. Errors are FileErrors naming the path and what is wrong.
    public static func read(_ url: URL) throws -> RasterImage {
        // A FIFO or device named like an image would block (or never end) when read.
        var info = stat()
        if stat(url.path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
            throw FileError(path: url.path, reason: "not a regular file (a FIFO, device or socket), expected a PNG or TIFF image")
        }
        let head = try readHead(url, count: 16)
        switch sniff(head) {
        case .png: return try PNGFile.read(url)
        case .tiff: return try TIFFFile.read(url)
        case nil:
            if head.isEmpty { throw FileError(path: url.path, reason: "empty file, expected a PNG or TIFF image") }
            throw FileError(path: url.path, reason: "not a PNG or TIFF image (the file starts with \(describe(head)))")
        }
    }

    /// Reads an image and makes it a model input: planes [channels, size, size] in [-1, 1], resized
    /// with `ImageResize.resize` (antialiased bilinear).
    public static func loadInput(_ url: URL, size: Int, channels: Int) throws -> (values: [Float], notes: [String]) {
        let image = try read(url)
        guard image.width > 0, image.height > 0 else { throw FileError(path: url.path, reason: "image has no pixels (\(image.width)x\(image.height))") }
        let planes = image.planes(channels: channels)
        let resized = ImageResize.resize(planes, channels: channels, height: image.height, width: image.width, toHeight: size, toWidth: size)
        if let i = resized.firstIndex(where: { !$0.isFinite }) {
            throw FileError(path: url.path, reason: "pixel \(i % (size * size)) of channel \(i / (size * size)) is not finite after decoding (NaN or infinity in a float image)")
        }
        return (resized, image.notes)
    }

    static func readHead(_ url: URL, count: Int) throws -> [UInt8] {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw FileError(path: url.path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, count) }
        guard n >= 0 else { throw FileError(path: url.path, reason: "cannot read: \(String(cString: strerror(errno)))") }
        return Array(buf.prefix(n))
    }

    static func describe(_ bytes: [UInt8]) -> String {
        let printable = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if printable, let s = String(bytes: bytes, encoding: .ascii) {
            return "text \"\(s.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\t", with: "\\t"))\""
        }
        return "bytes " + bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
    }
}
