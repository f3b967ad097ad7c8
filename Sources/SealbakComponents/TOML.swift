/// A validating TOML 1.0 reader that returns the document's key paths (values are checked, then dropped).
///
/// It covers the grammar configs use: comments, bare/quoted/dotted keys, `[table]`, `[[array of tables]]`, basic
/// and literal strings (single- and multi-line, escapes), integers (decimal with `_`, hex, octal, binary),
/// floats (`inf`, `nan`, exponents), booleans, offset/local date-times, dates and times, arrays (multi-line,
/// trailing comma, comments) and inline tables. Duplicate keys and redefined tables are errors, as in TOML.
enum TOMLKeys {
    struct Failure: Error { var line: Int; var message: String }

    static func parse(_ text: String) -> ConfigCheck {
        var p = Parser(Array(text.unicodeScalars))
        do {
            try p.document()
            return ConfigCheck(keys: p.keys, error: nil)
        } catch let f as Failure {
            return ConfigCheck(keys: p.keys, error: "line \(f.line): \(f.message)")
        } catch {
            return ConfigCheck(keys: p.keys, error: "\(error)")
        }
    }

    struct Parser {
        let s: [Unicode.Scalar]
        var i = 0
        var line = 1
        var keys: [String] = []
        var defined = Set<String>()      // every key path with a value or table
        var tables = Set<String>()       // tables opened with [x] (may not reappear)
        var arrayTables = Set<String>()  // [[x]]: each occurrence starts a new element
        var current = ""

        init(_ s: [Unicode.Scalar]) { self.s = s }

        var atEnd: Bool { i >= s.count }
        var c: Unicode.Scalar? { i < s.count ? s[i] : nil }

        func fail(_ m: String) -> Failure { Failure(line: line, message: m) }

        mutating func advance() {
            if s[i] == "\n" { line += 1 }
            i += 1
        }

        mutating func spaces() { while let ch = c, ch == " " || ch == "\t" { advance() } }

        /// Spaces, then an optional comment, then a newline or the end.
        mutating func endOfLine() throws {
            spaces()
            if c == "#" { while let ch = c, ch != "\n" { try checkCommentChar(ch); advance() } }
            if c == "\r" { advance() }
            guard atEnd || c == "\n" else { throw fail("unexpected \"\(String(c!))\" after the value; one key = value per line") }
            if !atEnd { advance() }
        }

        func checkCommentChar(_ ch: Unicode.Scalar) throws {
            if ch.value < 0x20 && ch != "\t" || ch.value == 0x7F { throw fail("control character in a comment") }
        }

        mutating func document() throws {
            while !atEnd {
                spaces()
                guard let ch = c else { break }
                if ch == "\n" || ch == "#" || ch == "\r" { try endOfLine(); continue }
                if ch == "[" { try tableHeader(); continue }
                let path = try keyPath()
                spaces()
                guard c == "=" else { throw fail("expected = after the key \(path.joined(separator: "."))") }
                advance()
                spaces()
                let full = (current.isEmpty ? [] : [current]) + [path.joined(separator: ".")]
                try define(full.joined(separator: "."), dotted: path)
                try value(prefix: full.joined(separator: "."))
                try endOfLine()
            }
        }

        mutating func define(_ full: String, dotted: [String]) throws {
            // Intermediate tables of a dotted key come into being implicitly.
            var prefix = current
            for part in dotted.dropLast() {
                prefix = prefix.isEmpty ? part : prefix + "." + part
                if defined.insert(prefix).inserted { keys.append(prefix) }
            }
            guard defined.insert(full).inserted else { throw fail("the key \(full) is defined twice") }
            keys.append(full)
        }

