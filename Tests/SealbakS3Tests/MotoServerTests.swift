import Foundation
import SealbakIO
import SealbakTestSupport
import Testing

@testable import SealbakS3

/// Against moto in server mode (scripts/moto-server, started by scripts/test): a second S3 implementation that
/// checks every signature and enforces IAM policies. The roles of docs/s3.md ("Least privilege") hold the
/// policies of docs/s3-policies/*.json and are tested for what they may and may not do.
@Suite(.serialized, .enabled(if: MotoEnv.available || MotoEnv.required)) struct MotoServerTests {
    /// The safest way to write backups: a put-only key and a recipient. The writer packs (no list, no read),
    /// and can neither list, read nor delete what it wrote; a second pack to the same name is refused by the
    /// store's conditional write.
    @Test func aWriteOnlyCredentialPacksButCannotListReadOrDelete() throws {
        let env = try MotoEnv.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keygen = try Proc.run(
            Proc.sealbakBinary,
            ["keygen", "-o", dir + "/identity", "--no-password", "--insecure-test-kdf"]
        )
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let publicKey = keygen.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try Data(TestArchive.noise(11 << 20, seed: 21)).write(to: URL(fileURLWithPath: dir + "/blob"))
        try Data("small".utf8).write(to: URL(fileURLWithPath: dir + "/small"))
        let big = env.url("roles/big.sbk")
        let small = env.url("roles/small.sbk")
        // Multipart (three 5 MiB parts) and a single PUT, each with the recipient only (no password source).
        for (url, input) in [(big, dir + "/blob"), (small, dir + "/small")] {
            let r = try env.sealbak(
                ["pack", url, input, "--recipient", publicKey, "--s3-part-size", "5M"],
                role: .writer,
                password: false
            )
            #expect(r.status == 0, "\(r.stderr)")
            #expect(
                r.stderr.contains("could not check whether \(url) exists")
                    && r.stderr.contains("relying on the store's conditional write"),
                "\(r.stderr)"
            )
        }
        // The store's conditional write refuses a second archive under the name (the writer could not check first).
        for (url, input) in [(big, dir + "/blob"), (small, dir + "/small")] {
            let again = try env.sealbak(
                ["pack", url, input, "--recipient", publicKey, "--quiet", "--s3-part-size", "5M"],
                role: .writer,
                password: false
            )
            #expect(again.status == 7 && again.stderr.contains("already exists"), "\(again.stderr)")
        }
        // Nothing else is allowed to the writer.
        let ls = try env.sealbak(["ls", env.url("roles/")], role: .writer)
        #expect(ls.status == 14 && ls.stderr.contains("AccessDenied"), "\(ls.stderr)")
        let verify = try env.sealbak(["verify", big, "--identity", dir + "/identity"], role: .writer)
        #expect(verify.status == 14, "\(verify.stderr)")
        let client = try env.client(.writer)
        let del = #expect(throws: SealbakError.self) { try client.delete(try S3Location(url: big)) }
        #expect(del?.code == .accessDenied)
        // What it wrote is complete and opens with the identity (read with the reader's key).
        let check = try env.sealbak(["verify", big, "--identity", dir + "/identity"], role: .reader)
        #expect(check.status == 0 && check.stdout.contains("OK:"), "\(check.stderr)")
        #expect(
            try env.client(.admin).listMultipartUploads(bucket: env.bucket, prefix: env.key("roles/")).isEmpty,
            "no upload left behind"
        )
    }

    /// The reader (and restorer) lists, verifies and unpacks, but may neither write nor delete.
    @Test func aReaderReadsButCannotWriteOrDelete() throws {
        let env = try MotoEnv.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("reader test\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        let url = env.url("reader/app-2026-11-01T000000Z.sbk")
        #expect(
            try env.sealbak(["pack", url, dir + "/notes.txt", "--insecure-test-kdf", "--quiet"], role: .writer).status
                == 0
        )
        let ls = try env.sealbak(["ls", env.url("reader/")], role: .reader)
        #expect(ls.status == 0 && ls.stdout.contains("1 archive(s)"), "\(ls.stdout)\(ls.stderr)")
        let out = dir + "/out"
        let unpack = try env.sealbak(["unpack", url, "--to", out], role: .reader)
        #expect(unpack.status == 0, "\(unpack.stderr)")
        #expect(
            FileManager.default.contentsEqual(atPath: out + "/notes.txt", andPath: dir + "/notes.txt"),
            "\(unpack.stderr)"
        )
        let pack = try env.sealbak(
            ["pack", env.url("reader/other.sbk"), dir + "/notes.txt", "--insecure-test-kdf", "--quiet"],
            role: .reader
        )
        #expect(pack.status == 14 && pack.stderr.contains("AccessDenied"), "\(pack.stderr)")
        let prune = try env.sealbak(["prune", env.url("reader/"), "--keep-daily", "1", "--verbose"], role: .reader)
        // One archive and keep-daily 1: nothing to delete, so the reader's prune succeeds without deleting.
        #expect(prune.status == 0 && prune.stdout.contains("deleted 0 of 1"), "\(prune.stdout)\(prune.stderr)")
        let del = #expect(throws: SealbakError.self) { try env.client(.reader).delete(try S3Location(url: url)) }
        #expect(del?.code == .accessDenied)
    }

    /// The pruner lists, reads headers and deletes, but may not write.
    @Test func aPrunerDeletesButCannotWrite() throws {
        let env = try MotoEnv.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
        for day in ["01", "02", "03"] {
            #expect(
                try env.sealbak(
                    [
                        "pack", env.url("pruner/app-2026-11-\(day)T000000Z.sbk"), dir + "/f", "--insecure-test-kdf",
                        "--quiet",
                    ],
                    role: .writer
                ).status == 0
            )
        }
        let prune = try env.sealbak(["prune", env.url("pruner/"), "--keep-last", "1"], role: .pruner)
        #expect(prune.status == 0 && prune.stdout.contains("deleted 2 of 3"), "\(prune.stdout)\(prune.stderr)")
        let left = try env.client(.admin).list(bucket: env.bucket, prefix: env.key("pruner/")).archives.map(\.key)
        #expect(left == [env.key("pruner/app-2026-11-03T000000Z.sbk")])
        let pack = try env.sealbak(
            ["pack", env.url("pruner/new.sbk"), dir + "/f", "--insecure-test-kdf", "--quiet"],
            role: .pruner
        )
        #expect(pack.status == 14, "\(pack.stderr)")
    }

    /// Immutable backups: the writer packs with --s3-object-lock (multipart and single PUT); nobody can delete
    /// the archive's version before its date, and prune keeps it, saying until when, while it deletes (the
    /// version of) an archive without a lock.
    @Test func objectLockedArchivesCannotBeDeletedAndPruneKeepsThem() throws {
        let env = try MotoEnv.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(TestArchive.noise(6 << 20, seed: 24)).write(to: URL(fileURLWithPath: dir + "/blob"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
        let b = env.lockBucket
        let locked = [
            env.url("lock/app-2026-11-01T000000Z.sbk", bucket: b),
            env.url("lock/app-2026-11-03T000000Z.sbk", bucket: b),
        ]
        let plain = env.url("lock/app-2026-11-02T000000Z.sbk", bucket: b)
        for (url, input) in [(locked[0], dir + "/blob"), (locked[1], dir + "/f")] {
            let r = try env.sealbak(
                [
                    "pack", url, input, "--insecure-test-kdf", "--quiet", "--s3-part-size", "5M", "--s3-object-lock",
                    "compliance:2d",
                ],
                role: .writer
            )
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(
            try env.sealbak(["pack", plain, dir + "/f", "--insecure-test-kdf", "--quiet"], role: .writer).status == 0
        )
        let admin = try env.client(.admin)
        for url in locked {
            let info = try #require(try admin.head(try S3Location(url: url)))
            #expect(info.lockMode == "COMPLIANCE" && info.isLocked(), "\(url): \(info)")
            let until = try #require(info.lockedUntil)
            #expect(until.timeIntervalSinceNow > 47 * 3600 && until.timeIntervalSinceNow < 49 * 3600, "\(until)")
            // Not even the administrator can delete the locked version.
            let e = #expect(throws: SealbakError.self) {
                try admin.delete(try S3Location(url: url), versionID: info.versionID)
            }
            #expect(e?.code == .accessDenied, "\(e?.message ?? "")")
        }
        let bad = try env.sealbak(
            ["pack", env.url("lock/x.sbk", bucket: b), dir + "/f", "--s3-object-lock", "forever:1d"],
            role: .writer
        )
        #expect(bad.status == 64, "\(bad.stderr)")
        // keep-last 1 keeps 11-03; 11-02 is deleted (its version, so the space is freed); 11-01 is locked.
        let prune = try env.sealbak(["prune", env.url("lock/", bucket: b), "--keep-last", "1"], role: .pruner)
        #expect(prune.status == 0, "\(prune.stdout)\(prune.stderr)")
        #expect(
            prune.stdout.contains("locked  app-2026-11-01T000000Z.sbk")
                && prune.stdout.contains("COMPLIANCE object lock until"),
            "\(prune.stdout)"
        )
        #expect(
            prune.stdout.contains("delete  app-2026-11-02T000000Z.sbk") && prune.stdout.contains("deleted 1 of 3"),
            "\(prune.stdout)"
        )
        let left = Set(try admin.list(bucket: b, prefix: env.key("lock/")).archives.map(\.key))
        #expect(left == Set(locked.map { String($0.dropFirst("s3://\(b)/".count)) }), "\(left)")
        let v = try env.sealbak(["verify", locked[0]], role: .reader)
        #expect(v.status == 0, "\(v.stderr)")
    }

    /// moto is a second implementation of the ordinary path: ranged reads and explicit content types.
    @Test func archivesAreStoredAsOctetStreamAndReadByRange() throws {
        let env = try MotoEnv.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(TestArchive.noise(6 << 20, seed: 23)).write(to: URL(fileURLWithPath: dir + "/blob"))
        let url = env.url("types/a.sbk")
        #expect(
            try env.sealbak(
                ["pack", url, dir + "/blob", "--insecure-test-kdf", "--quiet", "--s3-part-size", "5M"],
                role: .admin
            ).status == 0
        )
        let client = try env.client(.admin)
        let loc = try S3Location(url: url)
        let head = try client.send(S3Client.Call(method: "HEAD", bucket: loc.bucket, key: loc.key, what: "test"))
        #expect(head.headers["content-type"] == "application/octet-stream", "\(head.headers)")
        let list = try env.sealbak(["list", url], role: .admin)
        #expect(list.status == 0 && list.stdout.contains("blob"), "\(list.stderr)")
    }
}

