import Foundation

/// "1.5 MiB", for messages and listings.
package func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

/// Lower-case hexadecimal.
package func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
