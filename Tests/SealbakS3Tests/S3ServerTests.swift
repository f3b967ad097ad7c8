import Foundation
import SealbakIO
import SealbakTestSupport
import Testing

@testable import SealbakS3

/// Against a real SeaweedFS (scripts/s3-server, started by scripts/test): pack to S3 and restore from it,
/// ranged extraction from a multi-GB archive, dropped connections (through scripts/flaky-proxy.py), throttling,
/// wrong credentials, overwrite refusal, prune, and key changes on a remote archive.
@Suite(.serialized, .enabled(if: S3Env.available || S3Env.required)) struct S3ServerTests {
    @Test func packVerifyUnpackAndRestoreThroughS3() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = dir + "/docs"
        try FileManager.default.createDirectory(atPath: src + "/guides", withIntermediateDirectories: true)
        try Data(TestArchive.noise(9 << 20, seed: 1)).write(to: URL(fileURLWithPath: src + "/guides/big.bin"))
        try Data("# hello\n".utf8).write(to: URL(fileURLWithPath: src + "/README.md"))
        let url = env.url("roundtrip/app-{now}.sbk")
        // Parts of 5 MiB: the 9 MiB archive needs two, uploaded in parallel.
        let pack = try env.sealbak([
            "pack", url, "--docs", "docs=" + src, "--insecure-test-kdf", "--s3-part-size", "5M",
        ])
        #expect(pack.status == 0, "\(pack.stderr)")
        let listing = try env.sealbak(["ls", env.url("roundtrip/")])
        #expect(listing.status == 0 && listing.stdout.contains("1 archive(s)"), "\(listing.stdout)\(listing.stderr)")
        let name = try #require(
            listing.stdout.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        )
        #expect(RetentionPolicy.timestamp(inName: name) != nil, "{now} was expanded into the name")
        let archive = env.url("roundtrip/" + name)
        let list = try env.sealbak(["list", archive])
        #expect(list.status == 0 && list.stdout.contains("docs/guides/big.bin"), "\(list.stderr)")
        #expect(list.stderr.contains("fetched"), "list reports the bytes it fetched")
        let verify = try env.sealbak(["verify", archive])
        #expect(verify.status == 0 && verify.stdout.contains("OK:"), "\(verify.stderr)")
        let out = dir + "/out"
        let unpack = try env.sealbak(["unpack", archive, "--to", out])
        #expect(unpack.status == 0, "\(unpack.stderr)")
        #expect(
            FileManager.default.contentsEqual(
                atPath: out + "/docs/docs/guides/big.bin",
                andPath: src + "/guides/big.bin"
            ),
            "\(unpack.stderr)"
        )
        let restored = dir + "/restored"
        let restore = try env.sealbak(["restore", archive, "--to", restored, "--yes"])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(
            FileManager.default.contentsEqual(atPath: restored + "/docs/README.md", andPath: src + "/README.md"),
            "\(restore.stderr)"
        )
    }

    /// A multi-GB archive: `unpack --only` of one small entry fetches its frames, the header, manifest,
    /// footer and trailer, and nothing of the big entries around it.
    @Test func rangedExtractionFetchesOnlyTheEntry() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let big = (ProcessInfo.processInfo.environment["SEALBAK_SANITIZER"] != nil ? 300 : 2300) << 20
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        // Sparse files of zeros, stored uncompressed so the archive really is that large.
        for name in ["a-big.bin", "c-big.bin"] {
            #expect(FileManager.default.createFile(atPath: dir + "/data/" + name, contents: nil))
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/data/" + name))
            try h.truncate(atOffset: UInt64(big / 2))
            try h.close()
        }
        let needle = Data(TestArchive.noise(300_000, seed: 7))
        try needle.write(to: URL(fileURLWithPath: dir + "/data/b-needle.bin"))
        let url = env.url("ranged/big.sbk")
        let pack = try env.sealbak([
            "pack", url, dir + "/data", "--compression", "none", "--insecure-test-kdf", "--quiet",
        ])
        #expect(pack.status == 0, "\(pack.stderr)")
        let out = dir + "/out"
        let r = try env.sealbak(["unpack", url, "--to", out, "--only", "data/b-needle.bin"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/data/b-needle.bin")) == needle)
        // "fetched 312.0 KiB of the archive's 2.2 GiB (0.013%)"
        let fetched = try #require(S3Env.fetchedBytes(r.stderr), "\(r.stderr)")
        #expect(fetched >= 300_000 && fetched < 2_097_152, "fetched \(fetched) bytes for a 300 kB entry: \(r.stderr)")
    }

    @Test func aConnectionDroppedForGoodLeavesNoObject() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(TestArchive.noise(24 << 20, seed: 3)).write(to: URL(fileURLWithPath: dir + "/blob"))
        // Every connection is cut after 3 MiB upstream, inside every 5 MiB part: no part can ever arrive.
        let proxy = try FlakyProxy(upstream: env.endpoint, mode: "drop-upload", afterBytes: 3 << 20, times: -1)
        defer { proxy.stop() }
        let url = env.url("dropped/a.sbk")
        let r = try env.sealbak(
            [
                "pack", url, dir + "/blob", "--insecure-test-kdf", "--quiet", "--s3-part-size", "5M",
                "--s3-max-attempts", "3",
            ],
            endpoint: proxy.endpoint
        )
        #expect(r.status == 11, "gives up with 'unavailable' after its retries: \(r.stderr)")
        #expect(r.stderr.contains("attempt"), "\(r.stderr)")
        let client = try env.client()
        #expect(try client.head(try S3Location(url: url)) == nil, "no object after a failed upload")
        #expect(
            try client.listMultipartUploads(bucket: env.bucket, prefix: env.key("dropped/")).isEmpty,
            "the upload was aborted"
        )
    }

    @Test func aConnectionDroppedOnceIsRetriedAndResumed() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(TestArchive.noise(14 << 20, seed: 5)).write(to: URL(fileURLWithPath: dir + "/blob"))
        let url = env.url("retried/a.sbk")
        do {
            // Cut inside the first 5 MiB part, whatever connection carries it: with 6 MiB the drop happened only
            // when one kept-alive connection carried two parts, which parallel uploads made a matter of timing.
            let proxy = try FlakyProxy(upstream: env.endpoint, mode: "drop-upload", afterBytes: 3 << 20, times: 1)
            defer { proxy.stop() }
            let r = try env.sealbak(
                ["pack", url, dir + "/blob", "--insecure-test-kdf", "--quiet", "--s3-part-size", "5M"],
                endpoint: proxy.endpoint
            )
            #expect(r.status == 0, "\(r.stderr)")
            #expect(proxy.stats()["drops"] == 1)
        }
        // A download cut after 9 MiB resumes from the last byte received: about one archive is fetched, not two.
        let proxy = try FlakyProxy(upstream: env.endpoint, mode: "drop-download", afterBytes: 9 << 20, times: 1)
        defer { proxy.stop() }
        let v = try env.sealbak(["verify", url], endpoint: proxy.endpoint)
        #expect(v.status == 0, "\(v.stderr)")
        #expect(proxy.stats()["drops"] == 1)
        let fetched = try #require(S3Env.fetchedBytes(v.stderr), "\(v.stderr)")
        #expect(fetched < 15 * 1_048_576, "fetched \(fetched) bytes for a 14 MiB archive")
        // Throttling: three 503 SlowDown answers, then success.
        let slow = try FlakyProxy(upstream: env.endpoint, mode: "http-503", afterBytes: 0, times: 3)
        defer { slow.stop() }
        let l = try env.sealbak(["list", url], endpoint: slow.endpoint)
        #expect(l.status == 0, "\(l.stderr)")
        #expect(slow.stats()["http503"] == 3)
        // Each retry is said as it is scheduled (no silent wait), naming the failure and the attempt.
        #expect(
            l.stderr.components(separatedBy: "sealbak: warning: ").count - 1 == 3 && l.stderr.contains("503")
                && l.stderr.contains("attempt 2 of"),
            "\(l.stderr)"
        )
    }

    @Test func wrongCredentialsAndMissingThingsAreClearErrors() throws {
        let env = try S3Env.get()
        let wrongSecret = "not-the-secret-\(UUID().uuidString)"
        let r = try env.sealbak(["ls", env.url("")], extraEnv: ["AWS_SECRET_ACCESS_KEY": wrongSecret])
        #expect(r.status == 14, "\(r.stderr)")
        #expect(
            r.stderr.contains("refused the credentials") && r.stderr.contains("SignatureDoesNotMatch"),
            "\(r.stderr)"
        )
        #expect(!r.stderr.contains(wrongSecret) && !r.stderr.contains(env.secretKey))
        let u = try env.sealbak(["list", env.url("x.sbk")], extraEnv: ["AWS_ACCESS_KEY_ID": "NOSUCHKEY"])
        #expect(u.status == 14 && u.stderr.contains("InvalidAccessKeyId"), "\(u.stderr)")
        let none = try env.sealbak(["list", "s3://no-such-bucket-sbk/x.sbk"])
        #expect(none.status == 9 && none.stderr.contains("bucket does not exist"), "\(none.stderr)")
        let missing = try env.sealbak(["verify", env.url("nothing-here.sbk")])
        #expect(missing.status == 9 && missing.stderr.contains("does not exist"), "\(missing.stderr)")
        let noCreds = try env.sealbak(
            ["ls", env.url("")],
            extraEnv: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""]
        )
        #expect(noCreds.status == 14 && noCreds.stderr.contains("no S3 credentials"), "\(noCreds.stderr)")
    }

    @Test func anExistingArchiveIsNeverOverwrittenWithoutForce() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("first".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
        let url = env.url("overwrite/a.sbk")
        #expect(try env.sealbak(["pack", url, dir + "/f", "--insecure-test-kdf", "--quiet"]).status == 0)
        let client = try env.client()
        let before = try #require(try client.head(try S3Location(url: url)))
        let again = try env.sealbak(["pack", url, dir + "/f", "--insecure-test-kdf", "--quiet"])
        #expect(again.status == 7 && again.stderr.contains("already exists"), "\(again.stderr)")
        #expect(try client.head(try S3Location(url: url))?.etag == before.etag)
        #expect(try env.sealbak(["pack", url, dir + "/f", "--insecure-test-kdf", "--quiet", "--force"]).status == 0)
        #expect(try client.head(try S3Location(url: url))?.etag != before.etag)
        // The conditional write itself (not only the check before packing): a PUT with If-None-Match refuses.
        let exists = #expect(throws: SealbakError.self) {
            try [UInt8]("x".utf8).withUnsafeBytes {
                try client.putObject(try S3Location(url: url), $0, ifNoneMatch: true)
            }
        }
        #expect(exists?.code == .targetExists)
    }

    /// The store checks each part's checksum: a part whose x-amz-checksum-sha256 does not match its bytes is refused.
    @Test func partsAreVerifiedByTheStore() throws {
        let env = try S3Env.get()
        let client = try env.client()
        let loc = try S3Location(url: env.url("checksums/a.bin"))
        let id = try client.createMultipartUpload(loc)
        defer { try? client.abortMultipartUpload(loc, uploadID: id) }
        let good = [UInt8](repeating: 1, count: 1000)
        let bad = [UInt8](repeating: 2, count: 1000)
        var call = S3Client.Call(
            method: "PUT",
            bucket: loc.bucket,
            key: loc.key,
            query: [("partNumber", "1"), ("uploadId", id)],
            what: "test part"
        )
        let sum = good.withUnsafeBytes { S3Client.checksum($0) }
        call.headers = sum.headers
        // The signed payload hash is the bad body's (SeaweedFS does not check that one); the checksum is the good
        // one's.
        let e = #expect(throws: SealbakError.self) { try bad.withUnsafeBytes { try client.send(call, body: $0) } }
        #expect(e?.message.contains("BadDigest") == true, "\(e?.message ?? "")")
        #expect(
            try good.withUnsafeBytes { try client.uploadPart(loc, uploadID: id, number: 1, $0) }.etag.isEmpty == false
        )
    }

    @Test func pruneKeepsWhatThePolicySays() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
        // 2026-09-28 ... 2026-11-21: 12 archives at irregular days, two on 2026-11-21.
        let stamps = [
            "2026-09-28T010000Z", "2026-10-05T010000Z", "2026-10-19T010000Z", "2026-10-31T230000Z",
            "2026-11-09T010000Z",
            "2026-11-14T010000Z", "2026-11-16T010000Z", "2026-11-18T010000Z", "2026-11-19T010000Z",
            "2026-11-20T010000Z",
            "2026-11-21T010000Z", "2026-11-21T120000Z",
        ]
        for s in stamps {
            let r = try env.sealbak([
                "pack", env.url("prune/app-\(s).sbk"), dir + "/f", "--insecure-test-kdf", "--quiet",
            ])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let args = [
            "prune", env.url("prune/"), "--keep-last", "2", "--keep-daily", "3", "--keep-weekly", "3", "--keep-monthly",
            "3",
        ]
        let dry = try env.sealbak(args + ["--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("would delete 5 of 12"), "\(dry.stdout)")
        #expect(dry.stdout.contains("would delete  app-2026-10-05T010000Z.sbk"), "\(dry.stdout)")
        #expect(
            try env.client().list(bucket: env.bucket, prefix: env.key("prune/")).archives.count == 12,
            "a dry run deletes nothing"
        )
        let real = try env.sealbak(args + ["--verbose"])
        #expect(real.status == 0 && real.stdout.contains("deleted 5 of 12"), "\(real.stdout)\(real.stderr)")
        #expect(
            real.stdout.contains("keep    app-2026-11-21T120000Z.sbk")
                && real.stdout.contains("last 2, daily 2026-11-21, weekly 2026-W47, monthly 2026-11"),
            "\(real.stdout)"
        )
        let left = Set(
            try env.client().list(bucket: env.bucket, prefix: env.key("prune/")).archives.map {
                String($0.key.dropFirst(env.key("prune/").count))
            }
        )
        // Kept: last 2 (both of 11-21); daily 11-21, 11-20, 11-19; weekly W47 (11-16..22: 11-21), W46 (11-09..15:
        // 11-14),
        // W44 (10-26..11-01: 10-31; W45 has none); monthly 2026-11, 2026-10 (10-31), 2026-09 (09-28).
        // Deleted: 11-18, 11-16, 11-09, 10-19, 10-05.
        let expected: Set<String> = [
            "app-2026-11-21T120000Z.sbk", "app-2026-11-21T010000Z.sbk", "app-2026-11-20T010000Z.sbk",
            "app-2026-11-19T010000Z.sbk", "app-2026-11-14T010000Z.sbk", "app-2026-10-31T230000Z.sbk",
            "app-2026-09-28T010000Z.sbk",
        ]
        #expect(left == expected, "\(real.stdout)")
    }

    @Test func keyChangesOnARemoteArchiveCopyTheBodyOnTheServer() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(TestArchive.noise(20 << 20, seed: 11)).write(to: URL(fileURLWithPath: dir + "/blob"))
        let url = env.url("keys/a.sbk")
        #expect(try env.sealbak(["pack", url, dir + "/blob", "--insecure-test-kdf", "--quiet"]).status == 0)
        let client = try env.client()
        let size = try #require(try client.head(try S3Location(url: url))).size
        let newPassword = "new-\(UUID().uuidString)"
        let r = try env.sealbak(
            ["key", "passwd", url, "--slot", "1", "--insecure-test-kdf"],
            extraEnv: ["SEALBAK_NEW_PASSWORD": newPassword],
            secrets: [newPassword]
        )
        #expect(r.status == 0, "\(r.stderr)")
        // 5 MiB of body plus the header pass through sealbak; the other ~15 MiB are copied by the store.
        #expect(r.stderr.contains("copied by the store") && r.stderr.contains("5.0 MiB passed through"), "\(r.stderr)")
        #expect(try client.head(try S3Location(url: url))?.size == size, "same header length: same size")
        #expect(try env.sealbak(["verify", url]).status == 3, "the old password no longer opens it")
        let v = try env.sealbak(["verify", url], extraEnv: ["SEALBAK_PASSWORD": newPassword], secrets: [newPassword])
        #expect(v.status == 0, "\(v.stderr)")
        // A changed object is detected: the rewrite is pinned to the version whose header was authenticated.
        let add = try env.sealbak(
            ["key", "add", url, "--insecure-test-kdf"],
            extraEnv: ["SEALBAK_PASSWORD": newPassword, "SEALBAK_NEW_PASSWORD": "third"],
            secrets: [newPassword]
        )
        #expect(add.status == 0, "\(add.stderr)")
        #expect(try env.sealbak(["verify", "-q", url], extraEnv: ["SEALBAK_PASSWORD": "third"]).status == 0)
        #expect(try client.listMultipartUploads(bucket: env.bucket, prefix: env.key("keys/")).isEmpty)
    }

    /// SIGINT in the middle of an upload (parts already stored): the upload is aborted, nothing is left.
    @Test func anInterruptedUploadIsAborted() throws {
        let env = try S3Env.get()
        let url = env.url("interrupted/a.sbk")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Proc.sealbakBinary)
        p.arguments = [
            "pack", url, "--stdin-name", "x", "--insecure-test-kdf", "--quiet", "--s3-part-size", "5M", "--compression",
            "none",
        ]
        var e = ProcessInfo.processInfo.environment
        for (k, v) in [
            "AWS_ENDPOINT_URL": env.endpoint, "AWS_ACCESS_KEY_ID": env.accessKey,
            "AWS_SECRET_ACCESS_KEY": env.secretKey, "SEALBAK_PASSWORD": "pw",
        ] { e[k] = v }
        p.environment = e
        let input = Pipe()
        p.standardInput = input
        try p.run()
        // two parts, then keep the pipe open
        input.fileHandleForWriting.write(Data(TestArchive.noise(12 << 20, seed: 2)))
        let client = try env.client()
        var started = false
        for _ in 0..<100 where !started {
            started = try !client.listMultipartUploads(bucket: env.bucket, prefix: env.key("interrupted/")).isEmpty
            if !started { usleep(100_000) }
        }
        #expect(started, "the upload began")
        usleep(500_000)
        p.interrupt()
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        #expect(
            try client.listMultipartUploads(bucket: env.bucket, prefix: env.key("interrupted/")).isEmpty,
            "the upload was aborted"
        )
        #expect(try client.head(try S3Location(url: url)) == nil)
    }

    @Test func localFolderPrune() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
        try FileManager.default.createDirectory(atPath: dir + "/backups", withIntermediateDirectories: true)
        for d in 1...5 {
            #expect(
                try env.sealbak([
                    "pack", dir + "/backups/db-2026-11-0\(d).sbk", dir + "/f", "--insecure-test-kdf", "--quiet",
                ]).status == 0
            )
        }
        try Data("not an archive".utf8).write(to: URL(fileURLWithPath: dir + "/backups/notes.txt"))
        let r = try env.sealbak(["prune", dir + "/backups", "--keep-last", "2", "--verbose"])
        #expect(
            r.status == 0 && r.stdout.contains("deleted 3 of 5")
                && r.stdout.contains("notes.txt: not a sealbak archive"),
            "\(r.stdout)\(r.stderr)"
        )
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/backups"))
        #expect(left == ["db-2026-11-04.sbk", "db-2026-11-05.sbk", "notes.txt"])
    }
}

