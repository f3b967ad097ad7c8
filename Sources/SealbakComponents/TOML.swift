import SealbakIO

/// A value of a TOML 1.0 document, as `TOMLDocument.decode` returns it.
///
/// Floats compare equal when both are NaN or when they are equal with the same sign (`-0.0` ≠ `0.0`), so that
/// decoded documents can be compared in tests; tables compare without regard to key order.
package enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    /// `1979-05-27T07:32:00-07:00`: offset in minutes east of UTC (`Z` is 0).
    case offsetDateTime(TOMLDate, TOMLTime, offsetMinutes: Int)
    /// `1979-05-27T07:32:00`
    case localDateTime(TOMLDate, TOMLTime)
    /// `1979-05-27`
    case localDate(TOMLDate)
    /// `07:32:00.5`
    case localTime(TOMLTime)
    case array([TOMLValue])
    case table(TOMLTable)

    package static func == (a: TOMLValue, b: TOMLValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.float(let x), .float(let y)): return (x.isNaN && y.isNaN) || (x == y && x.sign == y.sign)
        case (.bool(let x), .bool(let y)): return x == y
        case (.offsetDateTime(let d, let t, let o), .offsetDateTime(let e, let u, let p)):
            return d == e && t == u && o == p
        case (.localDateTime(let d, let t), .localDateTime(let e, let u)): return d == e && t == u
        case (.localDate(let d), .localDate(let e)): return d == e
        case (.localTime(let t), .localTime(let u)): return t == u
        case (.array(let x), .array(let y)): return x == y
        case (.table(let x), .table(let y)): return x == y
        default: return false
        }
    }
}

/// A calendar date (validated: `1979-02-29` and month 13 are rejected).
package struct TOMLDate: Sendable, Hashable, CustomStringConvertible {
    package var year: Int
    package var month: Int
    package var day: Int

    package init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    package var description: String { pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) }

    static func days(inMonth month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// A time of day; `second` may be 60 (a leap second, as RFC 3339 allows). Fractions beyond nanoseconds are
/// truncated.
package struct TOMLTime: Sendable, Hashable, CustomStringConvertible {
    package var hour: Int
    package var minute: Int
    package var second: Int
    package var nanosecond: Int

    package init(hour: Int, minute: Int, second: Int, nanosecond: Int = 0) {
        self.hour = hour
        self.minute = minute
        self.second = second
        self.nanosecond = nanosecond
    }

    package var description: String {
        var s = pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2)
        if nanosecond != 0 {
            var f = pad(nanosecond, 9)
            while f.hasSuffix("0") { f.removeLast() }
            s += "." + f
        }
        return s
    }
}

private func pad(_ n: Int, _ width: Int) -> String {
    let s = String(n)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}

/// A TOML table: keys in document order, compared without regard to order.
package struct TOMLTable: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    package private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]

    package init() {}

    package init(dictionaryLiteral elements: (String, TOMLValue)...) {
        for (k, v) in elements { self[k] = v }
    }

    package var count: Int { keys.count }

    package subscript(key: String) -> TOMLValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil, values[key] != nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }

    package static func == (a: TOMLTable, b: TOMLTable) -> Bool { a.values == b.values }
}

/// Why a TOML document was rejected: the 1-based line and a one-line message (control characters, invisible
/// format characters such as a byte order mark, and newlines are escaped).
package struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    package var line: Int
    package var message: String

    init(line: Int, _ message: String) {
        self.line = line
        self.message = TOMLError.oneLine(message)
    }

    package var description: String { "line \(line): \(message)" }

    /// `displayName` escaping (controls, DEL, C1, line separators) plus Unicode format characters (BOM, zero-width
    /// and bidirectional controls), so a message can neither break a line nor hide what it names.
    /// Messages quote keys and values from the file; a long one is cut so that a message stays readable. (Used for
    /// every config format's message.)
    static func oneLine(_ s: String, limit: Int = 300) -> String {
        var out = ""
        var count = 0
        for scalar in displayName(bytes: Array(s.utf8), escapingBackslash: false).unicodeScalars {
            if count == limit { return out + "…" }
            if scalar.properties.generalCategory == .format {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out
    }
}

/// A decoded TOML 1.0 document together with what the config component needs from it: every key path (tables,
/// keys, dotted-key intermediates; array elements share their array's path, e.g. `models.name`) in document
/// order, and where each value sits in the source bytes (for redaction that keeps everything else, comments
/// included, byte for byte).
package struct TOMLDocument: Sendable {
    /// One key's value in the source: its key path and the byte range of the value's text.
    package struct Span: Sendable, Equatable {
        package var path: String
        package var range: Range<Int>
        /// A string, integer, float, boolean, date/time or array (inline tables are not spans; their keys are).
        package var value: TOMLValue
    }

    package var root: TOMLTable
    package var keyPaths: [String]
    package var spans: [Span]

    /// Decodes a document. A leading byte order mark is skipped.
    /// - Throws: `TOMLError` for bytes that are not UTF-8 or a document TOML 1.0 does not allow.
    package static func decode(_ bytes: [UInt8]) throws(TOMLError) -> TOMLDocument {
        var p = TOMLParser(bytes)
        try p.document()
        return TOMLDocument(root: p.root.table(), keyPaths: p.keyPaths, spans: p.spans)
    }

    package static func decode(_ text: String) throws(TOMLError) -> TOMLDocument { try decode(Array(text.utf8)) }
}
