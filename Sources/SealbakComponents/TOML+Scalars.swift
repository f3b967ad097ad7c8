/// Bare TOML 1.0 values: booleans, integers (decimal, `0x`, `0o`, `0b`; 64-bit signed), floats, offset and local
/// date-times, local dates and local times (RFC 3339, seconds required, calendar-checked).
enum TOMLScalars {
    struct Problem: Error { var message: String }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// `dddd-dd-dd`, shape only.
    static func isDate(_ t: ArraySlice<UInt8>) -> Bool {
        guard t.count == 10 else { return false }
        let s = t.startIndex
        return (0..<10).allSatisfy { k in k == 4 || k == 7 ? t[s + k] == UInt8(ascii: "-") : isDigit(t[s + k]) }
    }

    static func classify(_ t: ArraySlice<UInt8>) throws(Problem) -> TOMLValue {
        let text = String(decoding: t, as: UTF8.self)
        func notAValue() -> Problem {
            let hint =
                t.allSatisfy { TOMLParser.isBareKey($0) } && t.contains { !isDigit($0) } ? " (strings need quotes)" : ""
            return Problem(message: "\"\(text)\" is not a TOML value\(hint)")
        }
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan": return .float(.nan)
        case "-nan": return .float(-Double.nan)
        default: break
        }
        let u = Array(t)
        // Dates and times start with four digits and "-", or two digits and ":".
        if u.count >= 5, u[..<4].allSatisfy(isDigit), u[4] == UInt8(ascii: "-") { return try dateTime(u, text) }
        if u.count >= 3, u[..<2].allSatisfy(isDigit), u[2] == UInt8(ascii: ":") {
            guard let (time, end) = try self.time(u, 0, text), end == u.count else {
                throw Problem(message: "\"\(text)\" is not a valid local time (HH:MM:SS[.fraction])")
            }
            return .localTime(time)
        }
        if u.count > 2, u[0] == UInt8(ascii: "0"),
            let radix = [UInt8(ascii: "x"): 16, UInt8(ascii: "o"): 8, UInt8(ascii: "b"): 2][u[1]]
        {
            let digits = u[2...]
            guard
                let stripped = digitsWithUnderscores(
                    digits,
                    { TOMLParser.hexDigit($0).map { Int($0) < radix } ?? false }
                )
            else {
                throw notAValue()
            }
            guard let n = Int64(stripped, radix: radix) else {
                throw Problem(message: "the integer \(text) does not fit in 64 bits")
            }
            return .integer(n)
        }
        // Decimal integer or float: [+-] int-part [. digits] [e [+-] digits].
        var body = u[...]
        if let f = body.first, f == UInt8(ascii: "+") || f == UInt8(ascii: "-") { body = body.dropFirst() }
        var mantissa = body
        var exponent: ArraySlice<UInt8>?
        if let e = body.firstIndex(where: { $0 | 0x20 == UInt8(ascii: "e") }) {
            mantissa = body[..<e]
            var x = body[(e + 1)...]
            if let f = x.first, f == UInt8(ascii: "+") || f == UInt8(ascii: "-") { x = x.dropFirst() }
            exponent = x
        }
        var intPart = mantissa
        var fraction: ArraySlice<UInt8>?
        if let dot = mantissa.firstIndex(of: UInt8(ascii: ".")) {
            intPart = mantissa[..<dot]
            fraction = mantissa[(dot + 1)...]
        }
        guard let intDigits = digitsWithUnderscores(intPart, isDigit) else { throw notAValue() }
        if intPart.first == UInt8(ascii: "0") && intPart.count > 1 {
            throw Problem(message: "\"\(text)\" is not a TOML value (leading zeros are not allowed)")
        }
        if let fraction, digitsWithUnderscores(fraction, isDigit) == nil { throw notAValue() }
        if let exponent, digitsWithUnderscores(exponent, isDigit) == nil { throw notAValue() }
        if fraction == nil && exponent == nil {
            let sign = u.first == UInt8(ascii: "-") ? "-" : ""
            guard let n = Int64(sign + intDigits) else {
                throw Problem(message: "the integer \(text) does not fit in 64 bits")
            }
            return .integer(n)
        }
        let plain = String(decoding: u.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        guard let d = Double(plain) else { throw notAValue() }
        return .float(d)
    }

