import SealbakS3
import Testing

/// AWS Signature Version 4 against the published vectors: the aws-sig-v4-test-suite (generic service) and the
/// S3 single-chunk examples of the S3 documentation. The signer's canonical request, string to sign and
/// signature must match byte for byte.
@Suite struct SigV4Tests {
    static let suite = SigV4.Credentials(
        accessKey: "AKIDEXAMPLE",
        secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    )
    static let s3doc = SigV4.Credentials(
        accessKey: "AKIAIOSFODNN7EXAMPLE",
        secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )
    static let host = ("host", "example.amazonaws.com")
    static let date = ("x-amz-date", "20150830T123600Z")

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var method: String
        var path: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var canonical: String
        var signature: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "get-vanilla",
            method: "GET",
            path: "/",
            query: [],
            headers: [host, date],
            canonical:
                "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ),
        Case(
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            path: "/",
            query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [host, date],
            canonical:
                "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                + "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ),
        Case(
            name: "get-vanilla-query-unreserved",
            method: "GET",
            path: "/",
            query: [
                (
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                )
            ],
            headers: [host, date],
            canonical:
                "GET\n/\n"
                + "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
                + "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
                + "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        ),
        Case(
            name: "get-utf8",
            method: "GET",
            path: SigV4.uriEncode("/ሴ", keepSlash: true),
            query: [],
            headers: [host, date],
            canonical:
                "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"
        ),
        Case(
            name: "post-vanilla-query",
            method: "POST",
            path: "/",
            query: [("Param1", "value1")],
            headers: [host, date],
            canonical:
                "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
        ),
        Case(
            name: "get-header-value-trim",
            method: "GET",
            path: "/",
            query: [],
            headers: [host, ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""), date],
            canonical:
                "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b "
                + "c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n"
                + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        ),
        Case(
            name: "post-header-key-sort",
            method: "POST",
            path: "/",
            query: [],
            headers: [host, ("My-Header1", "value1"), date],
            canonical:
                "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\n"
                + "host;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"
        ),
    ]

    @Test(arguments: cases)
    func awsTestSuite(_ c: Case) {
        let s = SigV4.sign(
            method: c.method,
            path: c.path,
            query: c.query,
            headers: c.headers,
            payloadHash: SigV4.emptyPayloadHash,
            credentials: Self.suite,
            region: "us-east-1",
            service: "service",
            amzDate: "20150830T123600Z"
        )
        #expect(s.canonicalRequest == c.canonical)
        #expect(s.signature == c.signature)
        #expect(
            s.authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=\(s.signedHeaders), Signature=\(c.signature)"
        )
    }

    static let s3Host = ("Host", "examplebucket.s3.amazonaws.com")
    static let s3Date = ("x-amz-date", "20130524T000000Z")

    @Test func s3GetObjectWithRange() {
        let s = SigV4.sign(
            method: "GET",
            path: "/test.txt",
            query: [],
            headers: [
                Self.s3Host, ("Range", "bytes=0-9"), ("x-amz-content-sha256", SigV4.emptyPayloadHash), Self.s3Date,
            ],
            payloadHash: SigV4.emptyPayloadHash,
            credentials: Self.s3doc,
            region: "us-east-1",
            service: "s3",
            amzDate: "20130524T000000Z"
        )
        #expect(
            s.stringToSign
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                + "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        )
        #expect(s.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func s3PutObjectWithAKeyNeedingEncoding() {
        let payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        #expect(SigV4.uriEncode("/test$file.text", keepSlash: true) == "/test%24file.text")
        let s = SigV4.sign(
            method: "PUT",
            path: SigV4.uriEncode("/test$file.text", keepSlash: true),
            query: [],
            headers: [
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"), Self.s3Host, ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("x-amz-content-sha256", payload),
            ],
            payloadHash: payload,
            credentials: Self.s3doc,
            region: "us-east-1",
            service: "s3",
            amzDate: "20130524T000000Z"
        )
        #expect(
            s.canonicalRequest
                == "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 "
                + "GMT\nhost:examplebucket.s3.amazonaws.com\n"
                + "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
                + "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                + "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
                + "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        )
        #expect(s.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func s3SubresourceWithoutValueAndListQuery() {
        let h = [Self.s3Host, ("x-amz-content-sha256", SigV4.emptyPayloadHash), Self.s3Date]
        let lifecycle = SigV4.sign(
            method: "GET",
            path: "/",
            query: [("lifecycle", "")],
            headers: h,
            payloadHash: SigV4.emptyPayloadHash,
            credentials: Self.s3doc,
            region: "us-east-1",
            service: "s3",
            amzDate: "20130524T000000Z"
        )
        #expect(lifecycle.canonicalRequest.hasPrefix("GET\n/\nlifecycle=\n"))
        #expect(lifecycle.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        let list = SigV4.sign(
            method: "GET",
            path: "/",
            query: [("prefix", "J"), ("max-keys", "2")],
            headers: h,
            payloadHash: SigV4.emptyPayloadHash,
            credentials: Self.s3doc,
            region: "us-east-1",
            service: "s3",
            amzDate: "20130524T000000Z"
        )
        #expect(list.canonicalRequest.hasPrefix("GET\n/\nmax-keys=2&prefix=J\n"))
        #expect(list.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func encodingKeepsUnreservedAndEncodesTheRest() {
        #expect(SigV4.uriEncode("a b+c/d", keepSlash: false) == "a%20b%2Bc%2Fd")
        #expect(SigV4.uriEncode("backups/2026 11/é.sbk", keepSlash: true) == "backups/2026%2011/%C3%A9.sbk")
        #expect(SigV4.amzDate(.init(timeIntervalSince1970: 1_440_938_160)) == "20150830T123600Z")
    }
}

