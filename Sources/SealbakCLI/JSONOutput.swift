import Foundation
import SealbakArchive
import SealbakComponents
import SealbakFormat

#if canImport(Glibc)
import Glibc
#endif

/// The machine-readable output of every command (`--json`), one schema for all of them: docs/json.md.
///
/// Every document is one JSON object on one line with `"schema": 1` and `"command"`; times are RFC 3339 UTC strings,
/// counts and sizes are numbers, modes are numbers (with `mode_octal` beside them), and metadata that holds numbers
/// or JSON is given as numbers and nested objects, never as strings of them.
enum JSONOutput {
    /// Bumped when a field changes meaning or type or disappears; new fields may appear within a version.
    static let schema = 1

    /// Prints one document on standard output.
    static func emit(_ command: String, _ body: [String: Any]) {
        var doc = body
        doc["schema"] = schema
        doc["command"] = command
        print(line(doc))
    }

    /// A document as one line of JSON (sorted keys, `/` not escaped).
    static func line(_ doc: [String: Any]) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// RFC 3339 in UTC: `2026-11-30T02:00:00Z`, with the fraction when there is one (`…:00.123456789Z`).
    static func time(_ seconds: Int64, nanoseconds: UInt32 = 0) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        let base = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d",
            Int(tmv.tm_year) + 1900,
            Int(tmv.tm_mon) + 1,
            Int(tmv.tm_mday),
            Int(tmv.tm_hour),
            Int(tmv.tm_min),
            Int(tmv.tm_sec)
        )
        if nanoseconds == 0 { return base + "Z" }
        var fraction = String(format: "%09u", nanoseconds)
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return base + "." + fraction + "Z"
    }

    static func time(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        let s = Int64(t.rounded(.down))
        return time(s, nanoseconds: UInt32(((t - Double(s)) * 1000).rounded()) * 1_000_000)
    }

    /// Metadata keys whose values are decimal counts or sizes (by their last dotted part), given as numbers.
    static let numericKeys: Set<String> = [
        "bytes", "collections", "embeddings", "files", "restore-timeout", "configs", "invalid", "secret-keys",
        "directories", "excluded", "symlinks", "large-objects", "rows", "tables", "vectors", "count", "dimension",
        "vector-files", "page-size", "user-version", "application-id",
    ]

    /// Metadata as JSON: counts as numbers, `*.valid` as a boolean, JSON values (facts, rules, the plan; facts split
    /// over `.facts.2`, `.facts.3`
    /// joined first) nested, everything else as the string it is.
    static func metadata(_ m: Metadata) -> [String: Any] {
        var out: [String: Any] = [:]
        // A chained archive's chunk key is never shown (Spec §14.4).
        var pairs = Dictionary(
            m.filter { !ChainMetadata.isHidden($0.key) }.map { ($0.key, $0.value) },
            uniquingKeysWith: { a, _ in a }
        )
        // Split facts: `X.facts`, `X.facts.2`, … are one JSON text.
        for key in pairs.keys.filter({ $0.hasSuffix(".facts") }) {
            var text = pairs[key]!
            var n = 2
            while let more = pairs["\(key).\(n)"] {
                text += more
                pairs.removeValue(forKey: "\(key).\(n)")
                n += 1
            }
            pairs[key] = text
        }
        for (key, value) in pairs {
            let last = key.split(separator: ".").last.map(String.init) ?? key
            if numericKeys.contains(last), let n = Int64(value), String(n) == value {
                out[key] = n
            } else if last == "valid", value == "true" || value == "false" {
                out[key] = value == "true"
            } else if last == "facts" || key == "docs.rules" || key == "plan",
                let nested = try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed])
            {
                out[key] = nested
            } else {
                out[key] = value
            }
        }
        return out
    }

    /// An error as a document on standard output, for `--json` runs that fail (the message also goes to stderr).
    static func error(_ command: String, code: Int32, message: String) {
        emit(command, ["error": ["exit_code": Int(code), "message": message]])
    }
}

extension JSONOutput {
    /// A run, verification or drill record of the plan's history (docs/operations.md) with RFC 3339 times.
    static func record(_ r: RunRecord) -> [String: Any] {
        var d = (try? JSONSerialization.jsonObject(with: Data(r.jsonLine()))) as? [String: Any] ?? [:]
        d["start"] = time(Date(timeIntervalSince1970: r.start))
        if let end = r.end {
            d["end"] = time(Date(timeIntervalSince1970: end))
            d["duration_seconds"] = ((end - r.start) * 1000).rounded() / 1000
        }
        return d
    }
}
