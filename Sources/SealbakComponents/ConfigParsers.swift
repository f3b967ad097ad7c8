import Foundation
import Yams

/// The configuration formats sealbak checks: `.env`, YAML, JSON and TOML.
package enum ConfigFormat: String, Sendable, CaseIterable {
    case env, yaml, json, toml

    /// By file name: `.env`, `.env.local`, `x.env`; `*.yaml`/`*.yml`; `*.json`; `*.toml`. Others are not configs.
    package static func detect(_ fileName: String) -> ConfigFormat? {
        let lower = fileName.lowercased()
        if lower == ".env" || lower.hasPrefix(".env.") || lower.hasSuffix(".env") { return .env }
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") { return .yaml }
        if lower.hasSuffix(".json") { return .json }
        if lower.hasSuffix(".toml") { return .toml }
        return nil
    }
}

/// The outcome of reading one config file: its key paths, or where and why it does not parse.
package struct ConfigCheck: Sendable, Equatable {
    package var keys: [String]
    /// "line N: message" (or "line N:C: message") when the file does not parse.
    package var error: String?
    /// Key paths whose value holds a URL with a password (`postgresql://user:password@host/db`), whatever the key's
    /// name; an array's elements count for the array's key. Only the key paths leave the parser, never the values.
    package var credentialKeys: [String] = []
    package var valid: Bool { error == nil }

    package init(keys: [String], error: String?, credentialKeys: [String] = []) {
        self.keys = keys
        self.error = error
        self.credentialKeys = credentialKeys
    }

    /// Key paths that look like secrets by name, or whose value holds a URL with a password, in document order.
    package var secretKeys: [String] {
        let credentials = Set(credentialKeys)
        return keys.filter { SecretNames.looksSecret($0) || credentials.contains($0) }
    }

    /// Key paths that look like secrets by name (their whole value is redacted; URLs lose only their password).
    package var namedSecretKeys: [String] { keys.filter(SecretNames.looksSecret) }
}

