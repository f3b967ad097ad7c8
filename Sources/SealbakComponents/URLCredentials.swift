/// Passwords inside URLs, `scheme://user:password@host` (also `redis://:password@host`), wherever they appear.
///
/// The authority ends at `/`, `?`, `#`, whitespace or a quote; its last `@` ends the user information, whose first
/// `:` starts the password. A password that already is `redactedPlaceholder` is not counted.
package enum URLCredentials {
    /// Byte ranges of the passwords in `u`.
    package static func passwordRanges(_ u: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        let placeholder = Array(redactedPlaceholder.utf8)
        var k = 0
        while k + 3 <= u.count {
            guard u[k] == UInt8(ascii: ":"), u[k + 1] == UInt8(ascii: "/"), u[k + 2] == UInt8(ascii: "/") else {
                k += 1
                continue
            }
            // A scheme of letters, digits, "+", "-", "." that starts with a letter.
            var s = k
            while s > 0, isSchemeByte(u[s - 1]) { s -= 1 }
            while s < k, !isLetter(u[s]) { s += 1 }
            let authorityStart = k + 3
            var end = authorityStart
            while end < u.count, !endsAuthority(u[end]) { end += 1 }
            k = max(end, k + 3)
            guard s < authorityStart - 3, let at = u[authorityStart..<end].lastIndex(of: UInt8(ascii: "@")),
                let colon = u[authorityStart..<at].firstIndex(of: UInt8(ascii: ":")), colon + 1 < at
            else { continue }
            if Array(u[(colon + 1)..<at]) == placeholder { continue }
            out.append((colon + 1)..<at)
        }
        return out
    }

    /// Whether a string, or any string inside an array, holds a URL password.
    static func holdsPassword(_ value: TOMLValue) -> Bool {
        switch value {
        case .string(let s): return holdsPassword(s)
        case .array(let a): return a.contains(where: holdsPassword)
        case .table(let t): return t.keys.contains { t[$0].map(holdsPassword) ?? false }
        default: return false
        }
    }

    static func holdsPassword(_ s: String) -> Bool { !passwordRanges(Array(s.utf8)).isEmpty }

    /// `s` with every URL password replaced by `redactedPlaceholder`.
    package static func redact(_ s: String) -> String {
        let u = Array(s.utf8)
        let ranges = passwordRanges(u)
        guard !ranges.isEmpty else { return s }
        var out: [UInt8] = []
        var last = 0
        for r in ranges {
            out += u[last..<r.lowerBound]
            out += Array(redactedPlaceholder.utf8)
            last = r.upperBound
        }
        out += u[last...]
        return String(decoding: out, as: UTF8.self)
    }

    static func isLetter(_ c: UInt8) -> Bool { c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z") }

    static func isSchemeByte(_ c: UInt8) -> Bool {
        isLetter(c) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "+") || c == UInt8(ascii: "-")
            || c == UInt8(ascii: ".")
    }

    static func endsAuthority(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "\""), UInt8(ascii: "'"),
            UInt8(ascii: "`"), 0x7F:
            return true
        default: return c <= 0x20
        }
    }
}