/// The test server's settings, from the environment scripts/s3-server writes.
extension S3ServerTests {
    /// `sealbak run` into an s3:// prefix two nights in a row: retention deletes there, a run record is stored next
    /// to the archives (another machine reads it with history --from), bulk verify of the prefix, a drill from it.
    @Test func nightlyRunsIntoAPrefixRecordTheirRunsNextToTheArchives() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/docs", withIntermediateDirectories: true)
        try Data("# runbook\n".utf8).write(to: URL(fileURLWithPath: dir + "/docs/runbook.md"))
        let prefix = env.url("nightly/")
        try Data(
            """
            version: 1
            app: {name: shop}
            components:
              - {name: docs, kind: docs, path: docs}
            pack: {kdf-memory: 8, kdf-passes: 1}
            state-dir: state
            destination: {location: \(prefix), verify: true}
            retention: {keep-last: 1}

            """.utf8
        ).write(to: URL(fileURLWithPath: dir + "/plan.yaml"))
        for night in ["2026-11-20T02:00:00Z", "2026-11-21T02:00:00Z"] {
            let r = try env.sealbak(["run", "--plan", dir + "/plan.yaml", "--now", night])
            #expect(r.status == 0 && r.stderr.isEmpty, "\(night): \(r.stderr)")
        }
        let objects = try env.client().list(bucket: env.bucket, prefix: env.key("nightly/")).map {
            String($0.key.dropFirst(env.key("nightly/").count))
        }
        .filter { $0 != ".sealbak-tmp-probe" }.sorted()  // the conditional-write probe stays on purpose (docs/s3.md)
        #expect(
            objects.count == 3 && objects[0].hasPrefix(".sealbak-runs/2026-11-20T020000.000Z-")
                && objects[2] == "shop-2026-11-21T020000.000Z.sbk",
            "\(objects)"
        )
        let ls = try env.sealbak(["ls", prefix])
        #expect(
            ls.stdout.contains("1 archive(s)") && !ls.stdout.contains("sealbak-runs"),
            "run records are not archives: \(ls.stdout)"
        )
        let remote = try env.sealbak(["history", "--from", prefix, "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(remote.stdout.utf8)) as? [String: Any]
        let records = doc?["records"] as? [[String: Any]] ?? []
        #expect(
            remote.status == 0 && records.count == 2 && records.allSatisfy { $0["status"] as? String == "ok" },
            "\(remote.stdout)\(remote.stderr)"
        )
        #expect(
            records.last?["deleted"] as? [String] == ["\(prefix)shop-2026-11-20T020000.000Z.sbk"],
            "\(remote.stdout)"
        )
        #expect(
            (records.first?["start"] as? String)?.hasPrefix("2026-11-20T02:00:00") == true,
            "times are RFC 3339: \(remote.stdout)"
        )
        // What a run killed during its upload leaves: an unfinished multipart upload of one of the plan's names (and
        // one of another name, which is not the plan's to touch). The next run aborts the first.
        let client = try env.client()
        let stale = try client.createMultipartUpload(
            S3Location(bucket: env.bucket, key: env.key("nightly/shop-2026-11-21T020000.500Z.sbk"))
        )
        let foreign = try client.createMultipartUpload(
            S3Location(bucket: env.bucket, key: env.key("nightly/other-upload.bin"))
        )
        let third = try env.sealbak(["run", "--plan", dir + "/plan.yaml", "--now", "2026-11-22T02:00:00Z"])
        #expect(third.status == 0, "\(third.stderr)")
        #expect(
            third.stderr.contains("aborted the unfinished upload of shop-2026-11-21T020000.500Z.sbk"),
            "\(third.stderr)"
        )
        let uploads = try client.listMultipartUploads(bucket: env.bucket, prefix: env.key("nightly/")).map(\.uploadID)
        #expect(!uploads.contains(stale) && uploads.contains(foreign), "\(uploads)")
        try client.abortMultipartUpload(
            S3Location(bucket: env.bucket, key: env.key("nightly/other-upload.bin")),
            uploadID: foreign
        )
        let bulk = try env.sealbak(["verify", prefix, "--plan", dir + "/plan.yaml"])
        #expect(
            bulk.status == 0 && bulk.stdout.contains("verified 1 archive(s)") && bulk.stdout.contains("1 intact"),
            "\(bulk.stdout)\(bulk.stderr)"
        )
        let drill = try env.sealbak(["drill", "--plan", dir + "/plan.yaml"])
        #expect(
            drill.status == 0 && drill.stdout.contains("drill ok: \(prefix)shop-2026-11-22T020000.000Z.sbk"),
            "\(drill.stdout)\(drill.stderr)"
        )
    }
}