    /// Digits (as `ok` says) with single underscores between them; the digits without underscores, or nil.
    static func digitsWithUnderscores(_ x: ArraySlice<UInt8>, _ ok: (UInt8) -> Bool) -> String? {
        guard let f = x.first, let l = x.last, ok(f), ok(l) else { return nil }
        var previousUnderscore = false
        var out = ""
        for c in x {
            if c == UInt8(ascii: "_") {
                if previousUnderscore { return nil }
                previousUnderscore = true
                continue
            }
            if !ok(c) { return nil }
            previousUnderscore = false
            out.unicodeScalars.append(Unicode.Scalar(c))
        }
        return out
    }

    static func number(_ u: [UInt8], _ at: Int, _ count: Int) -> Int? {
        guard at + count <= u.count, u[at..<at + count].allSatisfy(isDigit) else { return nil }
        return u[at..<at + count].reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    static func dateTime(_ u: [UInt8], _ text: String) throws(Problem) -> TOMLValue {
        let shape = Problem(
            message: "\"\(text)\" is not a valid date or date-time (YYYY-MM-DD[THH:MM:SS[.fraction][Z|±HH:MM]])"
        )
        guard u.count >= 10, let year = number(u, 0, 4), u[4] == UInt8(ascii: "-"), let month = number(u, 5, 2),
            u[7] == UInt8(ascii: "-"), let day = number(u, 8, 2)
        else { throw shape }
        guard (1...12).contains(month) else { throw Problem(message: "\(text): month \(month) does not exist") }
        guard (1...TOMLDate.days(inMonth: month, year: year)).contains(day) else {
            throw Problem(message: "\(text): day \(day) does not exist in \(String(text.prefix(7)))")
        }
        let date = TOMLDate(year: year, month: month, day: day)
        if u.count == 10 { return .localDate(date) }
        guard u.count > 11, [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(u[10]),
            let (time, end) = try self.time(u, 11, text)
        else { throw shape }
        if end == u.count { return .localDateTime(date, time) }
        if end + 1 == u.count, u[end] | 0x20 == UInt8(ascii: "z") {
            return .offsetDateTime(date, time, offsetMinutes: 0)
        }
        guard end + 6 == u.count, u[end] == UInt8(ascii: "+") || u[end] == UInt8(ascii: "-"),
            let h = number(u, end + 1, 2),
            u[end + 3] == UInt8(ascii: ":"), let m = number(u, end + 4, 2)
        else { throw shape }
        guard h <= 23, m <= 59 else {
            throw Problem(message: "\(text): the offset \(String(text.suffix(6))) does not exist")
        }
        let minutes = h * 60 + m
        return .offsetDateTime(date, time, offsetMinutes: u[end] == UInt8(ascii: "-") ? -minutes : minutes)
    }

    /// `HH:MM:SS[.fraction]` at `at`: the time and where it ends, nil when the shape is wrong.
    static func time(_ u: [UInt8], _ at: Int, _ text: String) throws(Problem) -> (TOMLTime, Int)? {
        guard let h = number(u, at, 2), at + 2 < u.count, u[at + 2] == UInt8(ascii: ":"), let m = number(u, at + 3, 2),
            at + 5 < u.count, u[at + 5] == UInt8(ascii: ":"), let s = number(u, at + 6, 2)
        else { return nil }
        guard h <= 23, m <= 59, s <= 60 else {
            throw Problem(message: "\(text): the time \(pad2(h)):\(pad2(m)):\(pad2(s)) does not exist")
        }
        var end = at + 8
        var nanos = 0
        if end < u.count, u[end] == UInt8(ascii: ".") {
            end += 1
            let first = end
            var scale = 100_000_000
            while end < u.count, isDigit(u[end]) {
                nanos += Int(u[end] - 0x30) * scale
                scale /= 10
                end += 1
            }
            guard end > first else { return nil }
        }
        return (TOMLTime(hour: h, minute: m, second: s, nanosecond: nanos), end)
    }

    static func pad2(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
