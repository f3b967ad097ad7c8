import Foundation
import SealbakFormat
import SealbakIO

/// A configuration file or folder (`.env`, YAML, JSON, TOML), packed as `config/NAME/…`.
///
/// Every config file is parsed: a broken one is reported with file:line, packed anyway and flagged. Key names
/// that look like secrets are recorded (names only, never values), so that `list` can say "contains 7 secrets";
/// `--redact-secrets` packs copies whose secret values are replaced by a placeholder.
package struct ConfigSpec: Sendable {
    package var name: String
    package var path: String
    package var redactSecrets = false

    package init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    package init(argument: String) throws(SealbakError) {
        // ".env" → component "env".
        (name, path) = try Component.argument(argument, flag: "--config") {
            $0.hasPrefix(".") ? String($0.dropFirst()) : $0
        }
    }
}

/// The placeholder `--redact-secrets` writes instead of a secret value.
package let redactedPlaceholder = "<redacted-by-sealbak>"

/// Config files' entries get these keys (Spec/COMPONENTS.md).
package struct ConfigFileFacts: Sendable {
    package var format: ConfigFormat
    package var check: ConfigCheck
    package var redacted: [String] = []

    var metadata: [(String, String)] {
        var m = [("config.format", format.rawValue), ("config.valid", check.valid ? "true" : "false")]
        if let e = check.error { m.append(("config.error", e)) }
        let secrets = check.secretKeys
        // Key names come from the file: shown escaped (a quoted key may hold a newline or an escape sequence).
        func shown(_ keys: [String]) -> String { keys.map { TOMLError.oneLine($0) }.joined(separator: ",") }
        if !secrets.isEmpty { m.append(("config.secrets", shown(secrets))) }
        if !redacted.isEmpty { m.append(("config.redacted", shown(redacted))) }
        return m
    }
}

/// Includes every file of a folder except the default excludes (`.git`, `node_modules`, …).
final class DefaultExcludesFilter: TreeFilter {
    let rules = IgnoreRules.defaults()
    func enter(directory rel: String, fsPath: String) throws(SealbakError) {}
    func keep(_ rel: String, isDirectory: Bool) -> Bool { !rules.excluded(rel, isDirectory: isDirectory).0 }
}

package enum ConfigComponent {
    package static let maxParsedBytes = 16 << 20

    package struct Summary: Sendable {
        package var files = 0
        package var configs = 0
        package var broken: [String] = []
        package var secretKeys = 0
        package var redacted = 0
        package var bytes: UInt64 = 0
    }

    @discardableResult
    package static func add(_ spec: ConfigSpec, to plan: inout PackPlan) throws(SealbakError) -> Summary {
        let root = "config/\(spec.name)"
        let first = plan.entries.count
        let stats = try Component.addFileOrTree(
            spec.path,
            root: root,
            flag: "--config",
            filter: DefaultExcludesFilter(),
            to: &plan
        )
        var summary = Summary()
        summary.bytes = stats.bytes
        for i in first..<plan.entries.count where plan.entries[i].kind == .file {
            summary.files += 1
            let e = plan.entries[i]
            guard let format = ConfigFormat.detect((e.name as NSString).lastPathComponent) else { continue }
            guard case .file(let fsPath) = plan.sources[i] else { continue }
            guard let data = FileManager.default.contents(atPath: fsPath) else {
                throw SealbakError.io("cannot read", path: fsPath, errno: EACCES)
            }
            summary.configs += 1
            let shown = String(e.name.dropFirst(root.count + 1))
            var facts: ConfigFileFacts
            if data.count > maxParsedBytes {
                facts = ConfigFileFacts(
                    format: format,
                    check: ConfigCheck(keys: [], error: "larger than 16 MiB; not parsed")
                )
            } else {
                let text = String(decoding: data, as: UTF8.self)
                facts = ConfigFileFacts(format: format, check: ConfigParser.check(bytes: Array(data), as: format))
                if spec.redactSecrets && (!facts.check.secretKeys.isEmpty || URLCredentials.holdsPassword(text)) {
                    guard facts.check.valid else {
                        throw SealbakError(
                            .usage,
                            "--redact-secrets: \(fsPath) does not parse (\(facts.check.error!)), so its secrets "
                                + "cannot be redacted safely; fix it or pack without --redact-secrets"
                        )
                    }
                    let (redactedText, keys) = try Redactor.redact(
                        text,
                        format: format,
                        check: facts.check,
                        file: fsPath
                    )
                    facts.redacted = keys
                    let stored = Array(redactedText.utf8)
                    plan.setSource(.bytes(stored), at: i)
                    // config.bytes is what the archive holds (verify compares it with the entries).
                    summary.bytes = summary.bytes - UInt64(data.count) + UInt64(stored.count)
                    summary.redacted += keys.count
                }
            }
            if let err = facts.check.error { summary.broken.append("\(shown): \(err)") }
            summary.secretKeys += facts.check.secretKeys.count
            var m = e.metadata
            for (k, v) in facts.metadata { m[k] = v }
            plan.setMetadata(m, at: i)
        }
        var m = Component.metadata(
            kind: "config",
            name: spec.name,
            source: URL(fileURLWithPath: spec.path).standardizedFileURL.path
        )
        m["config.files"] = String(summary.files)
        m["config.bytes"] = String(summary.bytes)
        m["config.configs"] = String(summary.configs)
        m["config.invalid"] = String(summary.broken.count)
        m["config.secret-keys"] = String(summary.secretKeys)
        m["config.redacted"] = String(summary.redacted)
        plan.setMetadata(m, at: first)
        return summary
    }

    /// Re-parses restored config files; a file recorded as valid must still parse.
    package static func checkRestored(root: String, manifest: Manifest, component: TreeComponent) -> [String] {
        var problems: [String] = []
        for i in component.indices where manifest.entries[i].kind == .file {
            let e = manifest.entries[i]
            guard e.metadata["config.valid"] == "true",
                let format = e.metadata["config.format"].flatMap(ConfigFormat.init(rawValue:))
            else { continue }
            let rel = String(e.name.dropFirst(component.rootName.count + 1))
            guard let data = FileManager.default.contents(atPath: root + "/" + rel) else {
                problems.append("\(rel): missing after restore")
                continue
            }
            if let err = ConfigParser.check(bytes: Array(data), as: format).error { problems.append("\(rel): \(err)") }
        }
        return problems
    }
}

