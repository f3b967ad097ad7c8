import SealbakCrypto
import SealbakFormat

/// Recovery codes (Spec §4.5, docs/keys.md): 130 random bits and a 10-bit checksum, written as 28 Crockford
/// base32 characters in 7 groups of 4, e.g. `7K3M-Q9XZ-…`. Usable wherever a password is; a mistyped code is
/// reported as a typo instead of as a wrong password.
package enum RecoveryCode {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    static let dataChars = 26
    static let totalChars = 28

    /// Result of reading what the user typed.
    package enum Parsed {
        /// Not shaped like a recovery code: use it as a password.
        case notACode
        /// Shaped like one, checksum wrong.
        case typo
        /// The canonical code (28 characters, no separators), which is the slot's secret.
        case code(Passphrase)
    }

    /// A new random code, grouped for display.
    package static func generate(random: any RandomSource = SystemRandom()) -> (display: String, secret: Passphrase) {
        var bytes = random.bytes(17)  // 136 bits; the first 130 are used
        var chars: [UInt8] = []
        for i in 0..<dataChars { chars.append(alphabet[Int(bits(bytes, from: i * 5, count: 5))]) }
        defer {
            wipe(&bytes)
            wipe(&chars)
        }
        let all = chars + checksum(chars)
        let display = stride(from: 0, to: totalChars, by: 4).map { String(decoding: all[$0..<$0 + 4], as: UTF8.self) }
            .joined(separator: "-")
        var canonical = all
        defer { wipe(&canonical) }
        return (display, Passphrase(SecureBytes(copying: canonical)))
    }

    /// Interprets what the user typed: separators and case are ignored, O reads as 0 and I/L as 1.
    package static func parse(_ input: Passphrase) -> Parsed {
        let raw = input.bytes.withUnsafeBytes { Array($0) }
        var chars: [UInt8] = []
        for b in raw {
            switch b {
            case UInt8(ascii: "-"), UInt8(ascii: " "): continue
            case UInt8(ascii: "a")...UInt8(ascii: "z"): chars.append(normalize(b - 32))
            default: chars.append(normalize(b))
            }
        }
        // Only the exact grouped shape (or the bare 28 characters) counts as a code.
        let grouped = raw.count == 34 && stride(from: 4, to: 34, by: 5).allSatisfy { raw[$0] == UInt8(ascii: "-") }
        guard grouped || raw.count == totalChars, chars.count == totalChars, chars.allSatisfy(alphabet.contains) else {
            return .notACode
        }
        if Array(chars.suffix(2)) != checksum(Array(chars.prefix(dataChars))) { return .typo }
        defer { wipe(&chars) }
        return .code(Passphrase(SecureBytes(copying: chars)))
    }

    private static func normalize(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "O"): UInt8(ascii: "0")
        case UInt8(ascii: "I"), UInt8(ascii: "L"): UInt8(ascii: "1")
        default: c
        }
    }

    /// Two base32 characters: Σ vᵢ and Σ (i+1)·vᵢ modulo 32 over the data characters' values vᵢ. This detects
    /// every single mistyped character and every swap of two different neighbouring data characters (a swap of
    /// the last data character with the first check character can go unnoticed when their values differ by 16).
    static func checksum(_ data: [UInt8]) -> [UInt8] {
        var s1 = 0
        var s2 = 0
        for (i, c) in data.enumerated() {
            let v = alphabet.firstIndex(of: c) ?? 0
            s1 = (s1 + v) % 32
            s2 = (s2 + (i + 1) * v) % 32
        }
        return [alphabet[s1], alphabet[s2]]
    }

    static func bits(_ bytes: [UInt8], from start: Int, count: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in start..<start + count {
            v = v << 1 | UInt32(bytes[i / 8] >> (7 - UInt8(i % 8)) & 1)
        }
        return v
    }
}
