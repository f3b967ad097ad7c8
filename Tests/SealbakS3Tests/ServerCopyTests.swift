import Foundation
import SealbakTestSupport
import Testing

@testable import SealbakS3

/// Key changes and `rekey` on a remote archive when the store cannot copy parts (UploadPartCopy answered with
/// 501, or with 200 and no result: injected by scripts/flaky-proxy.py in front of SeaweedFS), when server copies
/// are turned off, and with parts of one size.
@Suite(.serialized, .enabled(if: S3Env.available || S3Env.required)) struct ServerCopyTests {
    private func packed(_ env: S3Env, _ name: String, bytes: Int) throws -> String {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(TestArchive.noise(bytes, seed: 41)).write(to: URL(fileURLWithPath: dir + "/blob"))
        let url = env.url(name)
        let r = try env.sealbak(["pack", url, dir + "/blob", "--insecure-test-kdf", "--quiet", "--s3-part-size", "5M"])
        #expect(r.status == 0, "\(r.stderr)")
        return url
    }

    @Test func keyChangesStreamTheBodyWhenTheStoreCannotCopy() throws {
        let env = try S3Env.get()
        let url = try packed(env, "nocopy/a.sbk", bytes: 14 << 20)
        var password = "s3-test-password"
        for mode in ["copy-empty", "copy-501"] {
            let proxy = try FlakyProxy(upstream: env.endpoint, mode: mode, times: -1)
            defer { proxy.stop() }
            let new = "new-\(mode)-\(UUID().uuidString)"
            let r = try env.sealbak(
                ["key", "passwd", url, "--slot", "1", "--insecure-test-kdf"],
                endpoint: proxy.endpoint,
                extraEnv: ["SEALBAK_PASSWORD": password, "SEALBAK_NEW_PASSWORD": new],
                secrets: [password, new]
            )
            #expect(r.status == 0, "\(mode): \(r.stderr)")
            #expect(
                r.stderr.contains("the store cannot copy parts, so the body was streamed through sealbak"),
                "\(mode): \(r.stderr)"
            )
            #expect(proxy.stats()["faults"] == 1, "\(mode): one copy was tried, then none")
            password = new
            let v = try env.sealbak(["verify", url], extraEnv: ["SEALBAK_PASSWORD": password], secrets: [password])
            #expect(v.status == 0 && v.stdout.contains("OK:"), "\(mode): \(v.stderr)")
        }
        #expect(try env.client().listMultipartUploads(bucket: env.bucket, prefix: env.key("nocopy/")).isEmpty)
    }

    @Test func rekeyStreamsTheCopyWhenTheStoreCannotCopy() throws {
        let env = try S3Env.get()
        let url = try packed(env, "rekey-nocopy/a.sbk", bytes: 12 << 20)
        let proxy = try FlakyProxy(upstream: env.endpoint, mode: "copy-empty", times: -1)
        defer { proxy.stop() }
        let new = "rekeyed-\(UUID().uuidString)"
        let r = try env.sealbak(
            ["rekey", url, "--insecure-test-kdf", "--s3-part-size", "5M"],
            endpoint: proxy.endpoint,
            extraEnv: ["SEALBAK_NEW_PASSWORD": new],
            secrets: [new]
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("streamed through sealbak (the store cannot copy parts)"), "\(r.stderr)")
        let v = try env.sealbak(["verify", url], extraEnv: ["SEALBAK_PASSWORD": new], secrets: [new])
        #expect(v.status == 0, "\(v.stderr)")
        let left = try env.client().list(bucket: env.bucket, prefix: env.key("rekey-nocopy/")).archives.map(\.key)
        #expect(left == [env.key("rekey-nocopy/a.sbk")], "no temporary object left: \(left)")
        #expect(try env.client().listMultipartUploads(bucket: env.bucket, prefix: env.key("rekey-nocopy/")).isEmpty)
    }

    /// --s3-no-server-copy: not one UploadPartCopy is sent.
    @Test func noServerCopyStreamsEverything() throws {
        let env = try S3Env.get()
        let url = try packed(env, "streamed/a.sbk", bytes: 12 << 20)
        let proxy = try FlakyProxy(upstream: env.endpoint, mode: "http-pass", times: 0, match: "/a.sbk?")
        defer { proxy.stop() }
        let r = try env.sealbak(
            ["key", "passwd", url, "--slot", "1", "--insecure-test-kdf", "--s3-no-server-copy"],
            endpoint: proxy.endpoint,
            extraEnv: ["SEALBAK_NEW_PASSWORD": "streamed-pw"],
            secrets: ["streamed-pw"]
        )
        #expect(r.status == 0 && r.stderr.contains("--s3-no-server-copy"), "\(r.stderr)")
        let parts = try #require(proxy.parts())
        #expect(!parts.isEmpty && parts.allSatisfy { $0.copy == false }, "\(parts)")
        #expect(try env.sealbak(["verify", "-q", url], extraEnv: ["SEALBAK_PASSWORD": "streamed-pw"]).status == 0)
    }

    /// --s3-uniform-parts: the header rewrite's parts are all of the part size but the last, copies included.
    @Test func uniformPartsAreOfOneSize() throws {
        let env = try S3Env.get()
        let url = try packed(env, "uniform/a.sbk", bytes: 17 << 20)
        let proxy = try FlakyProxy(upstream: env.endpoint, mode: "http-pass", times: 0, match: "/a.sbk?")
        defer { proxy.stop() }
        let r = try env.sealbak(
            ["key", "passwd", url, "--slot", "1", "--insecure-test-kdf", "--s3-uniform-parts", "--s3-part-size", "5M"],
            endpoint: proxy.endpoint,
            extraEnv: ["SEALBAK_NEW_PASSWORD": "uniform-pw"],
            secrets: ["uniform-pw"]
        )
        #expect(r.status == 0, "\(r.stderr)")
        let parts = try #require(proxy.parts()).sorted { $0.number < $1.number }
        #expect(parts.count == 4 && parts.contains { $0.copy }, "\(parts)")
        #expect(parts.dropLast().allSatisfy { $0.bytes == 5 << 20 } && (parts.last?.bytes ?? 0) <= 5 << 20, "\(parts)")
        #expect(try env.sealbak(["verify", "-q", url], extraEnv: ["SEALBAK_PASSWORD": "uniform-pw"]).status == 0)
        // Packs keep one part size too (no doubling after 1,000 parts).
        #expect(S3Upload.partSize(base: 5 << 20, number: 1001) == 10 << 20)
        #expect(S3Upload.partSize(base: 5 << 20, number: 1001, uniform: true) == 5 << 20)
    }
}

extension FlakyProxy {
    /// The UploadPart / UploadPartCopy requests the proxy saw (HTTP-level modes).
    func parts() -> [(number: Int, bytes: Int, copy: Bool)]? {
        guard let d = FileManager.default.contents(atPath: dir + "/stats"),
            let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
            let list = o["parts"] as? [[Int]]
        else { return nil }
        return list.map { ($0[0], $0[1], $0[2] == 1) }
    }
}
