import SealbakComponents
import Testing

// Literals for expected values: `["a": 1, "b": [true, "x"]]`.
extension TOMLValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    package init(stringLiteral value: String) { self = .string(value) }
    package init(integerLiteral value: Int64) { self = .integer(value) }
    package init(floatLiteral value: Double) { self = .float(value) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    package init(arrayLiteral elements: TOMLValue...) { self = .array(elements) }
    package init(dictionaryLiteral elements: (String, TOMLValue)...) {
        var t = TOMLTable()
        for (k, v) in elements { t[k] = v }
        self = .table(t)
    }
}

private func date(_ y: Int, _ m: Int, _ d: Int) -> TOMLDate { TOMLDate(year: y, month: m, day: d) }
private func time(_ h: Int, _ m: Int, _ s: Int, _ ns: Int = 0) -> TOMLTime {
    TOMLTime(hour: h, minute: m, second: s, nanosecond: ns)
}

/// A case table over every section of TOML 1.0 (keys, strings, integers, floats, booleans, date/times, arrays,
/// tables, inline tables, arrays of tables): valid documents decode to exactly the expected values, invalid
/// ones are rejected with a one-line message on the right line.
@Suite struct TOMLTests {
    static func decodes(_ toml: String, _ expected: TOMLTable, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let document = try TOMLDocument.decode(toml)
            #expect(document.root == expected, "\(toml.debugDescription)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(toml.debugDescription) was rejected: \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Rejected; when given, on `line` and with `message` in the text. Every message is one line.
    static func rejects(
        _ toml: String,
        line: Int? = nil,
        _ message: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            let document = try TOMLDocument.decode(toml)
            Issue.record("\(toml.debugDescription) was accepted as \(document.root)", sourceLocation: sourceLocation)
        } catch {
            if let line {
                #expect(error.line == line, "\(toml.debugDescription): \(error)", sourceLocation: sourceLocation)
            }
            if let message {
                #expect(
                    error.message.contains(message),
                    "\(toml.debugDescription): \(error)",
                    sourceLocation: sourceLocation
                )
            }
            #expect(
                !error.description.contains("\n") && !error.description.contains("\r"),
                sourceLocation: sourceLocation
            )
            #expect(
                !error.description.unicodeScalars.contains {
                    $0.properties.generalCategory == .format || $0.value < 0x20
                },
                "\(error.description.debugDescription)",
                sourceLocation: sourceLocation
            )
        }
    }

    // MARK: Document, comments, whitespace

    @Test func documentsAndComments() {
        let valid: [(String, TOMLTable)] = [
            ("", [:]),
            ("\n\n\n", [:]),
            ("   \t  \n", [:]),
            ("# only a comment", [:]),
            ("# comment\n# another\n", [:]),
            ("a = 1 # trailing comment", ["a": 1]),
            ("a = 1# no space before the comment", ["a": 1]),
            ("a = 1\r\nb = 2\r\n", ["a": 1, "b": 2]),
            ("a = 1", ["a": 1]),
            ("\u{FEFF}a = 1\n", ["a": 1]),
            ("\t a \t = \t 1 \t \n", ["a": 1]),
            ("# comment with \"quotes\" and = and [brackets]\na = 1", ["a": 1]),
            ("# Unicode in a comment: ünïcödé ✓ 🎉\na = 1", ["a": 1]),
            ("#\ta tab in a comment is allowed\na = 1", ["a": 1]),
            ("a = 1\n\n\n# gap\n\nb = 2", ["a": 1, "b": 2]),
            ("[t] # comment after a header\nx = 1", ["t": ["x": 1]]),
            ("[[t]] # comment after an array-of-tables header\nx = 1", ["t": [["x": 1]]]),
        ]
        for (toml, expected) in valid { Self.decodes(toml, expected) }
        Self.rejects("a = 1 # bell \u{7}\n", line: 1, "control character U+0007 in a comment")
        Self.rejects("a = 1 # del \u{7F}\n", line: 1, "U+007F")
        Self.rejects("a = 1 # nul \u{0}\n", line: 1, "U+0000")
        Self.rejects("a = 1\rb = 2\n", line: 1, "carriage return")
        Self.rejects("# ok\n# cr \r here\n", line: 2, "U+000D")
        Self.rejects("a = 1 b = 2\n", line: 1, "unexpected \"b\" after the value; one key = value per line")
        Self.rejects("a = 1\n\u{FEFF}b = 2\n", line: 2, "expected a key, found U+FEFF")
        Self.rejects("a = \u{FEFF}1\n", line: 1, "U+FEFF")
        Self.rejects("a = 1\n\u{3000}b = 2\n", line: 2, "U+3000")
        Self.rejects("\u{C}a = 1", line: 1, "U+000C")
        Self.rejects("a = 1\n\u{B}", line: 2, "U+000B")
    }

    @Test func invalidUTF8IsRejectedWithItsLine() {
        let cases: [[UInt8]] = [
            Array("a = \"".utf8) + [0xC3] + Array("\"\n".utf8),
            Array("a = 1\n# ".utf8) + [0xFF],
            Array("a = '".utf8) + [0xED, 0xA0, 0x80] + Array("'".utf8),  // a UTF-16 surrogate
            Array("a = '".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array("'".utf8),  // above U+10FFFF
            Array("a = '".utf8) + [0xC0, 0xAF] + Array("'".utf8),  // overlong
            [0xFE, 0xFF, 0x00, 0x61],  // UTF-16 byte order mark
        ]
        for bytes in cases {
            #expect(throws: TOMLError.self, "\(bytes)") { try TOMLDocument.decode(bytes) }
        }
        do {
            _ = try TOMLDocument.decode(Array("a = 1\n# ".utf8) + [0xFF])
        } catch {
            #expect(error.line == 2 && error.message.contains("not valid UTF-8"), "\(error)")
        }
    }

    // MARK: Keys

    @Test func keys() {
        let valid: [(String, TOMLTable)] = [
            ("key = 1", ["key": 1]),
            ("bare_key = 1", ["bare_key": 1]),
            ("bare-key = 1", ["bare-key": 1]),
            ("1234 = 1", ["1234": 1]),
            ("-_- = 1", ["-_-": 1]),
            ("ABC = 1\nabc = 2", ["ABC": 1, "abc": 2]),
            ("\"127.0.0.1\" = 1", ["127.0.0.1": 1]),
            ("\"character encoding\" = 1", ["character encoding": 1]),
            ("\"ʎǝʞ\" = 1", ["ʎǝʞ": 1]),
            ("'key2' = 1", ["key2": 1]),
            ("'quoted \"value\"' = 1", ["quoted \"value\"": 1]),
            ("\"\" = 1", ["": 1]),
            ("'' = 1", ["": 1]),
            (#""a\tb" = 1"#, ["a\tb": 1]),
            (#""\u00e9" = 1"#, ["é": 1]),
            ("a.b.c = 1", ["a": ["b": ["c": 1]]]),
            ("a . b . c = 1", ["a": ["b": ["c": 1]]]),
            ("a\t.\tb = 1", ["a": ["b": 1]]),
            ("site.\"google.com\" = true", ["site": ["google.com": true]]),
            ("3.14159 = \"pi\"", ["3": ["14159": "pi"]]),
            ("a.b = 1\na.c = 2", ["a": ["b": 1, "c": 2]]),
            ("a.b.c = 1\na.b.d = 2\na.e = 3", ["a": ["b": ["c": 1, "d": 2], "e": 3]]),
            (
                "fruit.apple.color = \"red\"\nfruit.orange.color = \"orange\"",
                ["fruit": ["apple": ["color": "red"], "orange": ["color": "orange"]]]
            ),
            ("\"a.b\" = 1\na.b = 2", ["a.b": 1, "a": ["b": 2]]),
            ("a = 1\nA = 2", ["a": 1, "A": 2]),
            ("true = 1\nfalse = 2\ninf = 3\nnan = 4", ["true": 1, "false": 2, "inf": 3, "nan": 4]),
            ("1 = 1\n01 = 2", ["1": 1, "01": 2]),
            ("\"a\" = 1\n'b' = 2\nc = 3", ["a": 1, "b": 2, "c": 3]),
            ("a.\"\".b = 1", ["a": ["": ["b": 1]]]),
        ]
        for (toml, expected) in valid { Self.decodes(toml, expected) }
        let invalid: [(String, Int, String)] = [
            ("= 1", 1, "expected a key, found \"=\""),
            ("key\n", 1, "expected = after the key key"),
            ("key value\n", 1, "expected = after the key key, found \"v\""),
            ("a = 1\na = 2\n", 2, "the key a is defined twice"),
            ("a = 1\n\"a\" = 2\n", 2, "the key a is defined twice"),
            ("a = 1\n'a' = 2\n", 2, "the key a is defined twice"),
            ("a.b = 1\na.b = 2\n", 2, "the key a.b is defined twice"),
            ("a = 1\na.b = 2\n", 2, "a is a value; the dotted key a.b cannot add to it"),
            ("a.b = 1\na = 2\n", 2, "the key a is defined twice"),
            ("a. = 1", 1, "expected a key"),
            (".a = 1", 1, "expected a key"),
            ("a..b = 1", 1, "expected a key"),
            ("a b = 1", 1, "expected = after the key a"),
            ("\"\"\"a\"\"\" = 1", 1, "a key cannot be a multi-line string"),
            ("'''a''' = 1", 1, "a key cannot be a multi-line string"),
            ("ü = 1", 1, "expected a key, found \"ü\""),
            ("a = ", 1, "expected a value"),
            ("a =\nb = 1", 1, "expected a value"),
            ("a = # comment", 1, "expected a value, found \"#\""),
            ("a==1", 1, "expected a value"),
            ("[a]\nb = 1\nb = 2", 3, "the key a.b is defined twice"),
            ("\"a\nb\" = 1", 1, "single-line string"),
            ("a = 1\n\n\n\"x\" = 1\n\"x\" = 2", 5, "the key x is defined twice"),
        ]
        for (toml, line, message) in invalid { Self.rejects(toml, line: line, message) }
    }

    @Test func keyNamesWithControlCharactersAreEscapedInMessages() throws {
        // A quoted key may hold a newline, a BOM or an escape sequence; the message must still be one line.
        Self.rejects(#""a\nb" = 1"# + "\n" + #""a\nb" = 2"#, line: 2, #"the key a\nb is defined twice"#)
        Self.rejects(#""\uFEFFk" = 1"# + "\n" + #""\uFEFFk" = 2"#, line: 2, #"the key \u{feff}k is defined twice"#)
        Self.rejects(#""\u001b[31m" = 1"# + "\n" + #""\u001b[31m" = 2"#, line: 2, #"\x1b[31m"#)
        Self.rejects(#"["\u202Eevil"]"# + "\n" + #"["\u202Eevil"]"#, line: 2, #"\u{202e}evil"#)
    }

    // MARK: Strings

    @Test func basicStrings() {
        let valid: [(String, TOMLValue)] = [
            (#""""#, ""),
            (#""hello""#, "hello"),
            (#""with 'single' quotes""#, "with 'single' quotes"),
            (#""\b\t\n\f\r\"\\""#, "\u{8}\t\n\u{C}\r\"\\"),
            (#""\u00E9\u00e9""#, "éé"),
            (#""\U0001F600""#, "😀"),
            (#""\u0000""#, "\u{0}"),
            (#""\u007F""#, "\u{7F}"),
            (#""\uD7FF\uE000""#, "\u{D7FF}\u{E000}"),
            (#""\U0010FFFF""#, "\u{10FFFF}"),
            (#""tab\there""#, "tab\there"),
            ("\"a\tliteral tab\"", "a\tliteral tab"),
            (#""ünïcödé ✓""#, "ünïcödé ✓"),
            (##""# not a comment""##, "# not a comment"),
            (#""C:\\Users\\x""#, "C:\\Users\\x"),
            (#""\"quoted\"""#, "\"quoted\""),
        ]
        for (text, expected) in valid { Self.decodes("s = " + text, ["s": expected]) }
        let invalid: [(String, String)] = [
            (#"s = "a\qb""#, "invalid escape"),
            (#"s = "\x41""#, "invalid escape"),
            (#"s = "\e""#, "invalid escape"),
            (#"s = "\/""#, "invalid escape"),
            (#"s = "\ ""#, "a backslash followed by \" \""),
            (#"s = "\u12""#, #"\u needs 4 hexadecimal digits"#),
            (#"s = "\u12G4""#, #"\u needs 4 hexadecimal digits"#),
            (#"s = "\U0001F60""#, #"\U needs 8 hexadecimal digits"#),
            (#"s = "\uD800""#, "is not a Unicode scalar value"),
            (#"s = "\uDFFF""#, "is not a Unicode scalar value"),
            (#"s = "\U00110000""#, "is not a Unicode scalar value"),
            (#"s = "\UFFFFFFFF""#, "is not a Unicode scalar value"),
            ("s = \"open\n", "a single-line string ends at the end of the line"),
            ("s = \"open", "unterminated string"),
            ("s = \"bell \u{7}\"", "control character U+0007 in a string"),
            ("s = \"nul \u{0}\"", "U+0000"),
            ("s = \"del \u{7F}\"", "U+007F"),
            ("s = \"esc \u{1B}[31m\"", "U+001B"),
            ("s = \"cr \r\"", "single-line"),
            ("s = \"a\" \"b\"", "after the value"),
            ("s = \"a\"b", "after the value"),
        ]
        for (toml, message) in invalid { Self.rejects(toml, line: 1, message) }
    }

    @Test func multiLineBasicStrings() {
        let valid: [(String, TOMLValue)] = [
            ("\"\"\"\"\"\"", ""),
            ("\"\"\"one line\"\"\"", "one line"),
            ("\"\"\"\nfirst newline trimmed\"\"\"", "first newline trimmed"),
            ("\"\"\"\r\nCRLF first newline trimmed\"\"\"", "CRLF first newline trimmed"),
            ("\"\"\"\n\nonly the first\"\"\"", "\nonly the first"),
            ("\"\"\"\nRoses are red\nViolets are blue\"\"\"", "Roses are red\nViolets are blue"),
            (
                "\"\"\"\nThe quick brown \\\n\n\n  fox jumps over \\\n    the lazy dog.\"\"\"",
                "The quick brown fox jumps over the lazy dog."
            ),
            (
                "\"\"\"\\\n       The quick brown \\\n       fox jumps over \\\n       the lazy dog.\\\n       \"\"\"",
                "The quick brown fox jumps over the lazy dog."
            ),
            (
                "\"\"\"line ending backslash with trailing spaces \\   \n   next\"\"\"",
                "line ending backslash with trailing spaces next"
            ),
            ("\"\"\"backslash then tab \\\t\n\tnext\"\"\"", "backslash then tab next"),
            ("\"\"\"a \\\r\n  b\"\"\"", "a b"),
            (
                "\"\"\"Here are two quotation marks: \"\". Simple enough.\"\"\"",
                "Here are two quotation marks: \"\". Simple enough."
            ),
            ("\"\"\"Here are three quotation marks: \"\"\\\".\"\"\"", "Here are three quotation marks: \"\"\"."),
            (
                "\"\"\"Here are fifteen quotation marks: \"\"\\\"\"\"\\\"\"\"\\\"\"\"\\\"\"\"\\\".\"\"\"",
                "Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"."
            ),
            (
                "\"\"\"\"This,\" she said, \"is just a pointless statement.\"\"\"\"",
                "\"This,\" she said, \"is just a pointless statement.\""
            ),
            ("\"\"\"ends with one quote\"\"\"\"", "ends with one quote\""),
            ("\"\"\"ends with two quotes\"\"\"\"\"", "ends with two quotes\"\""),
            ("\"\"\"\"\"\"\"", "\""),
            ("\"\"\"\"\"\"\"\"", "\"\""),
            ("\"\"\"escapes \\t \\u00e9 \\\"\"\"\"", "escapes \t é \""),
            ("\"\"\"tab\tinside\"\"\"", "tab\tinside"),
            ("\"\"\"a\r\nb\"\"\"", "a\r\nb"),
            ("\"\"\"# not a comment\n\"\"\"", "# not a comment\n"),
            ("\"\"\"\\\\\"\"\"", "\\"),
        ]
        for (text, expected) in valid { Self.decodes("s = " + text, ["s": expected]) }
        let invalid: [(String, Int, String)] = [
            ("s = \"\"\"open\n", 2, "unterminated multi-line string (opened on line 1)"),
            ("s = \"\"\"\"\"\"\"\"\"", 1, "too many quotes"),
            ("s = \"\"\"six quotes\"\"\"\"\"\"", 1, "too many quotes"),
            ("s = \"\"\"bad \\q\"\"\"", 1, "invalid escape"),
            ("s = \"\"\"a\n\\ x\"\"\"", 2, "a backslash followed by \" \""),
            ("s = \"\"\"bell \u{7}\"\"\"", 1, "control character U+0007"),
            ("s = \"\"\"del \u{7F}\"\"\"", 1, "U+007F"),
            ("s = \"\"\"lone \r cr\"\"\"", 1, "carriage return"),
            ("s = \"\"\"a\"\"\" \"b\"", 1, "after the value"),
            ("s = \"\"\"\\uD800\"\"\"", 1, "not a Unicode scalar value"),
        ]
        for (toml, line, message) in invalid { Self.rejects(toml, line: line, message) }
    }

    @Test func literalStrings() {
        let valid: [(String, TOMLValue)] = [
            ("''", ""),
            ("'C:\\Users\\nodejs\\templates'", "C:\\Users\\nodejs\\templates"),
            ("'\\\\ServerX\\admin$\\system32\\'", "\\\\ServerX\\admin$\\system32\\"),
            ("'Tom \"Dubs\" Preston-Werner'", "Tom \"Dubs\" Preston-Werner"),
            ("'<\\i\\c*\\s*>'", "<\\i\\c*\\s*>"),
            ("'\\n is not an escape'", "\\n is not an escape"),
            ("'tab\there'", "tab\there"),
            ("'ünïcödé'", "ünïcödé"),
            ("'''I [dw]on't need \\d{2} apples'''", "I [dw]on't need \\d{2} apples"),
            (
                "'''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n'''",
                "The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is preserved.\n"
            ),
            (
                "'''Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"'''",
                "Here are fifteen quotation marks: \"\"\"\"\"\"\"\"\"\"\"\"\"\"\""
            ),
            ("''''That,' she said, 'is still pointless.''''", "'That,' she said, 'is still pointless.'"),
            ("'''one quote at the end''''", "one quote at the end'"),
            ("'''two quotes at the end'''''", "two quotes at the end''"),
            ("'''a \\\n b'''", "a \\\n b"),
            ("''''''", ""),
            ("'''\r\nfirst CRLF trimmed'''", "first CRLF trimmed"),
        ]
        for (text, expected) in valid { Self.decodes("s = " + text, ["s": expected]) }
        let invalid: [(String, Int, String)] = [
            ("s = 'it's'", 1, "after the value"),
            ("s = 'open\n", 1, "a single-line string ends at the end of the line"),
            ("s = 'open", 1, "unterminated string"),
            ("s = 'bell \u{7}'", 1, "control character U+0007 in a literal string"),
            ("s = 'nul \u{0}'", 1, "U+0000"),
            ("s = '''open\n\n", 3, "unterminated multi-line string (opened on line 1)"),
            ("s = '''six'''''''", 1, "too many quotes"),
            ("s = '''bell \u{7}'''", 1, "U+0007"),
            ("s = '''del \u{7F}'''", 1, "U+007F"),
            ("s = '''lone \r cr'''", 1, "carriage return"),
        ]
        for (toml, line, message) in invalid { Self.rejects(toml, line: line, message) }
    }

    // MARK: Integers

    @Test func integers() {
        let valid: [(String, Int64)] = [
            ("0", 0), ("+0", 0), ("-0", 0), ("1", 1), ("+99", 99), ("42", 42), ("-17", -17),
            ("1_000", 1000), ("5_349_221", 5_349_221), ("53_49_221", 5_349_221), ("1_2_3_4_5", 12345),
            ("9223372036854775807", .max), ("-9223372036854775808", .min), ("+9223372036854775807", .max),
            ("9_223_372_036_854_775_807", .max),
            ("0xDEADBEEF", 0xDEAD_BEEF), ("0xdeadbeef", 0xDEAD_BEEF), ("0xdead_beef", 0xDEAD_BEEF), ("0x0", 0),
            ("0x00", 0),
            ("0x7FFFFFFFFFFFFFFF", .max), ("0x0000000000000000001", 1),
            ("0o01234567", 0o01234567), ("0o755", 0o755), ("0o7_7", 0o77), ("0o777777777777777777777", .max),
            ("0b11010110", 0b11010110), ("0b0", 0), ("0b1_0", 2),
            ("0b111111111111111111111111111111111111111111111111111111111111111", .max),
        ]
        for (text, expected) in valid { Self.decodes("n = " + text, ["n": .integer(expected)]) }
        let invalid: [(String, String)] = [
            ("9223372036854775808", "does not fit in 64 bits"),
            ("-9223372036854775809", "does not fit in 64 bits"),
            ("99999999999999999999", "does not fit in 64 bits"),
            ("0x8000000000000000", "does not fit in 64 bits"),
            ("0xFFFFFFFFFFFFFFFF", "does not fit in 64 bits"),
            ("0o1000000000000000000000", "does not fit in 64 bits"),
            ("0b1000000000000000000000000000000000000000000000000000000000000000", "does not fit in 64 bits"),
            ("012", "leading zeros"), ("-01", "leading zeros"), ("+00", "leading zeros"),
            ("0_1", "is not a TOML value"),
            ("1__000", "is not a TOML value"), ("_1", "is not a TOML value"), ("1_", "is not a TOML value"),
            ("+_1", "is not a TOML value"), ("1_000_", "is not a TOML value"),
            ("0X1F", "is not a TOML value"), ("0O17", "is not a TOML value"), ("0B1", "is not a TOML value"),
            ("+0x1F", "is not a TOML value"), ("-0x1F", "is not a TOML value"), ("+0o7", "is not a TOML value"),
            ("-0b1", "is not a TOML value"), ("0x", "is not a TOML value"), ("0o", "is not a TOML value"),
            ("0b", "is not a TOML value"), ("0x_1", "is not a TOML value"), ("0x1_", "is not a TOML value"),
            ("0xG", "is not a TOML value"), ("0o8", "is not a TOML value"), ("0b2", "is not a TOML value"),
            ("0x1__2", "is not a TOML value"), ("1-2", "is not a TOML value"), ("+", "is not a TOML value"),
            ("-", "is not a TOML value"), ("++1", "is not a TOML value"), ("--1", "is not a TOML value"),
            ("1 2", "after the value"), ("1,", "after the value"), ("١", "expected a value"),
        ]
        for (text, message) in invalid { Self.rejects("n = " + text, line: 1, message) }
    }

    // MARK: Floats

    @Test func floats() {
        let valid: [(String, Double)] = [
            ("+1.0", 1.0), ("3.1415", 3.1415), ("-0.01", -0.01), ("5e+22", 5e22), ("1e06", 1e6), ("-2E-2", -2e-2),
            ("6.626e-34", 6.626e-34), ("224_617.445_991_228", 224_617.445_991_228), ("0.0", 0), ("0e0", 0),
            ("1e1_0", 1e10), ("1_0.0_1", 10.01), ("9_007_199_254_740_993.0", 9_007_199_254_740_993.0), ("1E2", 100),
            ("1e-0", 1), ("1e+0", 1), ("0.1", 0.1), ("1e007", 1e7), ("1.5e-07", 1.5e-7), ("123.456e2", 12345.6),
            ("1.7976931348623157e308", .greatestFiniteMagnitude), ("5e-324", .leastNonzeroMagnitude), ("+0.5", 0.5),
            ("inf", .infinity), ("+inf", .infinity), ("-inf", -.infinity),
        ]
        for (text, expected) in valid { Self.decodes("f = " + text, ["f": .float(expected)]) }
        for text in ["nan", "+nan", "-nan"] {
            guard case .float(let d)? = try? TOMLDocument.decode("f = " + text).root["f"] else {
                Issue.record("\(text) did not decode to a float")
                continue
            }
            #expect(d.isNaN, "\(text)")
        }
        // Signed zeros keep their sign.
        Self.decodes("f = -0.0", ["f": .float(-0.0)])
        Self.decodes("f = +0.0", ["f": .float(0.0)])
        #expect(TOMLValue.float(-0.0) != TOMLValue.float(0.0))
        let invalid: [String] = [
            ".7", "7.", "3.e+20", "+.5", "-.5", "1.", "1e", "1e+", "1e-", "1.2e", "e5", "E5", "1ee2", "1e2e3",
            "1.2.3", "1..2", "1e2.3", "1_.0", "1._0", "1.0_", "1_e2", "1e_2", "1e2_", "1.0__1", "01.0", "00.1",
            "-01.0", "+01e2", "0_1.0", "Inf", "INF", "NaN", "NAN", "infinity", "-infinity", "+-1.0", "1.0.", "1,5",
            ".", "e", "1e2e", "inf1", "nan1", "1.0e", "1.e1",
        ]
        for text in invalid { Self.rejects("f = " + text, line: 1) }
    }

    // MARK: Booleans

    @Test func booleans() {
        Self.decodes("t = true\nf = false", ["t": true, "f": false])
        Self.decodes("a = [true, false]", ["a": [true, false]])
        for text in [
            "True", "FALSE", "tru", "fals", "truthy", "falsey", "yes", "no", "on", "off", "1true", "t", "f", "TRUE",
        ] {
            Self.rejects("b = " + text, line: 1, "is not a TOML value")
        }
    }

    // MARK: Dates and times

    @Test func offsetAndLocalDateTimes() {
        let valid: [(String, TOMLValue)] = [
            ("1979-05-27T07:32:00Z", .offsetDateTime(date(1979, 5, 27), time(7, 32, 0), offsetMinutes: 0)),
            ("1979-05-27T07:32:00z", .offsetDateTime(date(1979, 5, 27), time(7, 32, 0), offsetMinutes: 0)),
            ("1979-05-27t07:32:00Z", .offsetDateTime(date(1979, 5, 27), time(7, 32, 0), offsetMinutes: 0)),
            ("1979-05-27T00:32:00-07:00", .offsetDateTime(date(1979, 5, 27), time(0, 32, 0), offsetMinutes: -420)),
            ("1979-05-27T00:32:00+05:30", .offsetDateTime(date(1979, 5, 27), time(0, 32, 0), offsetMinutes: 330)),
            ("1979-05-27T00:32:00+00:00", .offsetDateTime(date(1979, 5, 27), time(0, 32, 0), offsetMinutes: 0)),
            ("1979-05-27T00:32:00-00:00", .offsetDateTime(date(1979, 5, 27), time(0, 32, 0), offsetMinutes: 0)),
            ("1979-05-27T00:32:00+23:59", .offsetDateTime(date(1979, 5, 27), time(0, 32, 0), offsetMinutes: 1439)),
            (
                "1979-05-27T00:32:00.999999-07:00",
                .offsetDateTime(date(1979, 5, 27), time(0, 32, 0, 999_999_000), offsetMinutes: -420)
            ),
            ("1979-05-27 07:32:00Z", .offsetDateTime(date(1979, 5, 27), time(7, 32, 0), offsetMinutes: 0)),
            (
                "1979-05-27T07:32:00.5Z",
                .offsetDateTime(date(1979, 5, 27), time(7, 32, 0, 500_000_000), offsetMinutes: 0)
            ),
            (
                "1979-05-27T07:32:00.123456789Z",
                .offsetDateTime(date(1979, 5, 27), time(7, 32, 0, 123_456_789), offsetMinutes: 0)
            ),
            (
                "1979-05-27T07:32:00.1234567891Z",
                .offsetDateTime(date(1979, 5, 27), time(7, 32, 0, 123_456_789), offsetMinutes: 0)
            ),
            ("1979-05-27T07:32:00", .localDateTime(date(1979, 5, 27), time(7, 32, 0))),
            ("1979-05-27 07:32:00", .localDateTime(date(1979, 5, 27), time(7, 32, 0))),
            ("1979-05-27T00:32:00.999999", .localDateTime(date(1979, 5, 27), time(0, 32, 0, 999_999_000))),
            ("0000-01-01T00:00:00", .localDateTime(date(0, 1, 1), time(0, 0, 0))),
            ("9999-12-31T23:59:59Z", .offsetDateTime(date(9999, 12, 31), time(23, 59, 59), offsetMinutes: 0)),
            ("1979-05-27", .localDate(date(1979, 5, 27))),
            ("07:32:00", .localTime(time(7, 32, 0))),
            ("00:32:00.999999", .localTime(time(0, 32, 0, 999_999_000))),
            ("00:00:00", .localTime(time(0, 0, 0))),
            ("23:59:59", .localTime(time(23, 59, 59))),
            ("23:59:60", .localTime(time(23, 59, 60))),
            ("1990-12-31T23:59:60Z", .offsetDateTime(date(1990, 12, 31), time(23, 59, 60), offsetMinutes: 0)),
            ("2016-12-31 23:59:60", .localDateTime(date(2016, 12, 31), time(23, 59, 60))),
        ]
        for (text, expected) in valid { Self.decodes("d = " + text, ["d": expected]) }
        // A date followed by a comment or in an array, and a date with a space then a non-time.
        Self.decodes("d = 1979-05-27 # a date", ["d": .localDate(date(1979, 5, 27))])
        Self.decodes("d = [1979-05-27, 07:32:00]", ["d": [.localDate(date(1979, 5, 27)), .localTime(time(7, 32, 0))]])
        Self.decodes(
            "d = {x = 1979-05-27 07:32:00Z}",
            ["d": ["x": .offsetDateTime(date(1979, 5, 27), time(7, 32, 0), offsetMinutes: 0)]]
        )
        let invalid: [(String, String)] = [
            ("1979-02-30", "day 30 does not exist in 1979-02"),
            ("1979-02-29", "day 29 does not exist in 1979-02"),
            ("1900-02-29", "day 29 does not exist in 1900-02"),
            ("2100-02-29T00:00:00Z", "day 29 does not exist"),
            ("1979-04-31", "day 31 does not exist"),
            ("1979-01-32", "day 32 does not exist"),
            ("1979-01-00", "day 0 does not exist"),
            ("1979-13-01", "month 13 does not exist"),
            ("1979-00-01", "month 0 does not exist"),
            ("24:00:00", "the time 24:00:00 does not exist"),
            ("1979-05-27T24:00:00", "the time 24:00:00 does not exist"),
            ("1979-05-27T23:60:00Z", "the time 23:60:00 does not exist"),
            ("23:59:61", "the time 23:59:61 does not exist"),
            ("1979-05-27T07:32:00+24:00", "the offset +24:00 does not exist"),
            ("1979-05-27T07:32:00+05:60", "the offset +05:60 does not exist"),
            ("07:32", "not a valid local time"),
            ("7:32:00", "is not a TOML value"),
            ("07:32:0", "not a valid local time"),
            ("07:32:00.", "not a valid local time"),
            ("07:32:00Z", "not a valid local time"),
            ("07:32:00+01:00", "not a valid local time"),
            ("1979-05-27T07:32", "not a valid date"),
            ("1979-05-27T07:32Z", "not a valid date"),
            ("1979-05-27T", "not a valid date"),
            ("1979-05-27T07:32:00.", "not a valid date"),
            ("1979-05-27T07:32:00.Z", "not a valid date"),
            ("1979-05-27T07:32:00+0700", "not a valid date"),
            ("1979-05-27T07:32:00+07", "not a valid date"),
            ("1979-05-27T07:32:00+7:00", "not a valid date"),
            ("1979-05-27T07:32:00 Z", "after the value"),
            ("1979-05-27T07:32:00ZZ", "not a valid date"),
            ("1979-5-27", "not a valid date"),
            ("1979-05-7", "not a valid date"),
            ("79-05-27", "is not a TOML value"),
            ("19790-05-27", "is not a TOML value"),
            ("1979/05/27", "after the value"),
            ("1979-05-27X07:32:00", "not a valid date"),
            ("1979-05-27T07:32:00.5.5", "not a valid date"),
            ("1979-05-27_07:32:00", "not a valid date"),
        ]
        for (text, message) in invalid { Self.rejects("d = " + text, line: 1, message) }
    }

    /// Every month's last day, and the day after it, in common, leap and century years (the expected lengths
    /// come from this table, not from the reader).
    @Test func calendarDaysPerMonth() {
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for (year, leap) in [
            (1900, false), (1979, false), (2000, true), (2023, false), (2024, true), (2100, false), (2400, true),
        ] {
            for month in 1...12 {
                let last = lengths[month - 1] + (month == 2 && leap ? 1 : 0)
                let m = month < 10 ? "0\(month)" : "\(month)"
                Self.decodes("d = \(year)-\(m)-\(last)", ["d": .localDate(date(year, month, last))])
                Self.decodes(
                    "d = \(year)-\(m)-01T12:00:00Z",
                    ["d": .offsetDateTime(date(year, month, 1), time(12, 0, 0), offsetMinutes: 0)]
                )
                Self.rejects("d = \(year)-\(m)-\(last + 1)", line: 1, "day \(last + 1) does not exist")
            }
        }
    }

    @Test func clockRanges() {
        for hour in 0...23 {
            let h = hour < 10 ? "0\(hour)" : "\(hour)"
            Self.decodes("t = \(h):00:00", ["t": .localTime(time(hour, 0, 0))])
        }
        for minute in [0, 1, 30, 59] {
            let m = minute < 10 ? "0\(minute)" : "\(minute)"
            Self.decodes("t = 12:\(m):59", ["t": .localTime(time(12, minute, 59))])
        }
        for bad in ["25:00:00", "99:00:00", "12:61:00", "12:99:00", "12:00:62", "12:00:99"] {
            Self.rejects("t = " + bad, line: 1, "does not exist")
        }
    }

    // MARK: Arrays

    @Test func arrays() {
        let valid: [(String, TOMLValue)] = [
            ("[]", []),
            ("[ ]", []),
            ("[\n]", []),
            ("[1, 2, 3]", [1, 2, 3]),
            ("[1,2,3,]", [1, 2, 3]),
            ("[1, 2, 3 , ]", [1, 2, 3]),
            ("[\"red\", \"yellow\", \"green\"]", ["red", "yellow", "green"]),
            ("[ [ 1, 2 ], [3, 4, 5] ]", [[1, 2], [3, 4, 5]]),
            ("[ [ 1, 2 ], [\"a\", \"b\", \"c\"] ]", [[1, 2], ["a", "b", "c"]]),
            (
                "[ \"all\", 'strings', \"\"\"are the same\"\"\", '''type''' ]",
                ["all", "strings", "are the same", "type"]
            ),
            ("[ 0.1, 0.2, 0.5, 1, 2, 5 ]", [0.1, 0.2, 0.5, 1, 2, 5]),
            (
                "[ { x = 1, y = 2, z = 3 }, { x = 7, y = 8, z = 9 }, { x = 2, y = 4, z = 8 } ]",
                [["x": 1, "y": 2, "z": 3], ["x": 7, "y": 8, "z": 9], ["x": 2, "y": 4, "z": 8]]
            ),
            ("[\n  1,\n  2, # comment\n]", [1, 2]),
            ("[ # comment after the bracket\n  1\n  # comment line\n  , 2\n]", [1, 2]),
            ("[\r\n1,\r\n2\r\n]", [1, 2]),
            ("[[],[[]],[[],[]]]", [[], [[]], [[], []]]),
            ("[true, 1, 'mixed', 1.5, 1979-05-27]", [true, 1, "mixed", 1.5, .localDate(date(1979, 5, 27))]),
            ("[{}]", [[:]]),
            ("[\"a]\", 'b,']", ["a]", "b,"]),
            ("[\n\n\n1\n\n\n]", [1]),
        ]
        for (text, expected) in valid { Self.decodes("a = " + text, ["a": expected]) }
        let invalid: [(String, Int, String)] = [
            ("a = [1 2]", 1, "expected , or ] in the array, found \"2\""),
            ("a = [1,,2]", 1, "expected a value, found \",\""),
            ("a = [,]", 1, "expected a value, found \",\""),
            ("a = [,1]", 1, "expected a value"),
            ("a = [1, 2", 1, "unterminated array"),
            ("a = [1, 2\n", 2, "unterminated array"),
            ("a = [\n1,\n2,\n", 4, "unterminated array (opened on line 1)"),
            ("a = [1, 2]]", 1, "after the value"),
            ("a = [1; 2]", 1, "expected , or ] in the array"),
            ("a = [1 # comment ]\n", 2, "unterminated array"),
            ("a = [bare]", 1, "\"bare\" is not a TOML value (strings need quotes)"),
            ("a = [1, \"x\n\"]", 1, "single-line string"),
            ("a = [1, 2] 3", 1, "after the value"),
            ("a = [\u{7}]", 1, "expected a value, found U+0007"),
            ("a = [1 # bell \u{7}\n]", 1, "control character U+0007 in a comment"),
        ]
        for (toml, line, message) in invalid { Self.rejects(toml, line: line, message) }
        // Nesting is bounded (toml-test suggests 128): deep enough for any config, not a stack overflow.
        Self.decodes(
            "a = " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
            ["a": (0..<99).reduce(TOMLValue.array([])) { v, _ in .array([v]) }]
        )
        Self.rejects("a = " + String(repeating: "[", count: 100_000), line: 1, "nested more than 128 levels")
        Self.rejects("a = " + String(repeating: "{b = ", count: 100_000), line: 1, "nested more than 128 levels")
        Self.rejects(
            "[" + Array(repeating: "a", count: 10_000).joined(separator: ".") + "]",
            line: 1,
            "nested more than 128 levels"
        )
        Self.rejects(
            Array(repeating: "a", count: 10_000).joined(separator: ".") + " = 1",
            line: 1,
            "nested more than 128 levels"
        )
    }

    // MARK: Tables

    @Test func tables() {
        let valid: [(String, TOMLTable)] = [
            ("[table]", ["table": [:]]),
            (
                "[table-1]\nkey1 = \"some string\"\nkey2 = 123\n[table-2]\nkey1 = \"another string\"\nkey2 = 456",
                ["table-1": ["key1": "some string", "key2": 123], "table-2": ["key1": "another string", "key2": 456]]
            ),
            ("[dog.\"tater.man\"]\ntype.name = \"pug\"", ["dog": ["tater.man": ["type": ["name": "pug"]]]]),
            ("[a.b.c]", ["a": ["b": ["c": [:]]]]),
            ("[ d.e.f ]", ["d": ["e": ["f": [:]]]]),
            ("[ g .  h  . i ]", ["g": ["h": ["i": [:]]]]),
            ("[ j . \"ʞ\" . 'l' ]", ["j": ["ʞ": ["l": [:]]]]),
            ("[x.y.z.w]\n[x]", ["x": ["y": ["z": ["w": [:]]]]]),
            ("[x.y.z.w]\n[x.y]\na = 1", ["x": ["y": ["a": 1, "z": ["w": [:]]]]]),
            ("[a]\n[b]\n[c]", ["a": [:], "b": [:], "c": [:]]),
            ("top = 1\n[t]\nx = 1", ["top": 1, "t": ["x": 1]]),
            (
                "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true",
                ["fruit": ["apple": ["color": "red", "taste": ["sweet": true], "texture": ["smooth": true]]]]
            ),
            ("[a.b]\nc = 1\n[a]\nd = 2", ["a": ["b": ["c": 1], "d": 2]]),
            ("[a]\nb.c = 1\nb.d = 2", ["a": ["b": ["c": 1, "d": 2]]]),
            ("[\"\"]\nx = 1", ["": ["x": 1]]),
            ("[a]\n[a.b]\n[a.b.c]\n[a.d]", ["a": ["b": ["c": [:]], "d": [:]]]),
            ("[\"a.b\"]\nx = 1\n[a.b]\nx = 2", ["a.b": ["x": 1], "a": ["b": ["x": 2]]]),
            ("[ a ]\n[ 'b' ]\n[ \"c\" ]", ["a": [:], "b": [:], "c": [:]]),
            ("[t]\n\n\n# comment\n\nx = 1\n\n[u]", ["t": ["x": 1], "u": [:]]),
        ]
        for (toml, expected) in valid { Self.decodes(toml, expected) }
        let invalid: [(String, Int, String)] = [
            // The issue: a table defined twice.
            ("[t]\nx = 1\n[t]\n", 3, "the table [t] is defined twice"),
            ("[t]\n[t]", 2, "the table [t] is defined twice"),
            ("[a.b]\n[a]\n[a]", 3, "the table [a] is defined twice"),
            ("[a]\n[a.b]\n[a.b]", 3, "the table [a.b] is defined twice"),
            ("[a]\n[ a ]", 2, "the table [a] is defined twice"),
            ("[a]\n[\"a\"]", 2, "the table [a] is defined twice"),
            (
                "[fruit]\napple.color = \"red\"\n[fruit.apple]", 3,
                "the table [fruit.apple] was already defined by dotted keys"
            ),
            ("[fruit]\napple.taste.sweet = true\n[fruit.apple.taste]", 3, "was already defined by dotted keys"),
            ("a.b = 1\n[a]", 2, "the table [a] was already defined by dotted keys"),
            ("[a]\nb = 1\n[a.b]", 3, "[a.b] redefines a.b, which is already a value"),
            ("a = 1\n[a]", 2, "[a] redefines a, which is already a value"),
            ("a = 1\n[a.b]", 2, "a is already a value, so [a.b] cannot add to it"),
            ("[a.b]\nc = 1\n[a]\nb.d = 2", 4, "a.b is a table defined elsewhere; the dotted key b.d cannot add to it"),
            ("[a.b.c]\n[a]\nb.x = 1", 3, "the dotted key b.x cannot add to it"),
            ("[]", 1, "expected a key, found \"]\""),
            ("[a.]", 1, "expected a key"),
            ("[.a]", 1, "expected a key"),
            ("[a..b]", 1, "expected a key"),
            ("[a", 1, "expected ] to close the table header [a"),
            ("[a\n]", 1, "expected ] to close the table header [a, found a new line"),
            ("[a b]", 1, "expected ] to close the table header [a, found \"b\""),
            ("[a] b = 1", 1, "unexpected \"b\"; expected a new line"),
            ("[a]]", 1, "unexpected \"]\"; expected a new line"),
            ("[[a]", 1, "expected ]] to close [[a"),
            ("[a]x", 1, "unexpected \"x\""),
            ("[ [a]]", 1, "expected a key, found \"[\""),
            ("[[a] ]", 1, "expected ]] to close [[a"),
            ("[\"\"\"a\"\"\"]", 1, "a key cannot be a multi-line string"),
            ("[a=b]", 1, "expected ] to close the table header [a, found \"=\""),
            ("[a]\nb = 1\n[a]\nc = 2", 3, "the table [a] is defined twice"),
        ]
        for (toml, line, message) in invalid { Self.rejects(toml, line: line, message) }
    }

    // MARK: Inline tables

    @Test func inlineTables() {
        let valid: [(String, TOMLTable)] = [
            (
                "name = { first = \"Tom\", last = \"Preston-Werner\" }",
                ["name": ["first": "Tom", "last": "Preston-Werner"]]
            ),
            ("point = { x = 1, y = 2 }", ["point": ["x": 1, "y": 2]]),
            ("animal = { type.name = \"pug\" }", ["animal": ["type": ["name": "pug"]]]),
            ("e = {}", ["e": [:]]),
            ("e = { }", ["e": [:]]),
            ("a = {b = {c = {d = 1}}}", ["a": ["b": ["c": ["d": 1]]]]),
            ("a = { b.c = 1, b.d = 2 }", ["a": ["b": ["c": 1, "d": 2]]]),
            ("a = {x=1,y=2}", ["a": ["x": 1, "y": 2]]),
            ("a = { arr = [1, 2], s = 'x' }", ["a": ["arr": [1, 2], "s": "x"]]),
            ("a = { arr = [\n1,\n2\n] }", ["a": ["arr": [1, 2]]]),
            ("[t]\na = { b = 1 }", ["t": ["a": ["b": 1]]]),
            ("a.b = { c = 1 }", ["a": ["b": ["c": 1]]]),
            ("a = { \"quoted key\" = 1, 'lit' = 2 }", ["a": ["quoted key": 1, "lit": 2]]),
            ("a = { b = {}, c = [] }", ["a": ["b": [:], "c": []]]),
        ]
        for (toml, expected) in valid { Self.decodes(toml, expected) }
        let invalid: [(String, Int, String)] = [
            // The issue: an inline table extended later.
            (
                "[product]\ntype = { name = \"Nail\" }\ntype.edible = false", 3,
                "product.type is a value; the dotted key type.edible cannot add to it"
            ),
            ("[product]\ntype.name = \"Nail\"\ntype = { edible = false }", 3, "the key product.type is defined twice"),
            ("a = { b = 1 }\n[a]", 2, "[a] redefines a, which is already a value"),
            ("a = { b = 1 }\n[a.c]", 2, "a is already a value, so [a.c] cannot add to it"),
            ("a = { b = 1 }\n[[a]]", 2, "[[a]] cannot append to a"),
            ("a = { b = 1 }\na.c = 2", 2, "a is a value; the dotted key a.c cannot add to it"),
            ("a = { b = { c = 1 } }\n[a.b]", 2, "a is already a value"),
            ("a = { b = 1, b = 2 }", 1, "the key a.b is defined twice"),
            ("a = { b = {}, b.c = 1 }", 1, "a.b is a value; the dotted key b.c cannot add to it"),
            ("a = { b.c = 1, b = 2 }", 1, "the key a.b is defined twice"),
            ("a = { b = 1, }", 1, "expected a key, found \"}\""),
            ("a = { , }", 1, "expected a key, found \",\""),
            ("a = { b = 1 c = 2 }", 1, "expected , or } in the inline table, found \"c\""),
            ("a = { b = 1,\n c = 2 }", 1, "an inline table must fit on one line"),
            ("a = {\n}", 1, "an inline table must fit on one line"),
            ("a = { b = 1\n}", 1, "an inline table must fit on one line"),
            ("a = { b = 1 # comment\n}", 1, "expected , or } in the inline table, found \"#\""),
            ("a = { b }", 1, "expected = after the key b"),
            ("a = { b = 1", 1, "expected , or } in the inline table, found the end of the file"),
            ("a = { b = }", 1, "expected a value"),
            ("a = {}}", 1, "after the value"),
        ]
        for (toml, line, message) in invalid { Self.rejects(toml, line: line, message) }
    }

    // MARK: Arrays of tables

    @Test func arraysOfTables() {
        let valid: [(String, TOMLTable)] = [
            (
                "[[products]]\nname = \"Hammer\"\nsku = 738594937\n\n[[products]]\n\n[[products]]\nname = "
                    + "\"Nail\"\nsku = 284758393\ncolor = \"gray\"",
                [
                    "products": [
                        ["name": "Hammer", "sku": 738_594_937], [:],
                        ["name": "Nail", "sku": 284_758_393, "color": "gray"],
                    ]
                ]
            ),
            (
                "[[fruits]]\nname = \"apple\"\n[fruits.physical]\ncolor = \"red\"\nshape = "
                    + "\"round\"\n[[fruits.varieties]]\nname = \"red delicious\"\n[[fruits.varieties]]\nname = "
                    + "\"granny smith\"\n[[fruits]]\nname = \"banana\"\n[[fruits.varieties]]\nname = \"plantain\"",
                [
                    "fruits": [
                        [
                            "name": "apple", "physical": ["color": "red", "shape": "round"],
                            "varieties": [["name": "red delicious"], ["name": "granny smith"]],
                        ],
                        ["name": "banana", "varieties": [["name": "plantain"]]],
                    ]
                ]
            ),
            ("[[a]]\n[[a]]", ["a": [[:], [:]]]),
            ("[[a]]\nx = 1\n[[a]]\nx = 2", ["a": [["x": 1], ["x": 2]]]),
            ("[[a]]\n[a.b]\nx = 1\n[[a]]\n[a.b]\nx = 2", ["a": [["b": ["x": 1]], ["b": ["x": 2]]]]),
            ("[[a.b]]\nx = 1", ["a": ["b": [["x": 1]]]]),
            ("[a]\n[[a.b]]\n[[a.b]]", ["a": ["b": [[:], [:]]]]),
            ("[[a]]\nb.c = 1\n[[a]]\nb.c = 2", ["a": [["b": ["c": 1]], ["b": ["c": 2]]]]),
            ("[[ a ]]\n[[ 'a' ]]", ["a": [[:], [:]]]),
            ("[[a]]\n[a.b.c]\n[[a]]\n[a.b.c]", ["a": [["b": ["c": [:]]], ["b": ["c": [:]]]]]),
            ("a = [{ b = 1 }]", ["a": [["b": 1]]]),
        ]
        for (toml, expected) in valid { Self.decodes(toml, expected) }
        let invalid: [(String, Int, String)] = [
            // The issue: an array of tables after a static array.
            (
                "fruits = []\n[[fruits]]", 2,
                "[[fruits]] cannot append to fruits, which is a value (a static array is closed)"
            ),
            ("fruits = [{ name = \"apple\" }]\n[[fruits]]\nname = \"banana\"", 2, "a static array is closed"),
            ("a = [1]\n[a]", 2, "[a] redefines a, which is already a value"),
            ("a = [{}]\n[a.b]", 2, "a is already a value, so [a.b] cannot add to it"),
            (
                "[[fruits]]\nname = \"apple\"\n[[fruits.varieties]]\nname = \"red "
                    + "delicious\"\n[fruits.varieties]\nname = \"granny smith\"",
                5,
                "[fruits.varieties] redefines the array of tables [[fruits.varieties]]"
            ),
            ("[fruit.physical]\ncolor = \"red\"\n[[fruit]]", 3, "[[fruit]] redefines the table [fruit]"),
            ("[a]\n[[a]]", 2, "[[a]] redefines the table [a]"),
            ("[[a]]\n[a]", 2, "[a] redefines the array of tables [[a]]"),
            ("[[a]]\nb = 1\nb = 2", 3, "the key a.b is defined twice"),
            ("[[a]]\n[a.b]\n[a.b]", 3, "the table [a.b] is defined twice"),
            ("[[a]]\nb = 1\n[[a.b]]", 3, "[[a.b]] cannot append to a.b"),
            ("[[a]]\nb.c = 1\n[a.b]", 3, "was already defined by dotted keys"),
            ("[[a]]\nx.y = 1\n[[a.x]]", 3, "[[a.x]] redefines the table [a.x]"),
            ("[tab]\n[[tab.arr]]\n[tab]\narr.val1 = 1", 3, "the table [tab] is defined twice"),
            ("[[a]]\n[[a]]\n[[a]\n", 3, "expected ]] to close [[a"),
            ("[[]]", 1, "expected a key, found \"]\""),
        ]
        for (toml, line, message) in invalid { Self.rejects(toml, line: line, message) }
    }

    // MARK: Whole documents, key paths and spans

    @Test func theSpecExampleDecodes() throws {
        let toml = """
            # This is a TOML document

            title = "TOML Example"

            [owner]
            name = "Tom Preston-Werner"
            dob = 1979-05-27T07:32:00-08:00

            [database]
            enabled = true
            ports = [ 8000, 8001, 8002 ]
            data = [ ["delta", "phi"], [3.14] ]
            temp_targets = { cpu = 79.5, case = 72.0 }

            [servers]

            [servers.alpha]
            ip = "10.0.0.1"
            role = "frontend"

            [servers.beta]
            ip = "10.0.0.2"
            role = "backend"
            """
        let expected: TOMLTable = [
            "title": "TOML Example",
            "owner": [
                "name": "Tom Preston-Werner",
                "dob": .offsetDateTime(date(1979, 5, 27), time(7, 32, 0), offsetMinutes: -480),
            ],
            "database": [
                "enabled": true, "ports": [8000, 8001, 8002], "data": [["delta", "phi"], [3.14]],
                "temp_targets": ["cpu": 79.5, "case": 72.0],
            ],
            "servers": [
                "alpha": ["ip": "10.0.0.1", "role": "frontend"], "beta": ["ip": "10.0.0.2", "role": "backend"],
            ],
        ]
        Self.decodes(toml, expected)
        let document = try TOMLDocument.decode(toml)
        #expect(document.root.keys == ["title", "owner", "database", "servers"])
        #expect(
            document.keyPaths == [
                "title", "owner", "owner.name", "owner.dob", "database", "database.enabled", "database.ports",
                "database.data",
                "database.temp_targets", "database.temp_targets.cpu", "database.temp_targets.case", "servers",
                "servers.alpha",
                "servers.alpha.ip", "servers.alpha.role", "servers.beta", "servers.beta.ip", "servers.beta.role",
            ]
        )
    }

    @Test func spansCoverEachValueText() throws {
        let toml =
            "a = \"x\" # c\n[t]\nb = [1,\n 2]\nc = { d = 'y', e.f = 1979-05-27 07:32:00Z }\n[[r]]\ng = "
            + "\"\"\"m\nl\"\"\"\n"
        let document = try TOMLDocument.decode(toml)
        let bytes = Array(toml.utf8)
        let texts = document.spans.map { ($0.path, String(decoding: bytes[$0.range], as: UTF8.self)) }
        #expect(texts.map(\.0) == ["a", "t.b", "t.c.d", "t.c.e.f", "r.g"])
        #expect(texts.map(\.1) == ["\"x\"", "[1,\n 2]", "'y'", "1979-05-27 07:32:00Z", "\"\"\"m\nl\"\"\""])
    }

    /// The messages named in the issue: one line, the BOM and control characters escaped.
    @Test func messagesAreOneLine() {
        for toml in [
            "\u{FEFF}\u{FEFF}a = 1", "a = 1\n\u{FEFF}", "k = \"\u{1B}\"", "\"\u{FEFF}\" = 1\n\"\u{FEFF}\" = 2",
            "a = [\n1\n2]",
        ] {
            Self.rejects(toml)
        }
    }

    /// Every prefix of a document full of edge cases, and every byte of it replaced by a delimiter, a control
    /// byte or a stray UTF-8 byte, is decoded or rejected with a one-line message: never a crash, never a hang.
    @Test func truncatedAndCorruptedDocumentsNeverCrash() {
        let text = """
            \u{FEFF}# edge cases
            a."b c".'d' = "e\\u00e9\\U0001F600\\n" # comment
            f = \"\"\"
            g \\
              h\"\"\"\"\"
            i = '''j''''
            k = [1, 0x1F, 0o7, 0b1, -0.0e+1_0, inf, nan, 1979-05-27T07:32:00.999-07:00, 1979-05-27 07:32:00, \
            07:32:00, [], [{}],]
            l = { m.n = true, o = { p = 2024-02-29 } }
            [q.r]
            [[s]]
            t.u = 9223372036854775807
            [[s]]
            [s.v]\r
            w = 23:59:60\r\n
            """
        let bytes = Array(text.utf8)
        #expect((try? TOMLDocument.decode(bytes)) != nil, "the uncorrupted document is valid")
        var outcomes = 0
        func run(_ input: [UInt8]) {
            do {
                _ = try TOMLDocument.decode(input)
            } catch {
                #expect(!error.description.contains("\n") && error.line >= 1 && error.line <= 20, "\(error)")
            }
            outcomes += 1
        }
        for n in 0...bytes.count { run(Array(bytes[..<n])) }
        let replacements: [UInt8] = [
            0x22, 0x27, 0x5B, 0x5D, 0x7B, 0x7D, 0x3D, 0x0A, 0x0D, 0x5C, 0x2E, 0x23, 0x2C, 0x00, 0xFF, 0xC3, 0x20,
        ]
        for k in bytes.indices {
            for r in replacements where r != bytes[k] {
                var copy = bytes
                copy[k] = r
                run(copy)
            }
        }
        #expect(outcomes > bytes.count * 10)
    }

    @Test func longKeysAndTokensAreCutInMessages() {
        let long = String(repeating: "k", count: 100_000)
        for toml in ["\(long) = 1\n\(long) = 2", "a = \(long)"] {
            do {
                _ = try TOMLDocument.decode(toml)
                Issue.record("accepted")
            } catch {
                #expect(error.message.count < 400 && error.message.hasSuffix("…"), "\(error.message.count)")
            }
        }
    }

    @Test func configChecksReadTOMLFilesAsBytes() {
        let check = ConfigParser.check(bytes: Array("a = 1\nb = '".utf8) + [0xFF] + Array("'\n".utf8), as: .toml)
        #expect(check.error?.hasPrefix("line 2: the file is not valid UTF-8") == true, "\(check)")
        #expect(ConfigParser.check(bytes: Array("a = 1\n".utf8), as: .toml).valid)
    }
}
