/// The TOML 1.0 grammar over UTF-8 bytes, building a tree whose nodes remember how each table came to be, which
/// is what decides the "defined twice" rules:
/// - a `[header]` table may be opened once, and not at all if dotted keys created it;
/// - dotted keys may only extend tables that dotted keys created, in the same section;
/// - inline tables and arrays written as values are closed: neither headers nor dotted keys may add to them;
/// - `[[x]]` appends to an array of tables, never to a static array (`x = [...]`) or a table.
final class TOMLNode {
    enum Kind { case table, arrayOfTables, value }
    var kind: Kind
    var value: TOMLValue?
    var children: [String: TOMLNode] = [:]
    var order: [String] = []
    var elements: [TOMLNode] = []
    /// Opened by a `[header]` (or an element of `[[header]]`).
    var explicit = false
    /// Created by a dotted key (`a.b = 1` creates `a`).
    var dotted = false

    init(_ kind: Kind, value: TOMLValue? = nil) {
        self.kind = kind
        self.value = value
    }

    func add(_ key: String, _ node: TOMLNode) {
        children[key] = node
        order.append(key)
    }

    /// The decoded value; recursion depth is bounded by the parser's nesting limit.
    func table() -> TOMLTable {
        var t = TOMLTable()
        for k in order {
            let c = children[k]!
            switch c.kind {
            case .value: t[k] = c.value!
            case .table: t[k] = .table(c.table())
            case .arrayOfTables: t[k] = .array(c.elements.map { .table($0.table()) })
            }
        }
        return t
    }
}

struct TOMLParser {
    /// Arrays, inline tables and table depth together may nest this deep (toml-test suggests 128 or 256).
    static let maxDepth = 128

    let b: [UInt8]
    var i = 0
    let root = TOMLNode(.table)
    var current: TOMLNode
    var currentPath: [String] = []
    var keyPaths: [String] = []
    var seenPaths = Set<String>()
    var spans: [TOMLDocument.Span] = []
    var depth = 0

    init(_ bytes: [UInt8]) {
        b = bytes
        current = root
    }

    // MARK: Errors and positions

    func line(at offset: Int) -> Int {
        var n = 1
        for k in 0..<min(offset, b.count) where b[k] == 0x0A { n += 1 }
        return n
    }

    func fail(_ message: String, at offset: Int? = nil) -> TOMLError {
        TOMLError(line: line(at: offset ?? i), message)
    }

    /// What sits at `offset`, for messages: `"x"`, `a new line`, `the end of the file`, `U+0007`.
    func found(_ offset: Int? = nil) -> String {
        let k = offset ?? i
        guard k < b.count else { return "the end of the file" }
        if b[k] == 0x0A || (b[k] == 0x0D && k + 1 < b.count && b[k + 1] == 0x0A) { return "a new line" }
        let scalar = scalarAt(k)
        if scalar.value < 0x20 || scalar.value == 0x7F || scalar.properties.generalCategory == .format
            || (scalar.properties.isWhitespace && scalar != " ")
        {
            return "U+" + pad4(scalar.value)
        }
        return "\"" + String(scalar) + "\""
    }

    func scalarAt(_ k: Int) -> Unicode.Scalar {
        let lead = b[k]
        let n = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
        let s = String(decoding: b[k..<min(b.count, k + n)], as: UTF8.self)
        return s.unicodeScalars.first ?? "\u{FFFD}"
    }

    func pad4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    var peek: UInt8? { i < b.count ? b[i] : nil }

    func at(_ k: Int) -> UInt8? { k < b.count ? b[k] : nil }

    static func isControl(_ c: UInt8) -> Bool { (c < 0x20 && c != 0x09) || c == 0x7F }

    // MARK: Document