        mutating func tableHeader() throws {
            advance()
            let array = c == "["
            if array { advance() }
            spaces()
            let path = try keyPath().joined(separator: ".")
            spaces()
            guard c == "]" else { throw fail("expected ] to close the table header [\(path)") }
            advance()
            if array {
                guard c == "]" else { throw fail("expected ]] to close [[\(path)") }
                advance()
                if tables.contains(path) { throw fail("[[\(path)]] redefines the table [\(path)]") }
                if !arrayTables.contains(path) { arrayTables.insert(path); keys.append(path); defined.insert(path) }
                // Keys below a new element may repeat those of the previous element.
                defined = defined.filter { !$0.hasPrefix(path + ".") }
            } else {
                if arrayTables.contains(path) { throw fail("[\(path)] redefines the array of tables [[\(path)]]") }
                guard tables.insert(path).inserted else { throw fail("the table [\(path)] is defined twice") }
                if defined.insert(path).inserted { keys.append(path) }
            }
            current = path
            try endOfLine()
        }

        mutating func keyPath() throws -> [String] {
            var parts = [try simpleKey()]
            spaces()
            while c == "." {
                advance()
                spaces()
                parts.append(try simpleKey())
                spaces()
            }
            return parts
        }

        mutating func simpleKey() throws -> String {
            guard let ch = c else { throw fail("expected a key") }
            if ch == "\"" || ch == "'" { return try string(multiline: false) }
            var k = ""
            while let ch = c, ch.properties.isASCIIHexDigit || ("a"..."z").contains(ch) || ("A"..."Z").contains(ch) || ch == "_" || ch == "-" {
                k.unicodeScalars.append(ch)
                advance()
            }
            guard !k.isEmpty else { throw fail("expected a key, found \"\(String(ch))\"") }
            return k
        }

        mutating func value(prefix: String) throws {
            guard let ch = c else { throw fail("expected a value") }
            switch ch {
            case "\"", "'":
                let triple = i + 2 < s.count && s[i + 1] == ch && s[i + 2] == ch
                _ = try string(multiline: triple)
            case "[":
                advance()
                while true {
                    try skipBlank()
                    if c == "]" { advance(); return }
                    try value(prefix: prefix)
                    try skipBlank()
                    if c == "," { advance(); continue }
                    guard c == "]" else { throw fail(atEnd ? "unterminated array" : "expected , or ] in the array") }
                    advance()
                    return
                }
            case "{":
                advance()
                spaces()
                if c == "}" { advance(); return }
                while true {
                    spaces()
                    let path = try keyPath()
                    spaces()
                    guard c == "=" else { throw fail("expected = in the inline table") }
                    advance()
                    spaces()
                    let saved = current
                    current = prefix
                    try define(prefix + "." + path.joined(separator: "."), dotted: path)
                    current = saved
                    try value(prefix: prefix + "." + path.joined(separator: "."))
                    spaces()
                    if c == "," { advance(); continue }
                    guard c == "}" else { throw fail("expected , or } in the inline table (inline tables fit on one line)") }
                    advance()
                    return
                }
            default:
                var token = ""
                while let ch = c, !(ch == "," || ch == "]" || ch == "}" || ch == "\n" || ch == "#" || ch == "\r" || ch == "\t") {
                    // A space ends the value, except the one between a date and a time ("1979-05-27 07:32:00").
                    if ch == " " {
                        let isDate = token.utf8.count == 10 && Array(token.utf8)[4] == UInt8(ascii: "-")
                        guard isDate, i + 1 < s.count, ("0"..."9").contains(s[i + 1]) else { break }
                    }
                    token.unicodeScalars.append(ch)
                    advance()
                }
                guard Self.scalar(token) else { throw fail(token.isEmpty ? "expected a value" : "\"\(token)\" is not a TOML value (strings need quotes)") }
            }
        }

        mutating func skipBlank() throws {
            while let ch = c, ch == " " || ch == "\t" || ch == "\n" || ch == "\r" || ch == "#" {
                if ch == "#" { while let x = c, x != "\n" { try checkCommentChar(x); advance() } } else { advance() }
            }
        }

