import COpenBLAS
/// Engine placeholder (issue 3).
public enum EngineInfo { public static let name = "engine" }