    mutating func document() throws(TOMLError) {
        try validateUTF8()
        if b.count >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF { i = 3 }
        while i < b.count {
            skipSpaces()
            guard let c = peek else { break }
            switch c {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"):
                try endOfLine()
            case UInt8(ascii: "["):
                try header()
            default:
                try keyValue(into: current, prefix: currentPath)
                try endOfLine(afterValue: true)
            }
        }
    }

    mutating func validateUTF8() throws(TOMLError) {
        var k = 0
        while k < b.count {
            let lead = b[k]
            if lead < 0x80 {
                k += 1
                continue
            }
            let n =
                lead >= 0xC2 && lead <= 0xDF
                ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0
            guard n > 0, k + n <= b.count, String(validating: b[k..<k + n], as: UTF8.self) != nil else {
                throw fail("the file is not valid UTF-8 (byte 0x\(String(lead, radix: 16)) at offset \(k))", at: k)
            }
            k += n
        }
    }

    mutating func skipSpaces() {
        while let c = peek, c == 0x20 || c == 0x09 { i += 1 }
    }

    /// A comment from `#` to the end of the line (not including the newline).
    mutating func comment() throws(TOMLError) {
        i += 1
        while let c = peek, c != 0x0A {
            if c == 0x0D && at(i + 1) == 0x0A { return }
            if Self.isControl(c) { throw fail("control character \(found()) in a comment") }
            i += 1
        }
    }

    /// Spaces, an optional comment, then a newline or the end of the file.
    mutating func endOfLine(afterValue: Bool = false) throws(TOMLError) {
        skipSpaces()
        if peek == UInt8(ascii: "#") { try comment() }
        guard let c = peek else { return }
        if c == 0x0A {
            i += 1
            return
        }
        if c == 0x0D && at(i + 1) == 0x0A {
            i += 2
            return
        }
        if c == 0x0D { throw fail("a carriage return must be followed by a line feed") }
        throw fail(
            afterValue
                ? "unexpected \(found()) after the value; one key = value per line"
                : "unexpected \(found()); expected a new line"
        )
    }

    /// Spaces, newlines and comments (inside arrays).
    mutating func skipBlank() throws(TOMLError) {
        while let c = peek {
            switch c {
            case 0x20, 0x09, 0x0A: i += 1
            case 0x0D:
                guard at(i + 1) == 0x0A else { throw fail("a carriage return must be followed by a line feed") }
                i += 2
            case UInt8(ascii: "#"): try comment()
            default: return
            }
        }
    }

    // MARK: Keys and tables

    mutating func note(_ path: [String]) {
        let joined = path.joined(separator: ".")
        if seenPaths.insert(joined).inserted { keyPaths.append(joined) }
    }

    func show(_ path: [String]) -> String { path.joined(separator: ".") }

    mutating func key() throws(TOMLError) -> [String] {
        var parts = [try simpleKey()]
        skipSpaces()
        while peek == UInt8(ascii: ".") {
            i += 1
            skipSpaces()
            parts.append(try simpleKey())
            skipSpaces()
        }
        return parts
    }

