import Foundation
import SealbakComponents
import SealbakIO
import SealbakS3
import SealbakTestSupport
import Testing

/// The operations building blocks on their own: durations, retention decisions, plan blocks, the history file
/// (torn lines), the health rules and the Prometheus text.
@Suite struct OperationsUnitTests {
    static let day: Int64 = 86_400
    static let t0: Int64 = 1_795_226_400  // 2026-11-21T02:00:00Z

    @Test func durationsUseUnambiguousUnits() {
        #expect(RetentionDuration("7d")?.seconds == 7 * Self.day)
        #expect(RetentionDuration("1d12h")?.seconds == Self.day + 12 * 3600)
        #expect(RetentionDuration("90min")?.seconds == 5400 && RetentionDuration("2w")?.seconds == 14 * Self.day)
        #expect(RetentionDuration("1y6mo").map { ($0.years, $0.months) } ?? (0, 0) == (1, 6))
        for bad in ["6m", "7", "d", "", "7days", "-1d", "1.5d"] { #expect(RetentionDuration(bad) == nil, "\(bad)") }
        // Months by the calendar: 1mo before 2026-03-31 is 2026-02-28 (Foundation clamps), not 30 days.
        let march31: Int64 = 1_774_915_200  // 2026-03-31T00:00:00Z
        #expect(RetentionDuration("1mo")!.before(march31) == march31 - 31 * Self.day)
    }

    @Test func keepWithinCountsFromTheNewestArchiveAndTheNewestIsAlwaysKept() {
        let c = [0, 1, 2, 3, 10].map {
            RetentionPolicy.Candidate(name: "a\($0)", time: Self.t0 - Int64($0) * Self.day + 60)
        }
        var p = RetentionPolicy()
        p.within = RetentionDuration("2d")
        let kept = p.apply(c).filter(\.keep).map(\.candidate.name)
        #expect(
            kept == ["a0", "a1"],
            "within 2d of the newest (a0): a1 (1 day older); a2 is exactly 2 days older: \(kept)"
        )
        // Ten days without a backup do not make the last ones expire (restic's rule).
        let old = c.map { RetentionPolicy.Candidate(name: $0.name, time: $0.time - 10 * Self.day) }
        #expect(p.apply(old).filter(\.keep).map(\.candidate.name) == ["a0", "a1"])
        // A rule that keeps nothing still keeps the newest; `protect` keeps what the caller names.
        p.within = RetentionDuration("1min")
        let d = p.apply(c, protect: ["a3": "the newest successful run's archive"])
        #expect(d.filter(\.keep).map(\.candidate.name) == ["a0", "a3"])
        #expect(
            d.first?.reasons == ["within 1min of the newest"]
                && d.first { $0.candidate.name == "a3" }?.reasons == ["the newest successful run's archive"]
        )
        // keep-daily keeps the newest of each day: the manual backup of the same day goes (what keep-within fixes).
        let sameDay = [
            RetentionPolicy.Candidate(name: "manual", time: Self.t0 - 300),
            RetentionPolicy.Candidate(name: "nightly", time: Self.t0),
        ]
        #expect(RetentionPolicy(daily: 7).apply(sameDay).filter(\.keep).map(\.candidate.name) == ["nightly"])
        var within = RetentionPolicy()
        within.within = RetentionDuration("1d")
        #expect(within.apply(sameDay).filter(\.keep).map(\.candidate.name) == ["nightly", "manual"])
    }

    @Test func nowHasMillisecondsAndStillReadsAsATimestamp() {
        let a = RetentionPolicy.expandName("app-{now}.sbk", now: Date(timeIntervalSince1970: 1_795_226_400.1234))
        let b = RetentionPolicy.expandName("app-{now}.sbk", now: Date(timeIntervalSince1970: 1_795_226_400.9))
        #expect(a == "app-2026-11-21T020000.123Z.sbk" && b == "app-2026-11-21T020000.900Z.sbk")
        #expect(RetentionPolicy.timestamp(inName: a) == Self.t0)
    }

    static func plan(_ yaml: String) throws -> BackupPlan {
        try BackupPlan.parse("components:\n  - {name: d, kind: docs, path: d}\n" + yaml, file: "/srv/app/p.yaml")
    }

    @Test func planBlocksAreReadWithDefaults() throws {
        let p = try Self.plan(
            """
            app: {name: shop}
            destination: {location: s3://bucket/backups, name: "{plan}-nightly-{now}.sbk", verify: true}
            retention: {keep-within: 7d, keep-monthly: 12}
            notify:
              - {on: [failure, warning], webhook: "https://hooks.example/x"}
              - {command: ["/usr/local/bin/page", "--team", "ops"]}
            status: {max-age: 26h, size-change: 0.5, prometheus: /var/lib/node_exporter/sealbak.prom}
            password-file: secret.pass

            """
        )
        let o = p.operations
        #expect(o.location == "s3://bucket/backups/" && o.verify && o.planName == "shop")
        #expect(o.retention?.within == RetentionDuration("7d") && o.retention?.monthly == 12)
        #expect(o.notify.count == 2 && o.notify[0].on == [.failure, .warning] && o.notify[1].on == [.failure])
        #expect(
            o.maxAge?.seconds == 26 * 3600 && o.sizeChange == 0.5 && o.stateDir == "/srv/app/.sealbak/shop"
                && o.passwordFile == "/srv/app/secret.pass"
        )
        let name = o.archiveName(now: Date(timeIntervalSince1970: 1_795_226_400))
        #expect(name == "shop-nightly-2026-11-21T020000.000Z.sbk" && o.matches(name))
        #expect(!o.matches("shop-nightly-latest.sbk") && !o.matches("other-nightly-2026-11-21T020000.000Z.sbk"))
        #expect(o.archiveLocation(name) == "s3://bucket/backups/" + name)
    }

    @Test(arguments: [
        ("retention: {keep-within: 6m}\n", "p.yaml:3: retention.keep-within must be a duration such as 7d"),
        ("retention: {}\n", "p.yaml:3: retention keeps nothing"),
        (
            "destination: {name: x.sbk, location: b}\n",
            "p.yaml:3: destination.name must be a file name with {now} in it"
        ),
        ("destination: {verify: true}\n", "p.yaml:3: destination has no location:"),
        ("notify:\n  - {on: [sometimes], command: x}\n", "p.yaml:4: notify.on: unknown event sometimes"),
        ("notify:\n  - {on: [failure]}\n", "p.yaml:4: a notify entry needs exactly one of command: or webhook:"),
        ("status: {size-change: 0}\n", "p.yaml:3: status.size-change must be a fraction above 0"),
    ])
    func badBlocksAreNamedWithFileAndLine(_ yaml: String, _ message: String) throws {
        do {
            _ = try BackupPlan.parse("components:\n  - {name: d, kind: docs, path: d}\n" + yaml, file: "p.yaml")
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.code == .usage && error.message.hasPrefix(message), "\(error.message)")
        }
    }

    @Test func theHistorySurvivesATornLineAndMarksInterruptedRuns() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let h = RunHistory(stateDir: dir)
        var a = RunRecord(kind: .run, plan: "p", start: 100)
        try h.append(a)
        a.status = .ok
        a.end = 160
        a.size = 1000
        try h.append(a)
        let b = RunRecord(kind: .run, plan: "p", start: 200)
        try h.append(b)
        // A kill in the middle of a write: half a line, no newline.
        let fd = open(h.path, O_WRONLY | O_APPEND)
        _ = "{\"id\":\"torn".withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let closed = try h.closeInterrupted(except: nil, foundBy: "test", now: 300)
        #expect(closed.map(\.id) == [b.id])
        let (records, bad) = try h.read()
        #expect(
            bad == 1 && records.map(\.status) == [.ok, .interrupted] && records[0].duration == 60,
            Comment(
                rawValue: "\(bad) \(records) "
                    + "\(String(decoding: FileManager.default.contents(atPath: h.path) ?? Data(), as: UTF8.self))"
            )
        )
        #expect(records[1].error?.contains("killed") == true && records[1].end == nil)
    }

    @Test func healthRulesAndPrometheusText() {
        func run(_ start: Double, _ status: RunRecord.Status, size: UInt64? = nil) -> RunRecord {
            var r = RunRecord(kind: .run, plan: "shop", start: start)
            r.status = status
            r.end = start + 30
            r.size = size
            r.archive = size == nil ? nil : "/b/\(Int(start)).sbk"
            r.exitCode = status == .ok ? 0 : 8
            return r
        }
        let ok1 = run(1000, .ok, size: 1000)
        let ok2 = run(90_000, .ok, size: 1400)
        let maxAge = RetentionDuration("26h")
        #expect(
            HealthReport.evaluate(plan: "shop", records: [ok1, ok2], now: 100_000, maxAge: maxAge, sizeChange: 0.5)
                .healthy
        )
        let stale = HealthReport.evaluate(
            plan: "shop",
            records: [ok1, ok2],
            now: 90_030 + 26 * 3600 + 1,
            maxAge: maxAge,
            sizeChange: nil
        )
        #expect(stale.problems.count == 1 && stale.problems[0].contains("more than 26h"))
        let jump = HealthReport.evaluate(plan: "shop", records: [ok1, ok2], now: 100_000, maxAge: nil, sizeChange: 0.3)
        #expect(jump.problems.count == 1 && jump.problems[0].contains("larger (+40%)"))
        let failed = HealthReport.evaluate(
            plan: "shop",
            records: [ok1, ok2, run(100_000, .failed)],
            now: 100_100,
            maxAge: maxAge,
            sizeChange: nil
        )
        #expect(failed.problems.count == 1 && failed.problems[0].contains("FAILED") && failed.lastSuccess?.size == 1400)
        #expect(!HealthReport.evaluate(plan: "shop", records: [], now: 0, maxAge: nil, sizeChange: nil).healthy)
        let text = failed.prometheusText()
        #expect(
            text.contains(
                "# TYPE sealbak_last_success_timestamp_seconds "
                    + "gauge\nsealbak_last_success_timestamp_seconds{plan=\"shop\"} 90030\n"
            )
        )
        #expect(
            text.contains("sealbak_last_run_status{plan=\"shop\"} 2\n")
                && text.contains("sealbak_last_run_exit_code{plan=\"shop\"} 8\n")
        )
        #expect(
            text.contains("sealbak_last_archive_size_bytes{plan=\"shop\"} 1400\n")
                && text.contains("sealbak_healthy{plan=\"shop\"} 0\n")
        )
        // Every sample line is NAME{plan="…"} VALUE (the textfile collector rejects anything else).
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(
                line.range(of: #"^sealbak_[a-z_]+\{plan="shop"\} -?[0-9.]+$"#, options: .regularExpression) != nil,
                "\(line)"
            )
        }
    }
}