struct S3Env {
    static let env = ProcessInfo.processInfo.environment
    static var available: Bool { env["SEALBAK_TEST_S3_ENDPOINT"] != nil }
    static var required: Bool { env["SEALBAK_REQUIRE_S3"] == "1" }
    static let run = UUID().uuidString.prefix(8).lowercased()

    var endpoint: String
    var bucket: String
    var accessKey: String
    var secretKey: String

    static func get() throws -> S3Env {
        guard let e = env["SEALBAK_TEST_S3_ENDPOINT"], let b = env["SEALBAK_TEST_S3_BUCKET"],
            let a = env["SEALBAK_TEST_S3_ACCESS_KEY"], let s = env["SEALBAK_TEST_S3_SECRET_KEY"]
        else {
            throw TestFailure(
                "no S3 test server: run the tests through scripts/test (it starts SeaweedFS with scripts/s3-server)"
            )
        }
        return S3Env(endpoint: e, bucket: b, accessKey: a, secretKey: s)
    }

    /// A key of this test run (runs never see each other's objects).
    func url(_ key: String) -> String { "s3://\(bucket)/\(self.key(key))" }
    func key(_ key: String) -> String { "t-\(S3Env.run)/\(key)" }

    func client() throws -> S3Client {
        var s = S3Settings()
        s.endpoint = endpoint
        s.credentials = SigV4.Credentials(accessKey: accessKey, secretKey: secretKey)
        return try S3Client(settings: s)
    }