package enum ConfigParser {
    /// The file's key paths, or its first error on one line (control and invisible characters escaped).
    package static func check(_ text: String, as format: ConfigFormat) -> ConfigCheck {
        var result: ConfigCheck
        switch format {
        case .env: result = env(text)
        case .json: result = json(text)
        case .yaml: result = yaml(text)
        case .toml: result = toml(text)
        }
        result.error = result.error.map { TOMLError.oneLine($0) }
        return result
    }

    /// `check(_:as:)` for a file's bytes: TOML is read as bytes (a file that is not UTF-8 is invalid TOML, with its
    /// line); the other formats as UTF-8 text.
    package static func check(bytes: [UInt8], as format: ConfigFormat) -> ConfigCheck {
        format == .toml ? toml(bytes) : check(String(decoding: bytes, as: UTF8.self), as: format)
    }

    static func toml(_ text: String) -> ConfigCheck { toml(Array(text.utf8)) }

    static func toml(_ bytes: [UInt8]) -> ConfigCheck {
        var parser = TOMLParser(bytes)
        do {
            try parser.document()
        } catch {
            return ConfigCheck(keys: parser.keyPaths, error: error.description)
        }
        var credentials: [String] = []
        for span in parser.spans where URLCredentials.holdsPassword(span.value) && !credentials.contains(span.path) {
            credentials.append(span.path)
        }
        return ConfigCheck(keys: parser.keyPaths, error: nil, credentialKeys: credentials)
    }

    static func env(_ text: String) -> ConfigCheck {
        var keys: [String] = []
        var credentials: [String] = []
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).makeIterator()
        var n = 0
        while let raw = lines.next() {
            n += 1
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let eq = line.firstIndex(of: "=") else {
                return ConfigCheck(keys: keys, error: "line \(n): expected KEY=VALUE")
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard let first = key.unicodeScalars.first, first == "_" || CharacterSet.letters.contains(first),
                key.unicodeScalars.allSatisfy({
                    $0 == "_" || $0 == "." || $0 == "-" || CharacterSet.alphanumerics.contains($0)
                })
            else {
                return ConfigCheck(keys: keys, error: "line \(n): \"\(key)\" is not a valid variable name")
            }
            keys.append(key)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            // A double-quoted value may continue over several lines; a single-quoted one may not.
            if let q = value.first, q == "\"" || q == "'" {
                let startLine = n
                value.removeFirst()
                while !Self.closes(value, q) {
                    guard q == "\"", let more = lines.next() else {
                        return ConfigCheck(
                            keys: keys,
                            error: "line \(startLine): unterminated \(q == "\"" ? "double" : "single")-quoted value"
                        )
                    }
                    n += 1
                    value += "\n" + more
                }
            }
            if URLCredentials.passwordRanges(Array(value.utf8)).count > 0 && !credentials.contains(key) {
                credentials.append(key)
            }
        }
        return ConfigCheck(keys: keys, error: nil, credentialKeys: credentials)
    }

    /// Whether `s` (after an opening quote) holds the closing quote, not escaped.
    static func closes(_ s: String, _ q: Character) -> Bool {
        var escaped = false
        for c in s {
            if escaped {
                escaped = false
                continue
            }
            if c == "\\" && q == "\"" {
                escaped = true
                continue
            }
            if c == q { return true }
        }
        return false
    }

    static func json(_ text: String) -> ConfigCheck {
        do {
            let obj = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            var keys: [String] = []
            var credentials: [String] = []
            collect(obj, "", "", &keys, &credentials)
            return ConfigCheck(keys: keys, error: nil, credentialKeys: credentials)
        } catch {
            let debug = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? "not valid JSON"
            return ConfigCheck(keys: [], error: Self.jsonLine(debug, text))
        }
    }

    /// Foundation reports a character offset ("around character 57") or a line; turn it into "line N: …".
    static func jsonLine(_ debug: String, _ text: String) -> String {
        if let r = debug.range(of: "line "), let n = Int(debug[r.upperBound...].prefix { $0.isNumber }) {
            return "line \(n): \(debug)"
        }
        if let r = debug.range(of: "character "), let c = Int(debug[r.upperBound...].prefix { $0.isNumber }) {
            let line = text.utf8.prefix(c).filter { $0 == UInt8(ascii: "\n") }.count + 1
            return "line \(line): \(debug)"
        }
        return debug
    }

    /// `owner` is the key path a value inside arrays belongs to (`urls` for `urls[0]`).
    static func collect(
        _ obj: Any,
        _ prefix: String,
        _ owner: String,
        _ keys: inout [String],
        _ credentials: inout [String]
    ) {
        if let d = obj as? [String: Any] {
            for k in d.keys.sorted() {
                let path = prefix.isEmpty ? k : prefix + "." + k
                keys.append(path)
                collect(d[k]!, path, path, &keys, &credentials)
            }
        } else if let a = obj as? [Any] {
            for (i, v) in a.enumerated() { collect(v, prefix + "[\(i)]", owner, &keys, &credentials) }
        } else if let string = obj as? String, !owner.isEmpty, URLCredentials.holdsPassword(string),
            !credentials.contains(owner)
        {
            credentials.append(owner)
        }
    }

    static func yaml(_ text: String) -> ConfigCheck {
        do {
            var keys: [String] = []
            var credentials: [String] = []
            let parser = try Yams.Parser(yaml: text)
            while let node = try parser.nextRoot() { collect(node, "", "", &keys, &credentials) }
            return ConfigCheck(keys: keys, error: nil, credentialKeys: credentials)
        } catch let e as YamlError {
            return ConfigCheck(keys: [], error: Self.describe(e))
        } catch {
            return ConfigCheck(keys: [], error: "\(error)")
        }
    }

    static func describe(_ e: YamlError) -> String {
        switch e {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            return "line \(mark.line):\(mark.column): \(problem)\(context.map { " \($0.text)" } ?? "")"
        case .composer(let context, let problem, let mark, _):
            return "line \(mark.line):\(mark.column): \(problem)\(context.map { " \($0.text)" } ?? "")"
        default:
            return "\(e)".split(separator: "\n").first.map(String.init) ?? "not valid YAML"
        }
    }

    static func collect(
        _ node: Node,
        _ prefix: String,
        _ owner: String,
        _ keys: inout [String],
        _ credentials: inout [String]
    ) {
        switch node {
        case .mapping(let m):
            for (k, v) in m {
                let name = k.string ?? "\(k)"
                let path = prefix.isEmpty ? name : prefix + "." + name
                keys.append(path)
                collect(v, path, path, &keys, &credentials)
            }
        case .sequence(let s):
            for (i, v) in s.enumerated() { collect(v, prefix + "[\(i)]", owner, &keys, &credentials) }
        case .scalar(let scalar):
            if !owner.isEmpty, URLCredentials.holdsPassword(scalar.string), !credentials.contains(owner) {
                credentials.append(owner)
            }
        default:
            break
        }
    }
}

/// Which key names look like they hold secrets (names only: values are never looked at or stored).
package enum SecretNames {
    /// Whole words that mark a secret: `auth_token` and `stripeSecret` are secrets, `max_tokens`, `author` and
    /// `tokenizer_path` are not.
    static let words: Set<String> = [
        "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "apikey", "privatekey",
        "accesskey", "credential", "credentials", "auth", "dsn", "webhook", "bearer", "cookie", "salt",
    ]
    /// Word sequences that mark a secret although no single word does (`DATABASE_URL` holds a password).
    static let phrases = ["database_url", "connection_string", "conn_str"]

    package static func looksSecret(_ keyPath: String) -> Bool {
        let w = self.words(keyPath.split(separator: ".").last.map(String.init) ?? keyPath)
        if w.contains(where: words.contains) { return true }
        // KEY alone or as the last word (OPENAI_API_KEY, stripeKey), but not e.g. "keyboard" or "monkey".
        if w.last == "key" { return true }
        let joined = w.joined(separator: "_")
        return phrases.contains { joined.contains($0) }
    }

    /// Lower-case words of a key: split at `_`, `-`, spaces and lower-to-upper case changes ("apiKey" → api, key).
    static func words(_ key: String) -> [String] {
        var out: [String] = []
        var current = ""
        var previousLower = false
        for ch in key {
            if ch == "_" || ch == "-" || ch == " " {
                if !current.isEmpty { out.append(current) }
                current = ""
                previousLower = false
                continue
            }
            if ch.isUppercase && previousLower {
                out.append(current)
                current = ""
            }
            current += ch.lowercased()
            previousLower = ch.isLowercase || ch.isNumber
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
