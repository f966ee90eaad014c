@_exported import QuacCore