/// moto's settings and role credentials, from the environment scripts/moto-server writes.
struct MotoEnv {
    static let env = ProcessInfo.processInfo.environment
    static var available: Bool { env["SEALBAK_TEST_MOTO_ENDPOINT"] != nil }
    static var required: Bool { env["SEALBAK_REQUIRE_MOTO"] == "1" }
    static let run = UUID().uuidString.prefix(8).lowercased()

    enum Role: String {
        case admin = "ADMIN"
        case writer = "WRITER"
        case reader = "READER"
        case pruner = "PRUNER"
    }

    var endpoint: String
    var bucket: String
    var lockBucket: String

    static func get() throws -> MotoEnv {
        guard let e = env["SEALBAK_TEST_MOTO_ENDPOINT"], let b = env["SEALBAK_TEST_MOTO_BUCKET"],
            let l = env["SEALBAK_TEST_MOTO_LOCK_BUCKET"]
        else {
            throw TestFailure(
                "no moto server: run the tests through scripts/test (it starts moto with scripts/moto-server)"
            )
        }
        return MotoEnv(endpoint: e, bucket: b, lockBucket: l)
    }

    func credentials(_ role: Role) throws -> (key: String, secret: String) {
        guard let k = MotoEnv.env["SEALBAK_TEST_MOTO_\(role.rawValue)_KEY"],
            let s = MotoEnv.env["SEALBAK_TEST_MOTO_\(role.rawValue)_SECRET"]
        else {
            throw TestFailure("scripts/moto-server wrote no credentials for the \(role) role")
        }
        return (k, s)
    }

