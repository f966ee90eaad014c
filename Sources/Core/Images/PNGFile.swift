import CPNG
import Foundation

/// PNG through libpng's simplified API (`png_image_*`), which reports errors in the `png_image` instead
/// of longjmp-ing through the caller's frames (libpng runs its own setjmp inside; nothing unwinds
/// through Swift).
///
/// Reading: 1, 2, 4, 8 and 16-bit gray, gray+alpha, RGB, RGBA and palette images; palettes and low bit
/// depths are expanded to 8 bits, 16-bit files stay 16-bit. Pixel values come back as stored: the
/// color-space chunks (gAMA, sRGB, iCCP, cHRM) are left out before libpng sees the file, so no gamma
/// conversion happens (PIL and OpenCV ignore them too). One difference remains: libpng's 16-bit output
/// with alpha is premultiplied; it is divided back out, which is exact where alpha is opaque and loses
/// low bits where alpha is small (color under alpha 0 reads as 0).
///
/// Writing: 8- or 16-bit gray, gray+alpha, RGB, RGBA (16-bit with alpha is refused: libpng's simplified
/// writer expects premultiplied data there).
public enum PNGFile {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// Chunks that would make libpng convert gamma; dropped before decoding.
    static let colorSpaceChunks: Set<String> = ["gAMA", "sRGB", "iCCP", "cHRM"]
    /// Refuse images with more samples than this (a corrupt header must not allocate gigabytes).
    /// Samples (pixels x channels) an image may have: 2^28, e.g. 8192 x 8192 RGBA (1 GiB as float; TIFF
    /// counts at least 4 samples a pixel), so a few bytes of header cannot ask for gigabytes.
    public static let maxSamples = 1 << 28

