import CTIFF
import Foundation

/// TIFF through libtiff. libtiff reports errors by return value; its messages go to a per-file handler
/// (TIFFOpenOptions, libtiff >= 4.5) that collects them for the FileError, so nothing is printed and
/// nothing unwinds.
///
/// Reading (first page; a multi-page file gets a note): 8- and 16-bit unsigned and 16/32/64-bit float
/// gray (MinIsBlack, MinIsWhite inverted) and RGB, contiguous or planar, strips or tiles, any codec
/// libtiff has, read directly at full precision. Anything else libtiff can display (palette, 1/2/4-bit,
/// YCbCr/JPEG, CMYK, ...) is decoded to 8-bit through TIFFReadRGBAImage, with a note. Signed integer and
/// complex samples are refused. Float samples are taken as intensities in [0, 1].
///
/// Writing: 8/16-bit unsigned or float32, gray or RGB (+ extra channels as unassociated alpha), deflate.
public enum TIFFFile {
    /// Collects libtiff's messages for one file.
    final class Messages {
        var errors: [String] = []
        var warnings: [String] = []
    }

    static let errorHandler: TIFFErrorHandlerExtR = { _, user, module, fmt, ap in
        guard let user, let fmt, let ap else { return 1 }
        let box = Unmanaged<Messages>.fromOpaque(user).takeUnretainedValue()
        box.errors.append(format(module, fmt, ap))
        return 1
    }
    static let warningHandler: TIFFErrorHandlerExtR = { _, user, module, fmt, ap in
        guard let user, let fmt, let ap else { return 1 }
        let box = Unmanaged<Messages>.fromOpaque(user).takeUnretainedValue()
        box.warnings.append(format(module, fmt, ap))
        return 1
    }

    static func format(_ module: UnsafePointer<CChar>?, _ fmt: UnsafePointer<CChar>, _ ap: CVaListPointer) -> String {
        var buf = [CChar](repeating: 0, count: 1024)
        _ = vsnprintf(&buf, buf.count, fmt, ap)
        let text = String(cString: buf)
        if let module, module.pointee != 0 { return "\(String(cString: module)): \(text)" }
        return text
    }

    /// Opens a file with the collecting handlers; the caller closes the TIFF.
    static func open(path: String, fd: Int32? = nil, mode: String, messages: Messages) -> OpaquePointer? {
        guard let opts = TIFFOpenOptionsAlloc() else { return nil }
        defer { TIFFOpenOptionsFree(opts) }
        let user = Unmanaged.passUnretained(messages).toOpaque()
        TIFFOpenOptionsSetErrorHandlerExtR(opts, errorHandler, user)
        TIFFOpenOptionsSetWarningHandlerExtR(opts, warningHandler, user)
        if let fd { return TIFFFdOpenExt(fd, path, mode, opts) }
        return TIFFOpenExt(path, mode, opts)
    }

    static func getField<T>(_ tif: OpaquePointer, _ tag: Int32, _ initial: T, defaulted: Bool = true) -> T? {
        var value = initial
        let ok = withUnsafeMutablePointer(to: &value) { p in
            withVaList([p]) { defaulted ? TIFFVGetFieldDefaulted(tif, UInt32(tag), $0) : TIFFVGetField(tif, UInt32(tag), $0) }
        }
        return ok == 1 ? value : nil
    }

    // MARK: Reading

