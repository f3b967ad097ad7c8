import Foundation

/// Which archives a retention policy keeps (`sealbak prune`), with the reasons. The rules are those users know
/// from restic and borg: the N newest; the newest of each of the last N days, ISO weeks, months and years
/// that have an archive; everything within a duration of the newest archive (restic's `--keep-within`). An archive
/// is kept if any rule keeps it, and the newest archive is always kept.
package struct RetentionPolicy: Sendable, Equatable {
    /// `--keep-within`: keep every archive younger than this, measured from the newest archive's time (restic's
    /// rule: a backup job that stopped working must not make its last archives expire).
    package var within: RetentionDuration?
    package var last = 0
    package var daily = 0
    package var weekly = 0
    package var monthly = 0
    package var yearly = 0

    package init(last: Int = 0, daily: Int = 0, weekly: Int = 0, monthly: Int = 0, yearly: Int = 0) {
        self.last = last
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly
        self.yearly = yearly
    }

    package var isEmpty: Bool { last + daily + weekly + monthly + yearly == 0 && within == nil }

    package struct Candidate: Sendable, Equatable {
        package var name: String
        /// Seconds since 1970 (UTC).
        package var time: Int64

        package init(name: String, time: Int64) {
            self.name = name
            self.time = time
        }
    }

    package struct Decision: Sendable, Equatable {
        package var candidate: Candidate
        /// Empty: delete.
        package var reasons: [String]
        package var keep: Bool { !reasons.isEmpty }
    }

    /// Decisions newest first. `protect` names archives kept whatever the rules say (name → reason), e.g. the
    /// newest successful run's archive; the newest archive is always kept.
    ///
    /// `bases` maps an incremental archive to the archive it builds on (Spec §14): every archive a kept one needs,
    /// down to its chain's root, is kept too, so that no kept archive loses what it refers to.
    package func apply(
        _ candidates: [Candidate],
        protect: [String: String] = [:],
        bases: [String: String] = [:]
    ) -> [Decision] {
        let sorted = candidates.sorted { $0.time != $1.time ? $0.time > $1.time : $0.name > $1.name }
        var decisions = sorted.map { Decision(candidate: $0, reasons: []) }
        for i in decisions.indices where i < last { decisions[i].reasons.append("last \(last)") }
        if let within, let newest = decisions.first?.candidate.time {
            let limit = within.before(newest)
            for i in decisions.indices where decisions[i].candidate.time > limit {
                decisions[i].reasons.append("within \(within.text) of the newest")
            }
        }
        let rules: [(Int, String, (Int64) -> String)] = [
            (daily, "daily", RetentionPolicy.dayKey), (weekly, "weekly", RetentionPolicy.weekKey),
            (monthly, "monthly", RetentionPolicy.monthKey), (yearly, "yearly", RetentionPolicy.yearKey),
        ]
        for (count, label, key) in rules where count > 0 {
            var seen: Set<String> = []
            for i in decisions.indices {
                let k = key(decisions[i].candidate.time)
                if seen.contains(k) { continue }
                if seen.count == count { break }
                seen.insert(k)
                decisions[i].reasons.append("\(label) \(k)")
            }
        }
        for i in decisions.indices {
            if let why = protect[decisions[i].candidate.name] { decisions[i].reasons.append(why) }
        }
        if !decisions.isEmpty && decisions[0].reasons.isEmpty { decisions[0].reasons.append("the newest archive") }
        let position = Dictionary(
            decisions.indices.map { (decisions[$0].candidate.name, $0) },
            uniquingKeysWith: { a, _ in a }
        )
        for i in decisions.indices where decisions[i].keep {
            var current = decisions[i].candidate.name
            var steps = 0
            while let base = bases[current], let j = position[base], steps < 1100 {
                let why = "base of \((decisions[i].candidate.name as NSString).lastPathComponent)"
                if !decisions[j].reasons.contains(why) { decisions[j].reasons.append(why) }
                current = base
                steps += 1
            }
        }
        return decisions
    }

    static func utc(_ t: Int64) -> DateComponents {
        var cal = Calendar(identifier: .iso8601)
        cal.timeZone = TimeZone(identifier: "UTC")!
        return cal.dateComponents(
            [.year, .month, .day, .yearForWeekOfYear, .weekOfYear],
            from: Date(timeIntervalSince1970: TimeInterval(t))
        )
    }

    static func dayKey(_ t: Int64) -> String {
        let c = utc(t)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }
    static func weekKey(_ t: Int64) -> String {
        let c = utc(t)
        return String(format: "%04d-W%02d", c.yearForWeekOfYear!, c.weekOfYear!)
    }
    static func monthKey(_ t: Int64) -> String {
        let c = utc(t)
        return String(format: "%04d-%02d", c.year!, c.month!)
    }
    static func yearKey(_ t: Int64) -> String {
        let c = utc(t)
        return String(format: "%04d", c.year!)
    }

    /// The timestamp in an archive's name: the last `YYYY-MM-DD` or `YYYYMMDD`, optionally followed by `T`, `_`
    /// or `-` and `HH[:]MM[[:]SS]`, read as UTC (what `sealbak pack NAME-{now}.sbk` writes). nil when none.
    package static func timestamp(inName name: String) -> Int64? {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        let pattern = #"(\d{4})-?(\d{2})-?(\d{2})(?:[T_-]?(\d{2}):?(\d{2})(?::?(\d{2}))?)?"#
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
        let ns = base as NSString
        let matches = regex.matches(in: base, range: NSRange(location: 0, length: ns.length))
        for m in matches.reversed() {
            func group(_ i: Int) -> Int? {
                let r = m.range(at: i)
                return r.location == NSNotFound ? nil : Int(ns.substring(with: r))
            }
            guard let y = group(1), let mo = group(2), let d = group(3), (1970...9999).contains(y),
                (1...12).contains(mo), (1...31).contains(d)
            else { continue }
            let h = group(4) ?? 0
            let mi = group(5) ?? 0
            let s = group(6) ?? 0
            guard h < 24, mi < 60, s < 61 else { continue }
            var c = DateComponents()
            (c.year, c.month, c.day, c.hour, c.minute, c.second) = (y, mo, d, h, mi, s)
            var cal = Calendar(identifier: .gregorian)
            cal.timeZone = TimeZone(identifier: "UTC")!
            guard let date = cal.date(from: c), cal.component(.day, from: date) == d else { continue }
            return Int64(date.timeIntervalSince1970)
        }
        return nil
    }

    /// `{now}` in an archive name becomes the current UTC time to the millisecond, `YYYY-MM-DDTHHMMSS.mmmZ`, so
    /// that two runs in the same second get two names (`timestamp(inName:)` reads it, milliseconds included in
    /// the ordering through the name).
    package static func expandName(_ name: String, now: Date = Date()) -> String {
        guard name.contains("{now}") else { return name }
        return name.replacingOccurrences(of: "{now}", with: stamp(now))
    }

    /// `YYYY-MM-DDTHHMMSS.mmmZ` (UTC).
    package static func stamp(_ now: Date) -> String {
        let ms = Int64((now.timeIntervalSince1970 * 1000).rounded(.down))
        var t = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(
            format: "%04d-%02d-%02dT%02d%02d%02d.%03dZ",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
            Int(ms % 1000)
        )
    }
}

