import Foundation

/// Inline SVG charts: one plot per scorer with every method's median curve and interquartile band.
enum ReportCharts {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                          "#7f7f7f", "#bcbd22", "#393b79", "#ad494a", "#637939", "#e7969c", "#31a354", "#843c39"]

    static func colour(_ index: Int) -> String { palette[index % palette.count] }
    /// Past the palette, lines are dashed so no two methods look alike.
    static func dash(_ index: Int) -> String { index >= palette.count ? " stroke-dasharray=\"6 3\"" : "" }

    static func curves(_ curves: [Comparison.Curve], methods: [String], title: String, xLabel: String, yLabel: String) -> String {
        // The legend gets its own column on the right so it never hides a curve.
        let legendWidth = 190.0
        let width = 660.0, height = 320.0, left = 52.0, right = 12.0 + legendWidth, top = 26.0, bottom = 40.0
        let xs = curves.flatMap(\.x), ys = curves.flatMap { $0.q25 + $0.q75 + $0.median }.filter(\.isFinite)
        guard let x0 = xs.min(), let x1 = xs.max(), var y0 = ys.min(), var y1 = ys.max() else { return "" }
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / max(x1 - x0, 1e-12) * (width - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(HTML.escape(title))\">"
        svg += "<text x=\"\(f(width / 2))\" y=\"16\" text-anchor=\"middle\" class=\"title\">\(HTML.escape(title))</text>"
        // Axes with five ticks each.
        for i in 0...4 {
            let yv = y0 + (y1 - y0) * Double(i) / 4, xv = x0 + (x1 - x0) * Double(i) / 4
            svg += "<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(py(yv)))\" y2=\"\(f(py(yv)))\" class=\"grid\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(py(yv) + 4))\" text-anchor=\"end\" class=\"tick\">\(String(format: "%.3g", yv))</text>"
            svg += "<text x=\"\(f(px(xv)))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\" class=\"tick\">\(String(format: "%.2f", xv))</text>"
        }
        svg += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\" class=\"axis\">\(HTML.escape(xLabel))</text>"
        svg += "<text transform=\"translate(14 \(f((top + height - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\" class=\"axis\">\(HTML.escape(yLabel))</text>"
        for c in curves {
            let colour = colour(methods.firstIndex(of: c.method) ?? 0)
            let upper = zip(c.x, c.q75).map { "\(f(px($0))),\(f(py($1)))" }
            let lower = zip(c.x, c.q25).reversed().map { "\(f(px($0))),\(f(py($1)))" }
            svg += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(colour)\" fill-opacity=\"0.15\" stroke=\"none\"/>"
            let index = methods.firstIndex(of: c.method) ?? 0
            svg += "<polyline points=\"\(zip(c.x, c.median).map { "\(f(px($0))),\(f(py($1)))" }.joined(separator: " "))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\"\(dash(index)) data-method=\"\(HTML.escape(c.method))\"><title>\(HTML.escape(c.method))</title></polyline>"
        }
        // Legend.
        for (i, c) in curves.enumerated() {
            let y = top + 8 + Double(i) * 17
            let index = methods.firstIndex(of: c.method) ?? 0
            let x = width - legendWidth + 8
            svg += "<line x1=\"\(f(x))\" x2=\"\(f(x + 18))\" y1=\"\(f(y - 3))\" y2=\"\(f(y - 3))\" stroke=\"\(colour(index))\" stroke-width=\"3\"\(dash(index))/>"
            svg += "<text x=\"\(f(x + 24))\" y=\"\(f(y + 1))\" class=\"legend\">\(HTML.escape(c.method))</text>"
        }
        return svg + "</svg>"
    }
}

enum HTML {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
