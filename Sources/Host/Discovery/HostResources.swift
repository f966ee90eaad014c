import Foundation

/// Where the host's own files are: the JSON Schemas of both manifest kinds and the manifests of the
/// built-in plugins. An installed quac-host (`make install PREFIX=...`) finds them in
/// `<prefix>/share/quac-host`; a build tree's quac-host in the resource folder SwiftPM puts next to
/// the executable (`quac-host_QuacHost.resources`).
public enum HostResources {
    public static let directory: URL = {
        if let share = installedShareDirectory { return share }
        return Bundle.module.resourceURL ?? Bundle.module.bundleURL
    }()

    /// `<prefix>/share/quac-host` when the running executable is `<prefix>/bin/quac-host` of an install.
    static var installedShareDirectory: URL? {
        guard let exe = LibrarySearch.executableDirectory else { return nil }
        let share = exe.deletingLastPathComponent().appendingPathComponent("share/quac-host")
        return FileManager.default.fileExists(atPath: share.appendingPathComponent("schemas").path) ? share : nil
    }

    public static var schemas: URL { directory.appendingPathComponent("schemas") }
    /// The manifests of the plugins that come with quac-host.
    public static var builtinPlugins: URL { directory.appendingPathComponent("plugins") }
}
