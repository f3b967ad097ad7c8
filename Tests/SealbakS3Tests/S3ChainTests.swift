import Foundation
import SealbakIO
import SealbakTestSupport
import Testing

@testable import SealbakS3

/// Incremental archives in object storage (Spec §14) against a real SeaweedFS: a chain packed with `--base s3://…`,
/// read back from the prefix (its bases found by their headers, fetched in ranges), `verify --chain`, and `prune`
/// keeping the bases of the archive it keeps.
@Suite(.serialized, .enabled(if: S3Env.available || S3Env.required)) struct S3ChainTests {
    @Test func aChainInObjectStorageIsPackedReadAndPrunedAsAWhole() throws {
        let env = try S3Env.get()
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = dir + "/docs"
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let big = TestArchive.noise(6 << 20, seed: 7)
        try Data(big).write(to: URL(fileURLWithPath: src + "/dump.sql"))
        try Data("# one\n".utf8).write(to: URL(fileURLWithPath: src + "/README.md"))
        let prefix = "chain-\(UUID().uuidString.prefix(8))/"
        let n1 = env.url(prefix + "app-2026-12-01T030000.000Z.sbk")
        let n2 = env.url(prefix + "app-2026-12-02T030000.000Z.sbk")
        let n3 = env.url(prefix + "app-2026-12-03T030000.000Z.sbk")
        var r = try env.sealbak(["pack", n1, "--docs", "docs=" + src, "--chained", "--insecure-test-kdf"])
        #expect(r.status == 0, "\(r.stderr)")
        // A row inserted in the middle: one chunk changes, the rest is referred to.
        var changed = big
        changed.insert(contentsOf: Array("an inserted row\n".utf8), at: big.count / 2)
        try Data(changed).write(to: URL(fileURLWithPath: src + "/dump.sql"))
        r = try env.sealbak(["pack", n2, "--docs", "docs=" + src, "--base", n1, "--insecure-test-kdf"])
        #expect(r.status == 0, "\(r.stderr)")
        try Data("# three\n".utf8).write(to: URL(fileURLWithPath: src + "/README.md"))
        r = try env.sealbak(["pack", n3, "--docs", "docs=" + src, "--base", n2, "--insecure-test-kdf"])
        #expect(r.status == 0, "\(r.stderr)")

        let client = try env.client()
        let objects = try client.list(bucket: env.bucket, prefix: env.key(prefix))
        let sizes = Dictionary(objects.map { (String($0.key.split(separator: "/").last!), $0.size) }) { a, _ in a }
        #expect(sizes["app-2026-12-02T030000.000Z.sbk"]! * 10 < sizes["app-2026-12-01T030000.000Z.sbk"]!)

        // Read from the prefix: the bases are found there, and only ranges of them are fetched.
        let out = dir + "/out"
        r = try env.sealbak(["unpack", n3, "--to", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/docs/docs/dump.sql")) == Data(changed))
        r = try env.sealbak(["verify", n3, "--chain"])
        #expect(r.status == 0 && r.stdout.contains("2 base archive(s) verified completely"), "\(r.stdout)\(r.stderr)")

        // prune keeps what the newest needs; a chain whose base is gone is refused by name (exit 19).
        r = try env.sealbak(["prune", env.url(prefix), "--keep-last", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let left = try client.list(bucket: env.bucket, prefix: env.key(prefix)).map(\.key).filter {
            $0.hasSuffix(".sbk")
        }
        #expect(left.count == 3, "\(left) \(r.stdout)")
        r = try env.sealbak(["verify", n3, "--chain-from", env.url("elsewhere/")])
        #expect(r.status == 19, "\(r.stderr)")
    }
}