/// Replaces the values of keys named like secrets by `redactedPlaceholder`, and the password of every URL
/// (`scheme://user:password@host`) under any key, then checks that the result still parses, that no secret key
/// kept its value and that no URL password is left. Comments and layout stay as they were (JSON, which has no
/// comments, is rewritten). Anything it cannot redact safely is an error, never a silent pass.
enum Redactor {
    static func redact(
        _ text: String,
        format: ConfigFormat,
        check: ConfigCheck,
        file: String
    ) throws(SealbakError) -> (String, [String]) {
        let named = Set(check.namedSecretKeys)
        var out: String
        var done: [String] = []
        switch format {
        case .json:
            guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            else {
                throw SealbakError(.usage, "--redact-secrets: cannot re-read \(file)")
            }
            let red = redactJSON(obj, "", named, &done)
            guard
                let data = try? JSONSerialization.data(
                    withJSONObject: red,
                    options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]
                )
            else {
                throw SealbakError(.usage, "--redact-secrets: cannot rewrite \(file)")
            }
            out = String(decoding: data, as: UTF8.self) + "\n"
        case .toml:
            out = redactTOML(text, secrets: named, &done)
        case .env, .yaml:
            out = redactLines(text, format: format, secrets: named, &done)
        }
        if format != .json { out = URLCredentials.redact(out) }
        let after = ConfigParser.check(out, as: format)
        // URL passwords that are gone count as redacted under their key.
        let leftURLs = Set(after.credentialKeys)
        for key in check.credentialKeys where !leftURLs.contains(key) && !done.contains(key) { done.append(key) }
        let missed = named.subtracting(done).filter { key in
            // A secret key that holds a table/mapping has nothing of its own to redact if all its children were.
            !done.contains { $0.hasPrefix(key + ".") || $0.hasPrefix(key + "[") }
        }
        guard after.valid, missed.isEmpty, leftURLs.isEmpty else {
            let why: String
            if let error = after.error {
                why = "the redacted copy would not parse (\(error))"
            } else if !missed.isEmpty {
                // A secret-named table or list none of whose values is itself named like a secret.
                let containers = missed.filter { key in
                    check.keys.contains { $0.hasPrefix(key + ".") || $0.hasPrefix(key + "[") }
                }
                var parts: [String] = []
                let values = missed.subtracting(containers)
                if !values.isEmpty {
                    parts.append("the value of \(values.sorted().joined(separator: ", ")) is not a single-line value")
                }
                if !containers.isEmpty {
                    parts.append(
                        "\(containers.sorted().joined(separator: ", ")) is named like a secret but holds a table or "
                            + "list whose "
                            + "values are not; rename it or its values"
                    )
                }
                why = parts.joined(separator: "; ")
            } else {
                why =
                    "a URL password under \(leftURLs.sorted().joined(separator: ", ")) is written in a form it "
                    + "cannot find (escaped)"
            }
            throw SealbakError(
                .usage,
                "--redact-secrets: cannot redact \(file) safely: \(why). Move the secret to a single line or pack "
                    + "without --redact-secrets"
            )
        }
        return (out, done.sorted())
    }

    static func redactJSON(_ obj: Any, _ prefix: String, _ secrets: Set<String>, _ done: inout [String]) -> Any {
        if let d = obj as? [String: Any] {
            var r: [String: Any] = [:]
            for (k, v) in d {
                let path = prefix.isEmpty ? k : prefix + "." + k
                if secrets.contains(path) && !(v is [String: Any]) && !(v is [Any]) {
                    r[k] = redactedPlaceholder
                    done.append(path)
                } else {
                    r[k] = redactJSON(v, path, secrets, &done)
                }
            }
            return r
        }
        if let a = obj as? [Any] {
            return a.enumerated().map { redactJSON($0.element, prefix + "[\($0.offset)]", secrets, &done) }
        }
        if let string = obj as? String { return URLCredentials.redact(string) }
        return obj
    }

    /// By the parser's value spans: each secret key's value text becomes the quoted placeholder; everything else
    /// (comments, layout) stays byte for byte.
    static func redactTOML(_ text: String, secrets: Set<String>, _ done: inout [String]) -> String {
        guard let document = try? TOMLDocument.decode(text) else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var last = 0
        for span in document.spans.sorted(by: { $0.range.lowerBound < $1.range.lowerBound })
        where secrets.contains(span.path) && span.range.lowerBound >= last {
            out += bytes[last..<span.range.lowerBound]
            out += Array("\"\(redactedPlaceholder)\"".utf8)
            last = span.range.upperBound
            if !done.contains(span.path) { done.append(span.path) }
        }
        out += bytes[last...]
        return String(decoding: out, as: UTF8.self)
    }

    /// Line-based: `KEY=value`, `key: value` whose key path (by indentation) is secret. The value's text is
    /// replaced; a trailing comment after it stays.
    static func redactLines(
        _ text: String,
        format: ConfigFormat,
        secrets: Set<String>,
        _ done: inout [String]
    ) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var stack: [(indent: Int, key: String)] = []  // YAML mapping path by indentation
        for (n, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let indent = line.prefix { $0 == " " }.count
            let sep: Character = format == .yaml ? ":" : "="
            guard let at = trimmed.firstIndex(of: sep) else { continue }
            var key = trimmed[..<at].trimmingCharacters(in: .whitespaces)
            if format == .env && key.hasPrefix("export ") {
                key = String(key.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            }
            key = key.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            let value = trimmed[trimmed.index(after: at)...].trimmingCharacters(in: .whitespaces)
            var path = key
            if format == .yaml {
                while let last = stack.last, last.indent >= indent { stack.removeLast() }
                path = (stack.map(\.key) + [key]).joined(separator: ".")
                if value.isEmpty || value.hasPrefix("#") {
                    stack.append((indent, key))
                    continue
                }
            }
            guard secrets.contains(path), !value.isEmpty, !value.hasPrefix("|"), !value.hasPrefix(">"),
                !value.hasPrefix("{"),
                !value.hasPrefix("[")
            else { continue }
            guard let sepInLine = line.firstIndex(of: sep) else { continue }
            let afterSep = line[line.index(after: sepInLine)...]
            guard let rest = valueEnd(afterSep, format: format) else { continue }
            let replacement = format == .yaml ? "\"\(redactedPlaceholder)\"" : redactedPlaceholder
            lines[n] = line[...sepInLine] + (format == .env ? "" : " ") + replacement + afterSep[rest...]
            done.append(path)
        }
        return lines.joined(separator: "\n")
    }

    /// Where a one-line value (after `=` or `:`) ends: after its closing quote, or before a comment (`#` after
    /// whitespace) and trailing whitespace; nil when a quoted value does not close on this line.
    static func valueEnd(_ s: Substring, format: ConfigFormat) -> Substring.Index? {
        var k = s.startIndex
        while k < s.endIndex, s[k] == " " || s[k] == "\t" { k = s.index(after: k) }
        guard k < s.endIndex else { return k }
        let q = s[k]
        if q == "\"" || q == "'" {
            var j = s.index(after: k)
            while j < s.endIndex {
                let c = s[j]
                if c == "\\" && q == "\"" {
                    j = s.index(after: j)
                    if j < s.endIndex { j = s.index(after: j) }
                    continue
                }
                if c == q {
                    // YAML writes a quote inside single quotes as ''.
                    let next = s.index(after: j)
                    if format == .yaml && q == "'" && next < s.endIndex && s[next] == "'" {
                        j = s.index(after: next)
                        continue
                    }
                    return next
                }
                j = s.index(after: j)
            }
            return nil
        }
        var end = k
        var j = k
        while j < s.endIndex {
            let c = s[j]
            if c == "#" && j > k && (s[s.index(before: j)] == " " || s[s.index(before: j)] == "\t") { break }
            if c != " " && c != "\t" && c != "\r" { end = s.index(after: j) }
            j = s.index(after: j)
        }
        return end
    }
}
