import Foundation

/// "1.5 MiB", for messages and listings.
package func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 {
        v /= 1024
        u += 1
    }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

/// Lower-case hexadecimal.
///
/// Written out by hand: `String(format: "%02x")` per byte took over a tenth of an unpack's CPU, whose move plan holds
/// every staged and target name in hex.
package func hex(_ bytes: some Collection<UInt8>) -> String {
    let digits: StaticString = "0123456789abcdef"
    return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
        digits.withUTF8Buffer { d in
            var i = 0
            for b in bytes {
                out[i] = d[Int(b >> 4)]
                out[i + 1] = d[Int(b & 15)]
                i += 2
            }
            return i
        }
    }
}

/// A name as it may be shown to a person: C0 and C1 control characters, DEL and bytes that are not valid UTF-8
/// are escaped (`\n`, `\t`, `\x1b`, `\u{85}`, `\xff`), and so is the backslash itself (`\\`), so an entry called
/// `a\nb` cannot print a fake line or move the cursor, and no two names look the same. JSON output must use the
/// exact name instead (JSON escapes it itself).
package func displayName(_ name: String) -> String { displayName(bytes: Array(name.utf8)) }

/// A message that may hold names: control characters other than the newline are escaped as in
/// `displayName(_:)`, backslashes are kept (names already escaped stay as they are).
package func displayMessage(_ message: String) -> String {
    message.split(separator: "\n", omittingEmptySubsequences: false)
        .map { displayName(bytes: Array($0.utf8), escapingBackslash: false) }.joined(separator: "\n")
}

/// `displayName(_:)` for raw bytes (e.g. a file name read from a directory that is not valid UTF-8).
package func displayName(bytes: [UInt8], escapingBackslash: Bool = true) -> String {
    var out = ""
    var i = 0
    func hexByte(_ b: UInt8) -> String { "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16) }
    while i < bytes.count {
        let b = bytes[i]
        if b < 0x80 {
            switch b {
            case 0x0A: out += "\\n"
            case 0x09: out += "\\t"
            case 0x0D: out += "\\r"
            case 0x5C: out += escapingBackslash ? "\\\\" : "\\"
            case 0..<0x20, 0x7F: out += hexByte(b)
            default: out.unicodeScalars.append(Unicode.Scalar(b))
            }
            i += 1
            continue
        }
        // One UTF-8 sequence: its length from the lead byte, then validated as a whole.
        let length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
        if length > 1, i + length <= bytes.count,
            let s = String(validating: bytes[i..<i + length], as: UTF8.self), let scalar = s.unicodeScalars.first,
            s.unicodeScalars.count == 1
        {
            if (0x80...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
            i += length
        } else {
            out += hexByte(b)
            i += 1
        }
    }
    return out
}
