import Foundation
import SealbakTestSupport
import Testing

@testable import SealbakS3

/// The step that makes an archive exist: a signal that arrives during the completion, and a completion whose
/// answer is lost (scripts/flaky-proxy.py forwards it to SeaweedFS and resets the client's connection).
@Suite(.serialized, .enabled(if: S3Env.available || S3Env.required)) struct CompletionTests {
    private func blob(_ bytes: Int) throws -> (dir: String, file: String) {
        let dir = try Proc.tempDir()
        try Data(TestArchive.noise(bytes, seed: 51)).write(to: URL(fileURLWithPath: dir + "/blob"))
        return (dir, dir + "/blob")
    }

    /// SIGINT exactly when the completion is about to be sent (fault point "s3: completing"): the completion
    /// is not raced by the abort; it finishes, and sealbak exits 0 saying the archive is stored.
    @Test func aSignalDuringCompletionWaitsForItAndTellsTheTruth() throws {
        let env = try S3Env.get()
        let (dir, file) = try blob(11 << 20)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = env.url("signal/a.sbk")
        let r = try env.sealbak(
            ["pack", url, file, "--insecure-test-kdf", "--s3-part-size", "5M"],
            extraEnv: ["SEALBAK_TEST_SIGNAL_AT": "1", "SEALBAK_TEST_SIGNAL": "INT"]
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stderr.contains("interrupted (signal 2) while the upload completed; it completed: \(url) is stored"),
            "\(r.stderr)"
        )
        let v = try env.sealbak(["verify", url])
        #expect(v.status == 0 && v.stdout.contains("OK:"), "\(v.stderr)")
        #expect(try env.client().listMultipartUploads(bucket: env.bucket, prefix: env.key("signal/")).isEmpty)
        // The same for a single PUT (an archive smaller than one part).
        try Data("tiny".utf8).write(to: URL(fileURLWithPath: dir + "/tiny"))
        let small = env.url("signal/small.sbk")
        let s = try env.sealbak(
            ["pack", small, dir + "/tiny", "--insecure-test-kdf"],
            extraEnv: ["SEALBAK_TEST_SIGNAL_AT": "1", "SEALBAK_TEST_SIGNAL": "INT"]
        )
        #expect(s.status == 0 && s.stderr.contains("it completed: \(small) is stored"), "\(s.stderr)")
        #expect(try env.sealbak(["verify", "-q", small]).status == 0)
    }

    /// SIGINT at the completion, which then fails (another pack took the name just before, run by a hook at the
    /// same fault point): nothing was stored by this pack, so it exits 130 and its upload is aborted.
    @Test func aSignalDuringAFailingCompletionExits130AndAborts() throws {
        let env = try S3Env.get()
        let (dir, file) = try blob(11 << 20)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("other".utf8).write(to: URL(fileURLWithPath: dir + "/other"))
        let url = env.url("signal-fail/a.sbk")
        let hook = "'\(Proc.sealbakBinary)' pack '\(url)' '\(dir)/other' --insecure-test-kdf --quiet"
        let r = try env.sealbak(
            ["pack", url, file, "--insecure-test-kdf", "--s3-part-size", "5M"],
            extraEnv: [
                "SEALBAK_TEST_SIGNAL_AT": "1", "SEALBAK_TEST_SIGNAL": "INT",
                "SEALBAK_TEST_HOOK_POINT": "s3: completing \(url)", "SEALBAK_TEST_HOOK": hook,
            ]
        )
        #expect(r.status == 130, "\(r.stderr)")
        #expect(!r.stderr.contains("it completed"), "\(r.stderr)")
        let client = try env.client()
        #expect(
            try client.listMultipartUploads(bucket: env.bucket, prefix: env.key("signal-fail/")).isEmpty,
            "the upload was aborted"
        )
        let stored = try #require(try client.head(try S3Location(url: url)), "the other pack's archive")
        #expect(stored.size < 1 << 20, "the name holds the other (small) archive, not this one")
    }

    /// The completion reached the store but its answer did not reach sealbak: the retry finds no upload (404
    /// NoSuchUpload, or 412 because the name now exists), checks the object, and reports success.
    @Test func aLostCompletionAnswerIsCheckedAgainstTheObject() throws {
        let env = try S3Env.get()
        let (dir, file) = try blob(11 << 20)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The archive's completion, not that of the conditional-write probe.
        let proxy = try FlakyProxy(upstream: env.endpoint, mode: "lose-complete", times: 1, match: "/a.sbk?")
        defer { proxy.stop() }
        let url = env.url("lost/a.sbk")
        let r = try env.sealbak(
            ["pack", url, file, "--insecure-test-kdf", "--s3-part-size", "5M"],
            endpoint: proxy.endpoint
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(proxy.stats()["faults"] == 1)
        #expect(r.stderr.contains("was lost, and a retry found the archive stored"), "\(r.stderr)")
        #expect(try env.sealbak(["verify", "-q", url]).status == 0)
        // A lost answer for a name that already held another archive is not mistaken for success: the size differs.
        let client = try env.client()
        let other = try S3Location(url: env.url("lost/other.bin"))
        try [UInt8]("x".utf8).withUnsafeBytes { try client.putObject(other, $0, ifNoneMatch: true) }
        #expect(try client.completedEarlier(other, parts: 3, expectedSize: 11 << 20) == false)
        #expect(
            try client.completedEarlier(try S3Location(url: env.url("lost/none.bin")), parts: 3, expectedSize: 5)
                == false
        )
    }
}