    @discardableResult
    func sealbak(
        _ args: [String],
        endpoint: String? = nil,
        extraEnv: [String: String] = [:],
        secrets: [String] = []
    ) throws -> Proc.Result {
        var e = [
            "AWS_ENDPOINT_URL": endpoint ?? self.endpoint, "AWS_ACCESS_KEY_ID": accessKey,
            "AWS_SECRET_ACCESS_KEY": secretKey,
            "AWS_REGION": "us-east-1", "SEALBAK_PASSWORD": "s3-test-password", "SEALBAK_S3_BACKOFF_BASE": "0.05",
        ]
        for (k, v) in extraEnv { e[k] = v }
        return try Proc.sealbak(args, env: e, secrets: secrets + [secretKey, "s3-test-password"])
    }

    /// Parses "fetched 312.0 KiB of the archive's …" back into bytes (±0.05%).
    static func fetchedBytes(_ stderr: String) -> Double? {
        guard let r = stderr.range(of: "fetched ") else { return nil }
        let parts = stderr[r.upperBound...].split(separator: " ")
        guard parts.count >= 2, let n = Double(parts[0]) else { return nil }
        let units: [String: Double] = ["B": 1, "KiB": 1024, "MiB": 1_048_576, "GiB": 1_073_741_824]
        let unit = units[String(parts[1])] ?? 0
        return n * unit
    }
}