    func url(_ key: String, bucket: String? = nil) -> String { "s3://\(bucket ?? self.bucket)/\(self.key(key))" }
    func key(_ key: String) -> String { "t-\(MotoEnv.run)/\(key)" }

    func client(_ role: Role) throws -> S3Client {
        var s = S3Settings()
        s.endpoint = endpoint
        let c = try credentials(role)
        s.credentials = SigV4.Credentials(accessKey: c.key, secretKey: c.secret)
        s.maxAttempts = 2
        s.backoffBase = 0.05
        return try S3Client(settings: s)
    }

    /// Runs sealbak with `role`'s key; `password: false` leaves SEALBAK_PASSWORD unset (recipient-only packs).
    @discardableResult
    func sealbak(
        _ args: [String],
        role: Role,
        password: Bool = true,
        extraEnv: [String: String] = [:]
    ) throws -> Proc.Result {
        let c = try credentials(role)
        var e = [
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": c.key, "AWS_SECRET_ACCESS_KEY": c.secret,
            "AWS_REGION": "us-east-1", "SEALBAK_S3_BACKOFF_BASE": "0.05",
        ]
        e["SEALBAK_PASSWORD"] = password ? "moto-test-password" : ""  // empty: removed from the environment
        for (k, v) in extraEnv { e[k] = v }
        return try Proc.sealbak(args, env: e, secrets: [c.secret])
    }
}