/// Uploads left behind by a pack that was killed: `ls` shows them, `prune --incomplete-uploads AGE` aborts them.
@Suite(.serialized, .enabled(if: S3Env.available || S3Env.required)) struct IncompleteUploadTests {
    @Test func lsShowsAndPruneAbortsLeftUploads() throws {
        let env = try S3Env.get()
        let client = try env.client()
        // A killed pack: an upload with one stored 5 MiB part, never completed nor aborted.
        let left = try S3Location(url: env.url("leftovers/app-2026-11-30T010000Z.sbk"))
        let id = try client.createMultipartUpload(left)
        let part = TestArchive.noise(5 << 20, seed: 61)
        _ = try part.withUnsafeBytes { try client.uploadPart(left, uploadID: id, number: 1, $0) }
        let ls = try env.sealbak(["ls", env.url("leftovers/")])
        #expect(ls.status == 0, "\(ls.stderr)")
        #expect(
            ls.stdout.contains("incomplete upload (billed until aborted): app-2026-11-30T010000Z.sbk, started")
                && ls.stdout.contains("5.0 MiB in 1 part(s)"),
            "\(ls.stdout)"
        )
        let json = try env.sealbak(["ls", env.url("leftovers/"), "--json"])
        let doc = try #require(
            try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any],
            "\(json.stdout)"
        )
        let rows = try #require(doc["incomplete_uploads"] as? [[String: Any]], "\(json.stdout)")
        let row = try #require(rows.first, "\(json.stdout)")
        #expect(
            row["location"] as? String == left.description && row["size"] as? Int == 5 << 20
                && row["upload_id"] as? String == id
        )
        let young = try env.sealbak(["prune", env.url("leftovers/"), "--incomplete-uploads", "1h", "--verbose"])
        #expect(young.status == 0 && young.stdout.contains("aborted 0 of 1"), "\(young.stdout)\(young.stderr)")
        // Quiet unless something is aborted (cron mails every line).
        let quiet = try env.sealbak(["prune", env.url("leftovers/"), "--incomplete-uploads", "1h"])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty, "\(quiet.stdout)")
        let dry = try env.sealbak(["prune", env.url("leftovers/"), "--incomplete-uploads", "0s", "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.contains("would abort 1 of 1"), "\(dry.stdout)\(dry.stderr)")
        #expect(try client.listMultipartUploads(bucket: env.bucket, prefix: env.key("leftovers/")).count == 1)
        let real = try env.sealbak(["prune", env.url("leftovers/"), "--incomplete-uploads", "0s"])
        #expect(real.status == 0 && real.stdout.contains("aborted 1 of 1"), "\(real.stdout)\(real.stderr)")
        #expect(try client.listMultipartUploads(bucket: env.bucket, prefix: env.key("leftovers/")).isEmpty)
        let bad = try env.sealbak(["prune", env.url("leftovers/"), "--incomplete-uploads", "soon"])
        #expect(bad.status == 64, "\(bad.stderr)")
    }
}