        mutating func string(multiline: Bool) throws -> String {
            let q = c!
            let startLine = line
            advance()
            if multiline {
                advance(); advance()
                if c == "\n" { advance() } else if c == "\r", i + 1 < s.count, s[i + 1] == "\n" { advance(); advance() }
            }
            var out = ""
            while true {
                guard let ch = c else { throw Failure(line: startLine, message: "unterminated string") }
                if ch == q {
                    if !multiline { advance(); return out }
                    if i + 2 < s.count && s[i + 1] == q && s[i + 2] == q {
                        advance(); advance(); advance()
                        // Up to two more quotes belong to the content.
                        var extra = 0
                        while c == q && extra < 2 { advance(); extra += 1 }
                        return out
                    }
                }
                if ch == "\n" && !multiline { throw Failure(line: startLine, message: "a single-line string ends at the end of the line") }
                if ch == "\\" && q == "\"" {
                    advance()
                    guard let e = c else { throw fail("unterminated escape") }
                    switch e {
                    case "b", "t", "n", "f", "r", "\"", "\\": advance()
                    case "u", "U":
                        advance()
                        for _ in 0..<(e == "u" ? 4 : 8) {
                            guard let h = c, h.properties.isASCIIHexDigit else { throw fail("invalid \\\(String(e)) escape") }
                            advance()
                        }
                    case " ", "\t", "\n", "\r" where multiline:
                        while let w = c, w == " " || w == "\t" || w == "\n" || w == "\r" { advance() }
                    default:
                        throw fail("invalid escape \\\(String(e))")
                    }
                    continue
                }
                out.unicodeScalars.append(ch)
                advance()
            }
        }

        static func scalar(_ t: String) -> Bool {
            if t == "true" || t == "false" { return true }
            if ["inf", "+inf", "-inf", "nan", "+nan", "-nan"].contains(t) { return true }
            let u = Array(t.utf8)
            guard !u.isEmpty else { return false }
            func digitsWithUnderscores(_ x: ArraySlice<UInt8>, _ ok: (UInt8) -> Bool) -> Bool {
                guard let f = x.first, let l = x.last, ok(f), ok(l) else { return false }
                var prevUnderscore = false
                for b in x {
                    if b == UInt8(ascii: "_") { if prevUnderscore { return false }; prevUnderscore = true; continue }
                    if !ok(b) { return false }
                    prevUnderscore = false
                }
                return true
            }
            let dec: (UInt8) -> Bool = { $0 >= 48 && $0 <= 57 }
            if u.count > 2 && u[0] == UInt8(ascii: "0") {
                switch u[1] {
                case UInt8(ascii: "x"): return digitsWithUnderscores(u[2...]) { dec($0) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) }
                case UInt8(ascii: "o"): return digitsWithUnderscores(u[2...]) { $0 >= 48 && $0 <= 55 }
                case UInt8(ascii: "b"): return digitsWithUnderscores(u[2...]) { $0 == 48 || $0 == 49 }
                default: break
                }
            }
            // Dates and times: 1979-05-27, 07:32:00, 1979-05-27T07:32:00.999-07:00, 1979-05-27 07:32:00Z.
            if u.count >= 8, (u.count >= 10 && u[4] == UInt8(ascii: "-")) || u[2] == UInt8(ascii: ":") {
                return u.allSatisfy { dec($0) || ":-.+TtZz ".utf8.contains($0) }
            }
            var body = u[...]
            if let f = body.first, f == UInt8(ascii: "+") || f == UInt8(ascii: "-") { body = body.dropFirst() }
            // Integer or float: int-part [ "." digits ] [ e [+-] digits ]; no leading zeros.
            var mantissa = body, exponent: ArraySlice<UInt8>? = nil
            if let e = body.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
                mantissa = body[..<e]
                var x = body[(e + 1)...]
                if let f = x.first, f == UInt8(ascii: "+") || f == UInt8(ascii: "-") { x = x.dropFirst() }
                exponent = x
            }
            var intPart = mantissa, frac: ArraySlice<UInt8>? = nil
            if let dot = mantissa.firstIndex(of: UInt8(ascii: ".")) { intPart = mantissa[..<dot]; frac = mantissa[(dot + 1)...] }
            guard digitsWithUnderscores(intPart, dec) else { return false }
            if intPart.count > 1 && intPart.first == UInt8(ascii: "0") { return false }
            if let frac, !digitsWithUnderscores(frac, dec) { return false }
            if let exponent, !digitsWithUnderscores(exponent, dec) { return false }
            return true
        }
    }
}