/// scripts/flaky-proxy.py between sealbak and the server.
final class FlakyProxy {
    let process = Process()
    let dir: String
    let endpoint: String

    /// `match`: HTTP-level modes act only on requests whose request line contains it (e.g. "/a.sbk?").
    init(
        upstream: String,
        mode: String,
        afterBytes: Int = 0,
        times: Int,
        match: String = "",
        region: String = "eu-west-1"
    ) throws {
        dir = try Proc.tempDir()
        let hostPort = upstream.replacingOccurrences(of: "http://", with: "")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", Proc.root + "/scripts/flaky-proxy.py", "--listen-port-file", dir + "/port", "--upstream",
            hostPort,
            "--mode", mode, "--after-bytes", String(afterBytes), "--times", String(times), "--stats-file",
            dir + "/stats",
            "--match", match, "--region", region,
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        var port: String?
        for _ in 0..<100 {
            if let p = try? String(contentsOfFile: dir + "/port", encoding: .utf8), !p.isEmpty {
                port = p.trimmingCharacters(in: .whitespacesAndNewlines)
                break
            }
            usleep(50_000)
        }
        guard let port else {
            kill(process.processIdentifier, SIGKILL)
            throw TestFailure("flaky-proxy.py did not start")
        }
        endpoint = "http://127.0.0.1:\(port)"
    }

    func stats() -> [String: Int] {
        guard let d = FileManager.default.contents(atPath: dir + "/stats"),
            let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any]
        else { return [:] }
        return o.compactMapValues { $0 as? Int }
    }

    /// SIGKILL: a child of the test process inherits its blocked signal mask, so SIGTERM never arrives.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

extension [S3Client.ObjectInfo] {
    /// Without the conditional-write probe object sealbak keeps next to the archives (`.sealbak-tmp-probe`).
    var archives: [S3Client.ObjectInfo] { filter { !$0.key.hasSuffix(".sealbak-tmp-probe") } }
}
