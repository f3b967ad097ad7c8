import Foundation
import SealbakTestSupport
import Testing

@testable import SealbakS3

/// Answers a real store does not give, injected by scripts/flaky-proxy.py between sealbak and SeaweedFS: a
/// ranged GET answered with 200 or the wrong Content-Range, a redirect to another region. Plus the content
/// type every archive is stored with.
@Suite(.serialized, .enabled(if: S3Env.available || S3Env.required)) struct StrictHTTPTests {
    private func packed(_ env: S3Env, _ name: String, bytes: Int, seed: UInt64) throws -> String {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(TestArchive.noise(bytes, seed: seed)).write(to: URL(fileURLWithPath: dir + "/blob"))
        let url = env.url(name)
        let r = try env.sealbak(["pack", url, dir + "/blob", "--insecure-test-kdf", "--quiet", "--s3-part-size", "5M"])
        #expect(r.status == 0, "\(r.stderr)")
        return url
    }

    /// A ranged GET must come back 206 with exactly the range asked for; anything else is not used, but asked
    /// again, and a store that never answers properly is an error, not wrong bytes.
    @Test func aRangedReadIsUsedOnlyWhenAnswered206WithItsRange() throws {
        let env = try S3Env.get()
        let url = try packed(env, "strict/range.sbk", bytes: 7 << 20, seed: 31)
        for mode in ["range-200", "range-shift"] {
            let proxy = try FlakyProxy(upstream: env.endpoint, mode: mode, times: 2)
            defer { proxy.stop() }
            let v = try env.sealbak(["verify", url], endpoint: proxy.endpoint)
            #expect(v.status == 0 && v.stdout.contains("OK:"), "\(mode): \(v.stderr)")
            #expect(proxy.stats()["faults"] == 2, "\(mode): both bad answers were given (and refused)")
        }
        let always = try FlakyProxy(upstream: env.endpoint, mode: "range-200", times: -1)
        defer { always.stop() }
        let r = try env.sealbak(["list", url, "--s3-max-attempts", "3"], endpoint: always.endpoint)
        #expect(r.status == 8, "\(r.stderr)")
        #expect(r.stderr.contains("does not answer ranged reads correctly (HTTP 200 instead of 206)"), "\(r.stderr)")
    }

    /// A redirect naming the bucket's region is followed once, signed for that region; a second one names the
    /// region to configure.
    @Test func aRegionRedirectIsFollowedOnceThenReported() throws {
        let env = try S3Env.get()
        let url = try packed(env, "strict/region.sbk", bytes: 1000, seed: 32)
        do {
            let proxy = try FlakyProxy(upstream: env.endpoint, mode: "region-301", times: 1)
            defer { proxy.stop() }
            let r = try env.sealbak(["list", url], endpoint: proxy.endpoint)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(proxy.stats()["faults"] == 1)
        }
        let proxy = try FlakyProxy(upstream: env.endpoint, mode: "region-301", times: -1)
        defer { proxy.stop() }
        let r = try env.sealbak(["list", url], endpoint: proxy.endpoint)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("give --s3-region eu-west-1"), "\(r.stderr)")
        // A redirect that names no region (the HEAD that opens an archive has no body) cannot be followed: it is
        // reported as such, with what to check.
        let blind = try FlakyProxy(upstream: env.endpoint, mode: "region-301", times: -1, region: "")
        defer { blind.stop() }
        let b = try env.sealbak(["list", url], endpoint: blind.endpoint)
        #expect(b.status == 64, "\(b.stderr)")
        #expect(
            b.stderr.contains("the storage redirected the request (HTTP 301)")
                && b.stderr.contains("Check --s3-region and --s3-endpoint"),
            "\(b.stderr)"
        )
    }

    /// Archives are stored as application/octet-stream, multipart or single PUT (libcurl's default form type on
    /// the empty POST that starts an upload must not become the object's type).
    @Test func archivesAreStoredAsOctetStream() throws {
        let env = try S3Env.get()
        let client = try env.client()
        for (name, size) in [("strict/multi.sbk", 6 << 20), ("strict/single.sbk", 1000)] {
            let url = try packed(env, name, bytes: size, seed: 33)
            let loc = try S3Location(url: url)
            let head = try client.send(S3Client.Call(method: "HEAD", bucket: loc.bucket, key: loc.key, what: "test"))
            #expect(head.headers["content-type"] == "application/octet-stream", "\(name): \(head.headers)")
        }
    }
}