@Suite struct RetentionTests {
    static func at(_ s: String) -> Int64 { RetentionPolicy.timestamp(inName: s)! }

    @Test func namesCarryTimestamps() {
        #expect(RetentionPolicy.timestamp(inName: "app-2026-11-21T030000Z.sbk") == 1_795_230_000)
        #expect(RetentionPolicy.timestamp(inName: "app-20261121T030000Z.sbk") == 1_795_230_000)
        #expect(RetentionPolicy.timestamp(inName: "s3://b/x/app-2026-11-21.sbk") == 1_795_219_200)
        #expect(RetentionPolicy.timestamp(inName: "app-2026-11-21_03:00.sbk") == 1_795_230_000)
        #expect(RetentionPolicy.timestamp(inName: "app-2026-02-30.sbk") == nil, "no 30 February")
        #expect(RetentionPolicy.timestamp(inName: "app.sbk") == nil)
        #expect(
            RetentionPolicy.expandName("a-{now}.sbk", now: .init(timeIntervalSince1970: 1_795_230_000))
                == "a-2026-11-21T030000.000Z.sbk"
        )
    }

    /// 40 daily archives, two on some days: each rule keeps the newest of its buckets, newest first.
    @Test func rulesKeepTheNewestOfEachPeriod() {
        var candidates: [RetentionPolicy.Candidate] = []
        let day: Int64 = 86_400
        let start = Self.at("2026-10-13T010000Z")  // a Tuesday
        for d in 0..<40 {
            candidates.append(.init(name: "d\(d)-early", time: start + Int64(d) * day))
            if d % 3 == 0 { candidates.append(.init(name: "d\(d)-late", time: start + Int64(d) * day + 3600)) }
        }
        let decisions = RetentionPolicy(last: 2, daily: 3, weekly: 2, monthly: 2).apply(candidates)
        let kept = Dictionary(uniqueKeysWithValues: decisions.filter(\.keep).map { ($0.candidate.name, $0.reasons) })
        // Newest: day 39 (2026-11-21, a Saturday; 39 % 3 == 0, so "late" is newest that day).
        #expect(kept["d39-late"] == ["last 2", "daily 2026-11-21", "weekly 2026-W47", "monthly 2026-11"])
        #expect(kept["d39-early"] == ["last 2"])
        #expect(kept["d38-early"] == ["daily 2026-11-20"])
        #expect(kept["d37-early"] == ["daily 2026-11-19"])
        // The previous ISO week (W46) ends on Sunday 2026-11-15 = day 33, which has a late one.
        #expect(kept["d33-late"] == ["weekly 2026-W46"])
        // October's newest: 2026-10-31 = day 18, which has a late one.
        #expect(kept["d18-late"] == ["monthly 2026-10"])
        #expect(kept.count == 6)
        #expect(decisions.count == candidates.count)
        #expect(decisions.map(\.candidate.time) == decisions.map(\.candidate.time).sorted(by: >))
    }

    @Test func keepLastAloneAndEmptyPolicy() {
        let c = (0..<5).map { RetentionPolicy.Candidate(name: "a\($0)", time: Int64($0) * 100) }
        #expect(RetentionPolicy(last: 2).apply(c).filter(\.keep).map(\.candidate.name) == ["a4", "a3"])
        #expect(RetentionPolicy(last: 10).apply(c).allSatisfy { $0.keep })
        #expect(RetentionPolicy().isEmpty)
    }
}