/// A store that accepts conditional headers but ignores them must not let sealbak claim a protection it did
/// not get: the probe (once per bucket and run) finds out, and sealbak says so.
@Suite(.serialized, .enabled(if: S3Env.available || S3Env.required)) struct ConditionalWriteProbeTests {
    @Test func aStoreIgnoringIfNoneMatchIsReported() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
        // SeaweedFS evaluates If-None-Match: no warning.
        let honest = try env.sealbak(["pack", env.url("probe-ok/a.sbk"), dir + "/f", "--insecure-test-kdf"])
        #expect(honest.status == 0 && !honest.stderr.contains("ignores"), "\(honest.stderr)")
        // Behind a proxy that turns every 412 into 200, the store looks like one that ignores the condition.
        let proxy = try FlakyProxy(upstream: env.endpoint, mode: "accept-412", times: -1)
        defer { proxy.stop() }
        let r = try env.sealbak(
            ["pack", env.url("probe-ignored/a.sbk"), dir + "/f", "--insecure-test-kdf"],
            endpoint: proxy.endpoint
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(
            r.stderr.contains("ignores If-None-Match on completions")
                && r.stderr.contains("only the check before packing protects it"),
            "\(r.stderr)"
        )
        #expect((proxy.stats()["faults"] ?? 0) >= 1)
        // The probe object is one byte next to the archives, hidden from ls and never pruned.
        let ls = try env.sealbak(["ls", env.url("probe-ignored/")])
        #expect(
            ls.status == 0 && ls.stdout.contains("1 archive(s)") && !ls.stdout.contains(".sealbak-tmp-probe"),
            "\(ls.stdout)"
        )
        let all = try env.client().list(bucket: env.bucket, prefix: env.key("probe-ignored/")).map(\.key)
        #expect(Set(all) == [env.key("probe-ignored/a.sbk"), env.key("probe-ignored/.sealbak-tmp-probe")], "\(all)")
    }
}

extension MotoServerTests {
    /// moto honours If-None-Match on a completion but ignores If-Match there: packs get no warning, key changes
    /// (which complete with If-Match on the version they read) do.
    @Test func motoIgnoresIfMatchOnCompletionsAndKeyChangesSaySo() throws {
        let env = try MotoEnv.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(TestArchive.noise(7 << 20, seed: 71)).write(to: URL(fileURLWithPath: dir + "/blob"))
        let url = env.url("probe/a.sbk")
        let pack = try env.sealbak(
            ["pack", url, dir + "/blob", "--insecure-test-kdf", "--s3-part-size", "5M"],
            role: .admin
        )
        #expect(pack.status == 0 && !pack.stderr.contains("ignores"), "\(pack.stderr)")
        let change = try env.sealbak(
            ["key", "passwd", url, "--slot", "1", "--insecure-test-kdf"],
            role: .admin,
            extraEnv: ["SEALBAK_NEW_PASSWORD": "moto-new"]
        )
        #expect(change.status == 0, "\(change.stderr)")
        #expect(change.stderr.contains("ignores If-Match on completions"), "\(change.stderr)")
        #expect(
            try env.sealbak(["verify", "-q", url], role: .admin, extraEnv: ["SEALBAK_PASSWORD": "moto-new"]).status == 0
        )
    }
}
