import Foundation
import SealbakComponents
import Testing

/// Runs the TOML reader against a local copy of the public toml-test suite (github.com/toml-lang/toml-test, not
/// part of this repository): `TOML_TEST_DIR=/path/to/toml-test/tests swift test --filter TOMLConformance`.
/// Every file listed in `files-toml-1.0.0` is read: `valid/*.toml` must decode to the values of the matching
/// `*.json` (toml-test's tagged form), `invalid/*.toml` must be rejected. Skipped when the variable is unset.
@Suite struct TOMLConformanceTests {
    static let suite = ProcessInfo.processInfo.environment["TOML_TEST_DIR"]

    @Test(.enabled(if: suite != nil)) func everyListedCaseOfTheSuite() throws {
        let dir = Self.suite!
        let list = try String(contentsOfFile: dir + "/files-toml-1.0.0", encoding: .utf8)
        var valid = (total: 0, passed: 0)
        var invalid = (total: 0, passed: 0)
        var failures: [String] = []
        for name in list.split(separator: "\n").map(String.init) where name.hasSuffix(".toml") {
            guard let data = FileManager.default.contents(atPath: dir + "/" + name) else { continue }
            let decoded = Result { () throws(TOMLError) in try TOMLDocument.decode(Array(data)) }
            if name.hasPrefix("valid/") {
                valid.total += 1
                let expectedPath = dir + "/" + name.dropLast(5) + ".json"
                let expected = try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: expectedPath))
                )
                switch decoded {
                case .success(let document):
                    if Self.matches(.table(document.root), expected) {
                        valid.passed += 1
                    } else {
                        failures.append("\(name): decoded values differ from the expectation")
                    }
                case .failure(let error):
                    failures.append("\(name): rejected: \(error)")
                }
            } else {
                invalid.total += 1
                switch decoded {
                case .failure(let error):
                    invalid.passed += 1
                    // One line each, so the messages can be read (TOML_TEST_VERBOSE=1).
                    if ProcessInfo.processInfo.environment["TOML_TEST_VERBOSE"] != nil { print("  \(name): \(error)") }
                    #expect(
                        !error.description.contains("\n") && !error.description.unicodeScalars.contains("\u{FEFF}"),
                        "\(name)"
                    )
                case .success:
                    failures.append("\(name): accepted")
                }
            }
        }
        print(
            "toml-test: valid: \(valid.passed)/\(valid.total) accepted with equal values, invalid: "
                + "\(invalid.passed)/\(invalid.total) rejected"
        )
        for f in failures { print("  " + f) }
        #expect(valid.total > 0 && invalid.total > 0)
        #expect(failures.isEmpty, "\(failures.count) case(s) differ")
    }

    /// toml-test's JSON: tables are objects, arrays are arrays, scalars are `{"type": …, "value": "…"}`.
    static func matches(_ value: TOMLValue, _ expected: Any) -> Bool {
        if let e = expected as? [String: Any], e.count == 2, let type = e["type"] as? String,
            let text = e["value"] as? String
        {
            return matchesScalar(value, type, text)
        }
        if let e = expected as? [String: Any] {
            guard case .table(let t) = value, Set(t.keys) == Set(e.keys) else { return false }
            return t.keys.allSatisfy { matches(t[$0]!, e[$0]!) }
        }
        if let e = expected as? [Any] {
            guard case .array(let a) = value, a.count == e.count else { return false }
            return zip(a, e).allSatisfy { matches($0, $1) }
        }
        return false
    }

    static func matchesScalar(_ value: TOMLValue, _ type: String, _ text: String) -> Bool {
        switch (type, value) {
        case ("string", .string(let s)): return s == text
        case ("integer", .integer(let n)): return Int64(text) == n
        case ("bool", .bool(let b)): return String(b) == text
        case ("float", .float(let d)):
            if text.hasSuffix("nan") { return d.isNaN }
            if text.hasSuffix("inf") { return d.isInfinite && (d < 0) == text.hasPrefix("-") }
            return Double(text) == d
        case ("datetime", .offsetDateTime), ("datetime-local", .localDateTime), ("date-local", .localDate),
            ("time-local", .localTime):
            // The expectation is itself an RFC 3339 value; read it the same way and compare the fields.
            guard let reference = try? TOMLDocument.decode("v = \(text)").root["v"] else { return false }
            return reference == value
        default:
            return false
        }
    }
}
