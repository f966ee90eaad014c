import CPNG
import CTIFF

/// Versions of the image libraries this build links, for run records.
public enum ImageLibraries {
    public static var pngVersion: String { String(cString: png_get_libpng_ver(nil)) }
    public static var tiffVersion: String { String(cString: TIFFGetVersion()).split(separator: "\n").first.map(String.init) ?? "" }
}