    /// `maxSamples` bounds what a header may make the reader allocate (the fuzzing harness lowers it so
    /// that its executions are spent on parsing, not on zeroing large images).
    public static func read(_ url: URL, maxSamples: Int = PNGFile.maxSamples) throws -> RasterImage {
        let path = url.path
        let messages = Messages()
        func fail(_ what: String) -> FileError {
            // libtiff often starts its message with the path; the FileError says it already.
            let detail = messages.errors.last.map { ": " + $0.replacingOccurrences(of: path + ": ", with: "") } ?? ""
            return FileError(path: path, reason: what + detail)
        }
        // libtiff's own "cannot open" messages are vague about a missing file; check first.
        let head = try ImageFile.readHead(url, count: 4)
        guard ImageFile.sniff(head) == .tiff else {
            if head.isEmpty { throw FileError(path: path, reason: "empty file, expected a TIFF image") }
            throw FileError(path: path, reason: "not a TIFF file (the file starts with \(ImageFile.describe(head)))")
        }
        guard let tif = open(path: path, mode: "r", messages: messages) else {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
            throw fail("cannot open as TIFF (truncated or corrupt\(size.map { ", \($0) bytes" } ?? ""))")
        }
        defer { TIFFClose(tif) }

        guard let w32 = getField(tif, TIFFTAG_IMAGEWIDTH, UInt32(0), defaulted: false),
              let h32 = getField(tif, TIFFTAG_IMAGELENGTH, UInt32(0), defaulted: false) else {
            throw fail("malformed TIFF: no image width or length")
        }
        let w = Int(w32), h = Int(h32)
        let spp = Int(getField(tif, TIFFTAG_SAMPLESPERPIXEL, UInt16(1)) ?? 1)
        let bps = Int(getField(tif, TIFFTAG_BITSPERSAMPLE, UInt16(1)) ?? 1)
        let sampleFormat = Int32(getField(tif, TIFFTAG_SAMPLEFORMAT, UInt16(SAMPLEFORMAT_UINT)) ?? UInt16(SAMPLEFORMAT_UINT))
        let planar = Int32(getField(tif, TIFFTAG_PLANARCONFIG, UInt16(PLANARCONFIG_CONTIG)) ?? UInt16(PLANARCONFIG_CONTIG))
        guard let photo16 = getField(tif, TIFFTAG_PHOTOMETRIC, UInt16(0), defaulted: false) else {
            throw fail("malformed TIFF: no PhotometricInterpretation tag")
        }
        let photometric = Int32(photo16)
        guard w > 0, h > 0, spp >= 1 else { throw fail("TIFF image has no pixels (\(w)x\(h), \(spp) samples per pixel)") }
        // Width and length are each up to 2^32 - 1: their product can overflow Int.
        let (pixels, pixelsOverflow) = w.multipliedReportingOverflow(by: h)
        guard !pixelsOverflow, pixels <= maxSamples / max(spp, 4) else {
            throw fail("TIFF image of \(w)x\(h) pixels is too large to decode")
        }
        var notes: [String] = []
        let pages = Int(TIFFNumberOfDirectories(tif))
        if pages > 1 { notes.append("multi-page TIFF: read page 1 of \(pages)") }

        if sampleFormat == SAMPLEFORMAT_INT || sampleFormat == SAMPLEFORMAT_COMPLEXINT || sampleFormat == SAMPLEFORMAT_COMPLEXIEEEFP {
            throw FileError(path: path, reason: "unsupported TIFF sample format (\(sampleFormat == SAMPLEFORMAT_INT ? "signed integer" : "complex"), \(bps)-bit); expected unsigned integer or float samples")
        }
        let gray = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE
        let rgb = photometric == PHOTOMETRIC_RGB && spp >= 3
        let isFloat = sampleFormat == SAMPLEFORMAT_IEEEFP
        let direct = (gray || rgb) && (isFloat ? [16, 32, 64].contains(bps) : [8, 16].contains(bps))

        var image: RasterImage
        if direct {
            image = try readDirect(tif, w: w, h: h, spp: spp, bps: bps, isFloat: isFloat, separate: planar == PLANARCONFIG_SEPARATE,
                                   colorChannels: rgb ? 3 : 1, maxSamples: maxSamples, fail: fail)
            if photometric == PHOTOMETRIC_MINISWHITE { invertFirstChannel(&image) }
        } else {
            if isFloat { throw FileError(path: path, reason: "unsupported TIFF: \(bps)-bit float samples with photometric \(photometric)") }
            image = try readRGBA(tif, w: w, h: h, gray: gray, alpha: spp > (gray ? 1 : 3), fail: fail)
            notes.append("decoded to 8 bits through TIFFReadRGBAImage (\(bps)-bit samples, photometric \(photometric))")
        }
        image.notes = notes + messages.warnings.prefix(3).map { "libtiff: \($0)" }
        return image
    }