    public static func read(_ url: URL) throws -> RasterImage {
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: url)) } catch {
            throw FileError(path: url.path, reason: "cannot read: \((error as NSError).localizedDescription)")
        }
        return try decode(bytes, path: url.path)
    }

    /// Decodes PNG bytes; `path` names the file in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> RasterImage {
        func fail(_ reason: String) -> FileError { FileError(path: path, reason: reason) }
        guard bytes.count > 0 else { throw fail("empty file, expected a PNG image") }
        guard bytes.count >= 8, Array(bytes.prefix(8)) == signature else {
            throw fail("not a PNG file (the file starts with \(ImageFile.describe(Array(bytes.prefix(8)))))")
        }
        let cleaned = try checkedChunks(bytes, fail: fail)

        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        return try cleaned.withUnsafeBytes { raw -> RasterImage in
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                throw fail("PNG decode failed: \(message(image))")
            }
            let linear = image.format & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0
            let format = image.format & ~UInt32(PNG_FORMAT_FLAG_COLORMAP)
            image.format = format
            let hasAlpha = format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
            let color = format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
            let channels = (color ? 3 : 1) + (hasAlpha ? 1 : 0)
            let w = Int(image.width), h = Int(image.height)
            guard w > 0, h > 0, case let (pixels, false) = w.multipliedReportingOverflow(by: h), pixels <= maxSamples / channels else {
                throw fail("image of \(w)x\(h) pixels is too large to decode")
            }
            let stride = Int32(w * channels)
            var notes: [String] = []
            let samples: RasterImage.Samples
            if linear {
                var buf = [UInt16](repeating: 0, count: w * h * channels)
                let ok = buf.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, stride, nil) }
                guard ok != 0 else { throw fail("PNG decode failed: \(message(image))") }
                if hasAlpha { unpremultiply(&buf, channels: channels) }
                samples = .uint16(buf)
            } else {
                var buf = [UInt8](repeating: 0, count: w * h * channels)
                let ok = buf.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, stride, nil) }
                guard ok != 0 else { throw fail("PNG decode failed: \(message(image))") }
                samples = .uint8(buf)
            }
            if image.warning_or_error & UInt32(PNG_IMAGE_WARNING) != 0 { notes.append("libpng: \(message(image))") }
            return RasterImage(width: w, height: h, channels: channels, colorChannels: color ? 3 : 1, samples: samples, notes: notes)
        }
    }

    /// Walks the chunk list: names truncation and corruption precisely (libpng only says "read error"),
    /// and returns the file without color-space chunks.
    static func checkedChunks(_ bytes: [UInt8], fail: (String) -> FileError) throws -> [UInt8] {
        var out = signature
        out.reserveCapacity(bytes.count)
        var pos = 8
        var first = true
        while true {
            guard pos + 8 <= bytes.count else {
                throw fail("truncated PNG: the file ends after \(bytes.count) bytes, before the IEND chunk")
            }
            let length = Int(bytes[pos]) << 24 | Int(bytes[pos + 1]) << 16 | Int(bytes[pos + 2]) << 8 | Int(bytes[pos + 3])
            let typeBytes = Array(bytes[(pos + 4)..<(pos + 8)])
            guard typeBytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
                throw fail("corrupt PNG: bad chunk type \(ImageFile.describe(typeBytes)) at byte \(pos + 4)")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard length <= 0x7FFF_FFFF else { throw fail("corrupt PNG: chunk \(type) at byte \(pos) declares \(length) bytes") }
            if first, type != "IHDR" { throw fail("corrupt PNG: the first chunk is \(type), expected IHDR") }
            first = false
            let end = pos + 12 + length
            guard end <= bytes.count else {
                throw fail("truncated PNG: chunk \(type) at byte \(pos) needs \(12 + length) bytes, only \(bytes.count - pos) remain")
            }
            if !colorSpaceChunks.contains(type) { out += bytes[pos..<end] }
            pos = end
            if type == "IEND" { return out }
        }
    }

    /// Divides premultiplied 16-bit color by alpha (the last channel).
    static func unpremultiply(_ buf: inout [UInt16], channels: Int) {
        let colors = channels - 1
        var i = 0
        while i < buf.count {
            let a = UInt32(buf[i + colors])
            if a != 0 && a != 65535 {
                for c in 0..<colors {
                    buf[i + c] = UInt16(min((UInt32(buf[i + c]) * 65535 + a / 2) / a, 65535))
                }
            }
            i += channels
        }
    }

    static func message(_ image: png_image) -> String {
        let text = withUnsafeBytes(of: image.message) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        return text.isEmpty ? "unknown libpng error" : text
    }

    // MARK: Writing

    /// Writes an 8- or 16-bit image atomically.
    public static func write(_ image: RasterImage, to url: URL) throws {
        let bytes = try encode(image, path: url.path)
        try AtomicFile.write(Data(bytes), to: url)
    }

    /// Writes a float32 tensor ([H, W], [1, H, W] or [3, H, W]) as an 8-bit gray or RGB PNG, mapping
    /// values with `mapping` (rounded, clamped).
    public static func write(_ tensor: Tensor, mapping: RasterImage.Mapping, to url: URL) throws {
        let image: RasterImage
        do { image = try RasterImage(tensor: tensor, mapping: mapping) } catch let e as TensorError {
            throw FileError(path: url.path, reason: e.description)
        }
        try write(image, to: url)
    }

    public static func encode(_ image: RasterImage, path: String) throws -> [UInt8] {
        func fail(_ reason: String) -> FileError { FileError(path: path, reason: reason) }
        guard image.width > 0, image.height > 0 else { throw fail("cannot write a PNG with no pixels (\(image.width)x\(image.height))") }
        guard image.channels <= 4, image.channels == image.colorChannels || image.channels == image.colorChannels + 1 else {
            throw fail("PNG holds gray, gray+alpha, RGB or RGBA; this image has \(image.channels) channels")
        }
        let alpha = image.channels > image.colorChannels
        var format: UInt32 = 0
        if alpha { format |= UInt32(PNG_FORMAT_FLAG_ALPHA) }
        if image.colorChannels == 3 { format |= UInt32(PNG_FORMAT_FLAG_COLOR) }
        var img = png_image()
        img.version = UInt32(PNG_IMAGE_VERSION)
        img.width = UInt32(image.width)
        img.height = UInt32(image.height)
        defer { png_image_free(&img) }
        let stride = Int32(image.width * image.channels)

        func run(_ pixels: UnsafeRawPointer) throws -> [UInt8] {
            img.format = format
            var size: Int = 0
            guard png_image_write_to_memory(&img, nil, &size, 0, pixels, stride, nil) != 0 else {
                throw fail("PNG encode failed: \(message(img))")
            }
            var out = [UInt8](repeating: 0, count: size)
            let ok = out.withUnsafeMutableBytes { png_image_write_to_memory(&img, $0.baseAddress, &size, 0, pixels, stride, nil) }
            guard ok != 0 else { throw fail("PNG encode failed: \(message(img))") }
            return Array(out.prefix(size))
        }
        switch image.samples {
        case .uint8(let a): return try a.withUnsafeBytes { try run($0.baseAddress!) }
        case .uint16(let a):
            guard !alpha else { throw fail("writing 16-bit PNG with alpha is not supported") }
            format |= UInt32(PNG_FORMAT_FLAG_LINEAR)
            return try a.withUnsafeBytes { try run($0.baseAddress!) }
        case .float32:
            throw fail("PNG stores 8- or 16-bit integers; convert float samples first (or write a TIFF)")
        }
    }
}
