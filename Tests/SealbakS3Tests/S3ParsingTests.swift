import Foundation
import Testing

@testable import SealbakS3

/// The small decisions behind strict HTTP, region redirects, uniform parts and Object Lock, without a server
/// (the behaviour itself is tested against SeaweedFS and moto in the other suites).
@Suite struct S3ParsingTests {
    @Test func contentRangeIsParsedStrictly() {
        #expect(S3Client.contentRange("bytes 0-9/100").map { [$0.first, $0.last] } == [0, 9])
        #expect(
            S3Client.contentRange("bytes 10485755-10485764/*").map { [$0.first, $0.last] } == [10_485_755, 10_485_764]
        )
        for bad in [nil, "", "bytes */100", "bytes 9-0/100", "items 0-9/100", "bytes 0-/100", "bytes x-9/100"] {
            #expect(S3Client.contentRange(bad) == nil, "\(bad ?? "nil")")
        }
    }

    @Test func redirectsNameTheirRegion() {
        func response(_ status: Int, _ headers: [String: String] = [:], _ body: String = "") -> HTTPResponse {
            HTTPResponse(status: status, headers: headers, body: Array(body.utf8))
        }
        #expect(S3Client.redirectRegion(response(301, ["x-amz-bucket-region": "eu-west-1"])) == "eu-west-1")
        #expect(
            S3Client.redirectRegion(
                response(301, [:], "<Error><Code>PermanentRedirect</Code><Region>ap-south-1</Region></Error>")
            ) == "ap-south-1"
        )
        #expect(
            S3Client.redirectRegion(
                response(400, [:], "<Error><Code>AuthorizationHeaderMalformed</Code><Region>us-west-2</Region></Error>")
            ) == "us-west-2"
        )
        #expect(
            S3Client.redirectRegion(
                response(400, ["x-amz-bucket-region": "us-west-2"], "<Error><Code>InvalidArgument</Code></Error>")
            ) == nil
        )
        #expect(S3Client.redirectRegion(response(301)) == nil, "no region named: reported, not followed")
        #expect(S3Client.redirectRegion(response(200, ["x-amz-bucket-region": "eu-west-1"])) == nil)
        #expect(S3Client.redirectRegion(response(301, ["x-amz-bucket-region": "eu-west-1/../x"])) == nil)
    }

    @Test func uniformPartsAreAutomaticOnlyForR2() {
        var s = S3Settings()
        #expect(!s.usesUniformParts, "AWS")
        s.endpoint = "https://0123abcd.r2.cloudflarestorage.com"
        #expect(s.usesUniformParts)
        s.uniformParts = false
        #expect(!s.usesUniformParts, "an explicit choice wins")
        s.endpoint = "http://127.0.0.1:9000"
        s.uniformParts = nil
        #expect(!s.usesUniformParts)
        s.uniformParts = true
        #expect(s.usesUniformParts)
    }

    @Test func objectLockHeadersAndState() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
        let lock = S3Settings.ObjectLock(mode: .compliance, period: 30 * 86400)
        let h = Dictionary(lock.headers(now: now), uniquingKeysWith: { a, _ in a })
        #expect(h["x-amz-object-lock-mode"] == "COMPLIANCE")
        #expect(h["x-amz-object-lock-retain-until-date"] == "2027-02-14T08:00:00Z")
        let info = S3Client.ObjectInfo(
            key: "k",
            size: 1,
            headers: [
                "etag": "\"e\"", "x-amz-object-lock-mode": "GOVERNANCE",
                "x-amz-object-lock-retain-until-date": "2027-02-14T08:00:00.000Z",
                "x-amz-version-id": "v1",
            ]
        )
        #expect(info.isLocked(now: now) && !info.isLocked(now: now.addingTimeInterval(31 * 86400)))
        #expect(info.versionID == "v1")
        #expect(info.lockHeaders.map(\.1) == ["GOVERNANCE", "2027-02-14T08:00:00Z"])
        let held = S3Client.ObjectInfo(
            key: "k",
            size: 1,
            headers: ["x-amz-object-lock-legal-hold": "ON", "x-amz-version-id": "null"]
        )
        #expect(held.isLocked(now: now) && held.versionID == nil)
    }
}
