import SealbakCrypto
import SealbakKeys
import SealbakTestSupport
import Testing

@Suite struct RecoveryCodeTests {
    static func text(_ p: Passphrase) -> String { p.bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }

    @Test func codesAreGroupedAndParseBack() {
        let (display, secret) = RecoveryCode.generate()
        #expect(display.count == 34 && display.split(separator: "-").count == 7)
        guard case .code(let parsed) = RecoveryCode.parse(Passphrase(string: display)) else {
            Issue.record("did not parse")
            return
        }
        #expect(parsed.bytes.isEqual(to: secret.bytes))
        // Lower case, no dashes, O for 0 and L for 1 are all accepted.
        let sloppy = display.lowercased().replacingOccurrences(of: "0", with: "o").replacingOccurrences(
            of: "1",
            with: "l"
        )
        guard case .code(let p2) = RecoveryCode.parse(Passphrase(string: sloppy)) else {
            Issue.record("sloppy form rejected")
            return
        }
        #expect(p2.bytes.isEqual(to: secret.bytes))
    }

    @Test func everySingleTypoAndNeighbourSwapIsCaught() {
        let display = RecoveryCode.generate(random: SeededRandom(seed: [UInt8](repeating: 7, count: 32))).display
        let chars = Array(display)
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        var missed: [String] = []
        for i in chars.indices where chars[i] != "-" {
            for c in alphabet where c != chars[i] {
                var t = chars
                t[i] = c
                if case .typo = RecoveryCode.parse(Passphrase(string: String(t))) {} else { missed.append(String(t)) }
            }
            let j = i + 1
            if j < chars.count, chars[j] != "-", chars[i] != chars[j] {
                var t = chars
                t.swapAt(i, j)
                if case .typo = RecoveryCode.parse(Passphrase(string: String(t))) {} else { missed.append(String(t)) }
            }
        }
        #expect(missed.isEmpty, "\(missed.prefix(5))")
    }

    @Test func ordinaryPasswordsAreNotCodes() {
        for p in ["hunter2", "correct horse battery staple", "ABCD-EFGH", String(repeating: "A", count: 27)] {
            if case .notACode = RecoveryCode.parse(Passphrase(string: p)) {
            } else {
                Issue.record("\(p) taken for a code")
            }
        }
    }
}