    static func readDirect(_ tif: OpaquePointer, w: Int, h: Int, spp: Int, bps: Int, isFloat: Bool, separate: Bool,
                           colorChannels: Int, maxSamples: Int, fail: (String) -> FileError) throws -> RasterImage {
        let b = bps / 8
        let pixelBytes = spp * b
        var out = [UInt8](repeating: 0, count: w * h * pixelBytes)
        let planes = separate ? spp : 1
        let unitBytes = separate ? b : pixelBytes          // bytes per pixel in one decoded strip/tile
        try out.withUnsafeMutableBytes { dst in
            let base = dst.baseAddress!
            /// Copies `count` pixels of one decoded unit (a row segment) to (x, y), plane `plane`.
            func place(_ src: UnsafeRawPointer, x: Int, y: Int, count: Int, plane: Int) {
                let d = base + (y * w + x) * pixelBytes
                if !separate { d.copyMemory(from: src, byteCount: count * pixelBytes); return }
                for i in 0..<count { (d + i * pixelBytes + plane * b).copyMemory(from: src + i * b, byteCount: b) }
            }
            if TIFFIsTiled(tif) != 0 {
                guard let tw32 = getField(tif, TIFFTAG_TILEWIDTH, UInt32(0)), let th32 = getField(tif, TIFFTAG_TILELENGTH, UInt32(0)),
                      tw32 > 0, th32 > 0 else { throw fail("malformed TIFF: tiled without a tile size") }
                let tw = Int(tw32), th = Int(th32)
                // A tile is allocated whole: hold it to the image's limit (libtiff accepts any tile size).
                let (tilePixels, tileOverflow) = tw.multipliedReportingOverflow(by: th)
                guard !tileOverflow, tilePixels <= maxSamples / max(spp, 4) else {
                    throw fail("malformed TIFF: tile of \(tw)x\(th) pixels is too large to decode")
                }
                let tileBytes = tilePixels * unitBytes
                guard TIFFTileSize(tif) >= tileBytes else { throw fail("malformed TIFF: tile size \(TIFFTileSize(tif)) bytes, expected \(tileBytes)") }
                var tile = [UInt8](repeating: 0, count: tileBytes)
                for plane in 0..<planes {
                    for ty in stride(from: 0, to: h, by: th) {
                        for tx in stride(from: 0, to: w, by: tw) {
                            let index = TIFFComputeTile(tif, UInt32(tx), UInt32(ty), 0, UInt16(plane))
                            let n = tile.withUnsafeMutableBytes { TIFFReadEncodedTile(tif, index, $0.baseAddress, tmsize_t(tileBytes)) }
                            guard n >= 0 else { throw fail("cannot decode tile \(index) (at x \(tx), y \(ty))") }
                            tile.withUnsafeBytes { t in
                                for yy in 0..<min(th, h - ty) {
                                    place(t.baseAddress! + yy * tw * unitBytes, x: tx, y: ty + yy, count: min(tw, w - tx), plane: plane)
                                }
                            }
                        }
                    }
                }
            } else {
                var rps = Int(getField(tif, TIFFTAG_ROWSPERSTRIP, UInt32.max) ?? UInt32.max)
                if rps <= 0 || rps > h { rps = h }
                let stripsPerPlane = (h + rps - 1) / rps
                guard Int(TIFFNumberOfStrips(tif)) >= stripsPerPlane * planes else {
                    throw fail("malformed TIFF: \(TIFFNumberOfStrips(tif)) strips, expected \(stripsPerPlane * planes)")
                }
                var strip = [UInt8](repeating: 0, count: rps * w * unitBytes)
                for plane in 0..<planes {
                    for s in 0..<stripsPerPlane {
                        let y0 = s * rps, rows = min(rps, h - y0)
                        let want = rows * w * unitBytes
                        let n = strip.withUnsafeMutableBytes {
                            TIFFReadEncodedStrip(tif, UInt32(plane * stripsPerPlane + s), $0.baseAddress, tmsize_t(want))
                        }
                        guard n >= 0 else { throw fail("cannot decode strip \(plane * stripsPerPlane + s) (rows \(y0)..<\(y0 + rows))") }
                        guard n >= want else { throw fail("truncated TIFF: strip \(plane * stripsPerPlane + s) holds \(n) bytes, expected \(want)") }
                        strip.withUnsafeBytes { st in
                            for r in 0..<rows { place(st.baseAddress! + r * w * unitBytes, x: 0, y: y0 + r, count: w, plane: plane) }
                        }
                    }
                }
            }
        }
        let n = w * h * spp
        let samples: RasterImage.Samples
        switch (isFloat, b) {
        case (false, 1): samples = .uint8(out)
        case (false, _): samples = .uint16(out.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self).prefix(n)) })
        case (true, 2): samples = .float32(out.withUnsafeBytes { $0.bindMemory(to: UInt16.self).prefix(n).map { Float(halfBits: $0) } })
        case (true, 4): samples = .float32(out.withUnsafeBytes { Array($0.bindMemory(to: Float.self).prefix(n)) })
        default: samples = .float32(out.withUnsafeBytes { $0.bindMemory(to: Double.self).prefix(n).map { Float($0) } })
        }
        return RasterImage(width: w, height: h, channels: spp, colorChannels: colorChannels, samples: samples)
    }

    static func readRGBA(_ tif: OpaquePointer, w: Int, h: Int, gray: Bool, alpha: Bool, fail: (String) -> FileError) throws -> RasterImage {
        var emsg = [CChar](repeating: 0, count: 1024)
        guard TIFFRGBAImageOK(tif, &emsg) != 0 else {
            throw fail("unsupported TIFF: \(String(cString: emsg))")
        }
        var raster = [UInt32](repeating: 0, count: w * h)
        let ok = raster.withUnsafeMutableBufferPointer {
            TIFFReadRGBAImageOriented(tif, UInt32(w), UInt32(h), $0.baseAddress, ORIENTATION_TOPLEFT, 0)
        }
        guard ok != 0 else { throw fail("cannot decode the TIFF image") }
        let color = gray ? 1 : 3
        let channels = color + (alpha ? 1 : 0)
        var out = [UInt8](repeating: 0, count: w * h * channels)
        for i in 0..<(w * h) {
            let p = raster[i]
            out[i * channels] = UInt8(p & 0xFF)
            if !gray { out[i * channels + 1] = UInt8((p >> 8) & 0xFF); out[i * channels + 2] = UInt8((p >> 16) & 0xFF) }
            if alpha { out[i * channels + color] = UInt8(p >> 24) }
        }
        return RasterImage(width: w, height: h, channels: channels, colorChannels: color, samples: .uint8(out))
    }

    static func invertFirstChannel(_ image: inout RasterImage) {
        let c = image.channels
        switch image.samples {
        case .uint8(var a): for i in stride(from: 0, to: a.count, by: c) { a[i] = 255 - a[i] }; image.samples = .uint8(a)
        case .uint16(var a): for i in stride(from: 0, to: a.count, by: c) { a[i] = 65535 - a[i] }; image.samples = .uint16(a)
        case .float32(var a): for i in stride(from: 0, to: a.count, by: c) { a[i] = 1 - a[i] }; image.samples = .float32(a)
        }
    }

    // MARK: Writing

    /// Writes the image atomically as one deflate-compressed page (uncompressed if libtiff lacks zlib).
    public static func write(_ image: RasterImage, to url: URL) throws {
        let path = url.path
        guard image.width > 0, image.height > 0 else { throw FileError(path: path, reason: "cannot write a TIFF with no pixels") }
        try AtomicFile.write(to: url) { fd in
            let messages = Messages()
            func fail(_ what: String) -> FileError {
                FileError(path: path, reason: what + (messages.errors.last.map { ": \($0)" } ?? ""))
            }
            let own = dup(fd)
            guard own >= 0, let tif = open(path: path, fd: own, mode: "w", messages: messages) else {
                throw fail("cannot open for writing as TIFF")
            }
            var closed = false
            defer { if !closed { TIFFClose(tif) } }
            func set(_ tag: Int32, _ args: [CVarArg]) throws {
                guard withVaList(args, { TIFFVSetField(tif, UInt32(tag), $0) }) == 1 else { throw fail("cannot set TIFF tag \(tag)") }
            }
            let (bps, format): (Int32, Int32) = {
                switch image.samples {
                case .uint8: return (8, SAMPLEFORMAT_UINT)
                case .uint16: return (16, SAMPLEFORMAT_UINT)
                case .float32: return (32, SAMPLEFORMAT_IEEEFP)
                }
            }()
            try set(TIFFTAG_IMAGEWIDTH, [UInt32(image.width)])
            try set(TIFFTAG_IMAGELENGTH, [UInt32(image.height)])
            try set(TIFFTAG_SAMPLESPERPIXEL, [Int32(image.channels)])
            try set(TIFFTAG_BITSPERSAMPLE, [bps])
            try set(TIFFTAG_SAMPLEFORMAT, [format])
            try set(TIFFTAG_PHOTOMETRIC, [image.colorChannels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK])
            try set(TIFFTAG_PLANARCONFIG, [PLANARCONFIG_CONTIG])
            let deflate = TIFFIsCODECConfigured(UInt16(COMPRESSION_ADOBE_DEFLATE)) != 0
            try set(TIFFTAG_COMPRESSION, [deflate ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE])
            if image.hasExtraChannels {
                var extra = [UInt16](repeating: UInt16(EXTRASAMPLE_UNASSALPHA), count: image.channels - image.colorChannels)
                try extra.withUnsafeMutableBufferPointer { try set(TIFFTAG_EXTRASAMPLES, [Int32($0.count), $0.baseAddress!]) }
            }
            try set(TIFFTAG_ROWSPERSTRIP, [TIFFDefaultStripSize(tif, 0)])
            let rowBytes = image.width * image.channels * Int(bps / 8)
            var row = [UInt8](repeating: 0, count: rowBytes)
            func writeRows(_ src: UnsafeRawBufferPointer) throws {
                for y in 0..<image.height {
                    row.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(y * rowBytes)..<((y + 1) * rowBytes)])) }
                    let ok = row.withUnsafeMutableBytes { TIFFWriteScanline(tif, $0.baseAddress, UInt32(y), 0) }
                    guard ok == 1 else { throw fail("cannot write row \(y)") }
                }
            }
            switch image.samples {
            case .uint8(let a): try a.withUnsafeBytes(writeRows)
            case .uint16(let a): try a.withUnsafeBytes(writeRows)
            case .float32(let a): try a.withUnsafeBytes(writeRows)
            }
            guard TIFFFlush(tif) == 1 else { throw fail("cannot flush the TIFF") }
            closed = true
            TIFFClose(tif)
            if let e = messages.errors.last { throw FileError(path: path, reason: "TIFF write failed: \(e)") }
        }
    }
}
