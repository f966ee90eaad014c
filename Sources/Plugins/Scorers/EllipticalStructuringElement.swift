/// OpenCV's `getStructuringElement(MORPH_ELLIPSE, (width, height))` with the default anchor (the
/// centre, width/2 and height/2), stored as one horizontal run of ones per row. Row i holds ones in
/// columns [start, end): with r = height/2, c = width/2 and dy = i - r, the half-width is
/// cvRound(c * sqrt((r*r - dy*dy) / r^2)) (round half to even), clipped to the element. For (10, 10)
/// this is OpenCV's printed element: one pixel in row 0, columns 2...8 in rows 1 and 9, 1...9 in rows 2
/// and 8, the full width in rows 3...7. The anchor (5, 5) is not the element's centre of symmetry, so
/// OpenCV's closing is not the textbook (extensive) closing: a lone interior pixel closes to nothing.
struct EllipticalStructuringElement: Equatable {
    let width: Int
    let height: Int
    let anchorX: Int
    let anchorY: Int
    /// Per row: the half-open column range of ones (empty when start == end).
    let runs: [(start: Int, end: Int)]

    init(width: Int, height: Int) {
        precondition(width >= 1 && height >= 1, "structuring element must be at least 1x1")
        self.width = width
        self.height = height
        let r = height / 2, c = width / 2
        anchorX = c
        anchorY = r
        // Double as in OpenCV (inv_r2 = 1./((double)r*r); the product r*r - dy*dy is an int).
        let invR2 = r != 0 ? 1.0 / (Double(r) * Double(r)) : 0
        runs = (0..<height).map { i in
            let dy = i - r
            guard abs(dy) <= r else { return (0, 0) }
            let dx = Int((Double(c) * (Double(r * r - dy * dy) * invR2).squareRoot()).rounded(.toNearestOrEven))
            return (max(c - dx, 0), min(c + dx + 1, width))
        }
    }

    /// The element as 0/1 bytes, row-major (what OpenCV prints).
    var matrix: [UInt8] {
        var m = [UInt8](repeating: 0, count: width * height)
        for (i, run) in runs.enumerated() where run.start < run.end {
            for j in run.start..<run.end { m[i * width + j] = 1 }
        }
        return m
    }

    static func == (a: EllipticalStructuringElement, b: EllipticalStructuringElement) -> Bool {
        a.width == b.width && a.height == b.height && a.matrix == b.matrix
    }
}