    mutating func simpleKey() throws(TOMLError) -> String {
        guard let c = peek else { throw fail("expected a key, found the end of the file") }
        if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
            if at(i + 1) == c && at(i + 2) == c { throw fail("a key cannot be a multi-line string") }
            return c == UInt8(ascii: "\"") ? try basicString() : try literalString()
        }
        let start = i
        while let c = peek, Self.isBareKey(c) { i += 1 }
        guard i > start else { throw fail("expected a key, found \(found())") }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == UInt8(ascii: "_")
            || c == UInt8(ascii: "-")
    }

    /// `[a.b]` or `[[a.b]]`.
    mutating func header() throws(TOMLError) {
        let start = i
        i += 1
        let array = peek == UInt8(ascii: "[")
        if array { i += 1 }
        skipSpaces()
        let path = try key()
        let (open, close, name) = (array ? "[[" : "[", array ? "]]" : "]", show(path))
        guard peek == UInt8(ascii: "]") else {
            throw fail("expected \(close) to close the table header \(open)\(show(path)), found \(found())")
        }
        i += 1
        if array {
            guard peek == UInt8(ascii: "]") else { throw fail("expected ]] to close [[\(show(path))") }
            i += 1
        }
        guard path.count <= Self.maxDepth else {
            throw fail("tables are nested more than \(Self.maxDepth) levels deep", at: start)
        }
        var t = root
        for (n, part) in path.dropLast().enumerated() {
            if let child = t.children[part] {
                switch child.kind {
                case .table: t = child
                case .arrayOfTables: t = child.elements.last!
                case .value:
                    let value = show(Array(path[...n]))
                    throw fail("\(value) is already a value, so \(open)\(name)\(close) cannot add to it", at: start)
                }
            } else {
                let child = TOMLNode(.table)
                t.add(part, child)
                t = child
            }
            note(Array(path[...n]))
        }
        let last = path.last!
        if array {
            let element = TOMLNode(.table)
            element.explicit = true
            if let existing = t.children[last] {
                guard existing.kind == .arrayOfTables else {
                    throw fail(
                        existing.kind == .table
                            ? "[[\(name)]] redefines the table [\(name)]"
                            : "[[\(name)]] cannot append to \(name), which is a value (a static array is closed)",
                        at: start
                    )
                }
                existing.elements.append(element)
            } else {
                let list = TOMLNode(.arrayOfTables)
                list.elements.append(element)
                t.add(last, list)
            }
            current = element
        } else {
            if let existing = t.children[last] {
                switch existing.kind {
                case .arrayOfTables: throw fail("[\(name)] redefines the array of tables [[\(name)]]", at: start)
                case .value: throw fail("[\(name)] redefines \(name), which is already a value", at: start)
                case .table:
                    if existing.explicit { throw fail("the table [\(name)] is defined twice", at: start) }
                    if existing.dotted {
                        throw fail("the table [\(name)] was already defined by dotted keys", at: start)
                    }
                    existing.explicit = true
                    current = existing
                }
            } else {
                let table = TOMLNode(.table)
                table.explicit = true
                t.add(last, table)
                current = table
            }
        }
        note(path)
        currentPath = path
        try endOfLine()
    }

    /// `key = value` into `table`, whose own path is `prefix`.
    mutating func keyValue(into table: TOMLNode, prefix: [String]) throws(TOMLError) {
        let start = i
        let k = try key()
        let path = prefix + k
        guard peek == UInt8(ascii: "=") else {
            throw fail(
                peek == nil || peek == 0x0A || peek == 0x0D
                    ? "expected = after the key \(show(k))" : "expected = after the key \(show(k)), found \(found())"
            )
        }
        i += 1
        skipSpaces()
        guard path.count <= Self.maxDepth else {
            throw fail("tables are nested more than \(Self.maxDepth) levels deep", at: start)
        }
        var t = table
        for (n, part) in k.dropLast().enumerated() {
            if let child = t.children[part] {
                guard child.kind == .table, child.dotted, !child.explicit else {
                    let what =
                        child.kind == .table
                        ? "a table defined elsewhere" : child.kind == .value ? "a value" : "an array of tables"
                    throw fail(
                        "\(show(prefix + k[...n])) is \(what); the dotted key \(show(k)) cannot add to it",
                        at: start
                    )
                }
                t = child
            } else {
                let child = TOMLNode(.table)
                child.dotted = true
                t.add(part, child)
                t = child
            }
            note(prefix + k[...n])
        }
        let last = k.last!
        guard t.children[last] == nil else { throw fail("the key \(show(path)) is defined twice", at: start) }
        note(path)
        let valueStart = i
        let v = try value(path: path)
        t.add(last, TOMLNode(.value, value: v))
        if case .table = v {} else { spans.append(.init(path: show(path), range: valueStart..<i, value: v)) }
    }

    // MARK: Values

    mutating func value(path: [String]) throws(TOMLError) -> TOMLValue {
        guard let c = peek else { throw fail("expected a value, found the end of the file") }
        switch c {
        case UInt8(ascii: "\""):
            return .string(at(i + 1) == c && at(i + 2) == c ? try multilineBasicString() : try basicString())
        case UInt8(ascii: "'"):
            return .string(at(i + 1) == c && at(i + 2) == c ? try multilineLiteralString() : try literalString())
        case UInt8(ascii: "["):
            return try array(path: path)
        case UInt8(ascii: "{"):
            return try inlineTable(path: path)
        default:
            return try scalar()
        }
    }

    mutating func nest() throws(TOMLError) {
        depth += 1
        guard depth + currentPath.count <= Self.maxDepth else {
            throw fail("values are nested more than \(Self.maxDepth) levels deep")
        }
    }

    mutating func array(path: [String]) throws(TOMLError) -> TOMLValue {
        try nest()
        defer { depth -= 1 }
        let start = i
        i += 1
        var out: [TOMLValue] = []
        while true {
            try skipBlank()
            if peek == UInt8(ascii: "]") {
                i += 1
                return .array(out)
            }
            if peek == nil { throw fail("unterminated array (opened on line \(line(at: start)))") }
            out.append(try value(path: path))
            try skipBlank()
            switch peek {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "]"):
                i += 1
                return .array(out)
            case nil: throw fail("unterminated array")
            default: throw fail("expected , or ] in the array, found \(found())")
            }
        }
    }

    mutating func inlineTable(path: [String]) throws(TOMLError) -> TOMLValue {
        try nest()
        defer { depth -= 1 }
        i += 1
        let node = TOMLNode(.table)
        skipSpaces()
        if peek == UInt8(ascii: "}") {
            i += 1
            return .table(node.table())
        }
        while true {
            skipSpaces()
            if peek == 0x0A || peek == 0x0D { throw fail("an inline table must fit on one line (TOML 1.0)") }
            try keyValue(into: node, prefix: path)
            skipSpaces()
            switch peek {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "}"):
                i += 1
                return .table(node.table())
            case 0x0A, 0x0D: throw fail("an inline table must fit on one line (TOML 1.0)")
            default: throw fail("expected , or } in the inline table, found \(found())")
            }
        }
    }

    // MARK: Strings

    mutating func basicString() throws(TOMLError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case 0x0A, 0x0D:
                throw fail("a single-line string ends at the end of the line")
            default:
                if Self.isControl(c) { throw fail("control character \(found()) in a string; write it as an escape") }
                out.append(c)
                i += 1
            }
        }
    }

    mutating func escape(into out: inout [UInt8]) throws(TOMLError) {
        let start = i
        i += 1
        guard let e = peek else { throw fail("unterminated string") }
        i += 1
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            var v: UInt32 = 0
            for _ in 0..<n {
                guard let h = peek, let d = Self.hexDigit(h) else {
                    throw fail("\\\(e == UInt8(ascii: "u") ? "u" : "U") needs \(n) hexadecimal digits", at: start)
                }
                v = v << 4 | UInt32(d)
                i += 1
            }
            guard let scalar = Unicode.Scalar(v) else {
                let escape = (e == UInt8(ascii: "u") ? "\\u" : "\\U") + String(v, radix: 16, uppercase: true)
                throw fail("\(escape) is not a Unicode scalar value", at: start)
            }
            out.append(contentsOf: Array(String(scalar).utf8))
        default:
            throw fail("invalid escape in a string: a backslash followed by \(found(i - 1))", at: start)
        }
    }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// After an opening `"""` or `'''`: a newline right after the delimiter is trimmed.
    mutating func skipOpeningNewline() {
        if peek == 0x0A { i += 1 } else if peek == 0x0D && at(i + 1) == 0x0A { i += 2 }
    }

    /// At a quote inside a multi-line string: how many quotes close it (1...2 extra quotes belong to the content).
    /// Returns the content quotes, or nil when the run is shorter than three (then they are content).
    mutating func closingRun(_ q: UInt8) throws(TOMLError) -> Int? {
        var n = 0
        while at(i + n) == q { n += 1 }
        guard n >= 3 else { return nil }
        guard n <= 5 else {
            throw fail("too many quotes at the end of a multi-line string (three in a row close it)", at: i + 5)
        }
        i += n
        return n - 3
    }

    mutating func multilineBasicString() throws(TOMLError) -> String {
        let start = i
        i += 3
        skipOpeningNewline()
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated multi-line string (opened on line \(line(at: start)))") }
            switch c {
            case UInt8(ascii: "\""):
                if let extra = try closingRun(c) {
                    out.append(contentsOf: repeatElement(c, count: extra))
                    return String(decoding: out, as: UTF8.self)
                }
                out.append(c)
                i += 1
            case UInt8(ascii: "\\"):
                // A backslash that ends a line trims it and all whitespace after it.
                var k = i + 1
                while let w = at(k), w == 0x20 || w == 0x09 { k += 1 }
                if at(k) == 0x0A || (at(k) == 0x0D && at(k + 1) == 0x0A) {
                    i = k
                    while let w = peek {
                        if w == 0x20 || w == 0x09 || w == 0x0A {
                            i += 1
                        } else if w == 0x0D && at(i + 1) == 0x0A {
                            i += 2
                        } else {
                            break
                        }
                    }
                } else {
                    try escape(into: &out)
                }
            case 0x0A:
                out.append(c)
                i += 1
            case 0x0D:
                guard at(i + 1) == 0x0A else { throw fail("a carriage return must be followed by a line feed") }
                out.append(contentsOf: [0x0D, 0x0A])
                i += 2
            default:
                if Self.isControl(c) { throw fail("control character \(found()) in a string; write it as an escape") }
                out.append(c)
                i += 1
            }
        }
    }

    mutating func literalString() throws(TOMLError) -> String {
        i += 1
        let start = i
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            if c == UInt8(ascii: "'") {
                i += 1
                return String(decoding: b[start..<i - 1], as: UTF8.self)
            }
            if c == 0x0A || c == 0x0D { throw fail("a single-line string ends at the end of the line") }
            if Self.isControl(c) {
                throw fail("control character \(found()) in a literal string (literal strings have no escapes)")
            }
            i += 1
        }
    }

    mutating func multilineLiteralString() throws(TOMLError) -> String {
        let start = i
        i += 3
        skipOpeningNewline()
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated multi-line string (opened on line \(line(at: start)))") }
            if c == UInt8(ascii: "'"), let extra = try closingRun(c) {
                out.append(contentsOf: repeatElement(c, count: extra))
                return String(decoding: out, as: UTF8.self)
            }
            if c == 0x0D {
                guard at(i + 1) == 0x0A else { throw fail("a carriage return must be followed by a line feed") }
            } else if c != 0x0A && Self.isControl(c) {
                throw fail("control character \(found()) in a literal string (literal strings have no escapes)")
            }
            out.append(c)
            i += 1
        }
    }

    // MARK: Numbers, booleans, dates and times

    /// A bare value: read up to the next delimiter, then classify the token by the grammar.
    mutating func scalar() throws(TOMLError) -> TOMLValue {
        let start = i
        while let c = peek {
            if Self.isBareKey(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":") {
                i += 1
                continue
            }
            // The space between a date and a time: "1979-05-27 07:32:00".
            if c == 0x20, i - start == 10, TOMLScalars.isDate(b[start..<i]), let d = at(i + 1), d >= 0x30 && d <= 0x39 {
                i += 1
                continue
            }
            break
        }
        let token = b[start..<i]
        guard !token.isEmpty else { throw fail("expected a value, found \(found())") }
        do {
            return try TOMLScalars.classify(token)
        } catch let problem {
            throw fail(problem.message, at: start)
        }
    }
}
