import Foundation
import SealbakCrypto
import SealbakIO

/// AWS Signature Version 4 (docs: "Signing AWS API requests", "Authenticating Requests: Using the
/// Authorization Header"), written against the specification and tested with its published vectors.
///
/// The canonical request is METHOD, canonical URI, canonical query, canonical headers, signed headers and the
/// payload hash, one per line. S3 differs from the other services in two ways: the URI is encoded once and not
/// normalised, and the payload hash is sent as `x-amz-content-sha256`.
package enum SigV4 {
    package struct Credentials: Sendable {
        package var accessKey: String
        package var secretKey: String
        package var sessionToken: String?

        package init(accessKey: String, secretKey: String, sessionToken: String? = nil) {
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.sessionToken = sessionToken
        }
    }

    /// What a signature covers and yields (kept for tests against the published intermediate values).
    package struct Signed: Sendable {
        package var canonicalRequest: String
        package var stringToSign: String
        package var signedHeaders: String
        package var signature: String
        package var authorization: String
    }

    /// SHA-256 of the empty payload.
    package static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, everything else is `%XX`
    /// (upper case) byte by byte; `/` stays only when `keepSlash` (object key paths).
    package static func uriEncode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// The query string in canonical form: parameters encoded, sorted by name then value, `name=value` joined by `&`.
    package static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (uriEncode($0.0, keepSlash: false), uriEncode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Lower-cased names; values trimmed with inner runs of spaces collapsed; several values of one name joined by
    /// commas.
    static func canonicalHeaders(_ headers: [(String, String)]) -> (String, String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let trimmed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[name.lowercased(), default: []].append(trimmed)
        }
        let names = merged.keys.sorted()
        let canonical = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (canonical, names.joined(separator: ";"))
    }

    /// Signs a request. `path` is the canonical URI (already encoded, starting with `/`); `headers` must include
    /// `host` and every header to be signed (`x-amz-date` is taken from `amzDate`, added by the caller).
    package static func sign(
        method: String,
        path: String,
        query: [(String, String)],
        headers: [(String, String)],
        payloadHash: String,
        credentials: Credentials,
        region: String,
        service: String,
        amzDate: String
    ) -> Signed {
        let (canonicalHeaders, signedHeaders) = canonicalHeaders(headers)
        let canonicalRequest = [method, path, canonicalQuery(query), canonicalHeaders, signedHeaders, payloadHash]
            .joined(separator: "\n")
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(SHA256Hasher.hash(Array(canonicalRequest.utf8)))]
            .joined(separator: "\n")
        var key = HMACSHA256.mac(key: Array("AWS4\(credentials.secretKey)".utf8), message: Array(day.utf8))
        for part in [region, service, "aws4_request"] { key = HMACSHA256.mac(key: key, message: Array(part.utf8)) }
        let signature = hex(HMACSHA256.mac(key: key, message: Array(stringToSign.utf8)))
        wipe(&key)
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKey)/\(scope), SignedHeaders=\(signedHeaders), "
            + "Signature=\(signature)"
        return Signed(
            canonicalRequest: canonicalRequest,
            stringToSign: stringToSign,
            signedHeaders: signedHeaders,
            signature: signature,
            authorization: authorization
        )
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` in UTC.
    package static func amzDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}