/// A duration as restic writes it for `--keep-within`, with unambiguous units: `7d`, `1y6mo`, `36h`, `2w`,
/// `90min`, `30s`. A bare `m` is refused (restic reads it as months, most people as minutes).
package struct RetentionDuration: Sendable, Equatable {
    package var years = 0, months = 0
    /// Days, hours, minutes and seconds together.
    package var seconds: Int64 = 0
    package var text: String

    package init?(_ text: String) {
        self.text = text
        let s = text.lowercased()
        var i = s.startIndex
        var any = false
        while i < s.endIndex {
            let digits = s[i...].prefix(while: \.isNumber)
            guard !digits.isEmpty, let n = Int(digits), n >= 0, n < 1_000_000 else { return nil }
            i = digits.endIndex
            let unit = s[i...].prefix(while: \.isLetter)
            i = unit.endIndex
            switch unit {
            case "y": years += n
            case "mo": months += n
            case "w": seconds += Int64(n) * 7 * 86_400
            case "d": seconds += Int64(n) * 86_400
            case "h": seconds += Int64(n) * 3_600
            case "min": seconds += Int64(n) * 60
            case "s": seconds += Int64(n)
            default: return nil
            }
            any = true
        }
        guard any else { return nil }
    }

    /// What a bad duration gets told.
    package static let help =
        "a duration such as 7d, 36h, 2w, 6mo, 1y6mo, 90min or 30s (m alone is refused: write mo for months, min for "
        + "minutes)"

    /// The time `self` before `t` (months and years by the UTC calendar).
    package func before(_ t: Int64) -> Int64 {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        var date = Date(timeIntervalSince1970: TimeInterval(t))
        if years != 0 || months != 0 {
            date = cal.date(byAdding: DateComponents(year: -years, month: -months), to: date) ?? date
        }
        return Int64(date.timeIntervalSince1970) - seconds
    }

    /// Seconds, months counted as 30 days and years as 365 (for thresholds, not for retention).
    package var approximateSeconds: Double {
        Double(seconds) + Double(months) * 30 * 86_400 + Double(years) * 365 * 86_400
    }
}
