import Foundation
import SealbakCrypto
import SealbakIO
import SealbakSync

/// `s3://BUCKET/KEY`.
package struct S3Location: Sendable, CustomStringConvertible, Hashable {
    package var bucket: String
    package var key: String

    package init(bucket: String, key: String) {
        self.bucket = bucket
        self.key = key
    }

    /// Parses `s3://BUCKET/KEY`; the key may be empty (a bucket or prefix) only when `allowEmptyKey`.
    package init(url: String, allowEmptyKey: Bool = false) throws(SealbakError) {
        guard url.hasPrefix("s3://") else { throw SealbakError(.usage, "\(url) is not an s3:// URL") }
        let rest = url.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        let key = String(rest.dropFirst(bucket.count + 1))
        guard !bucket.isEmpty, bucket.utf8.count <= 63,
            bucket.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" })
        else {
            throw SealbakError(.usage, "\(url): the bucket name is missing or invalid; write s3://BUCKET/PATH/NAME.sbk")
        }
        if !allowEmptyKey && (key.isEmpty || key.hasSuffix("/")) {
            throw SealbakError(
                .usage,
                "\(url) names a bucket or a folder; give the archive's name, e.g. s3://\(bucket)/\(key)backup.sbk"
            )
        }
        if key.utf8.count > 1024 { throw SealbakError(.usage, "\(url): object keys are limited to 1024 bytes") }
        self.bucket = bucket
        self.key = key
    }

    package var description: String { "s3://\(bucket)/\(key)" }
}

/// How to reach the store and how to transfer. Secrets stay in `credentials` and are never printed.
package struct S3Settings: Sendable {
    package var endpoint: String?
    package var region = "us-east-1"
    /// Path-style (`ENDPOINT/BUCKET/KEY`) or virtual-hosted (`BUCKET.HOST/KEY`) addressing; nil: path-style for a
    /// custom endpoint, virtual-hosted for AWS.
    package var pathStyle: Bool?
    package var credentials = SigV4.Credentials(accessKey: "", secretKey: "")
    /// Size of the first upload parts; later parts grow so an archive of any size fits in 10,000 parts.
    package var partSize = 16 << 20
    /// Parts uploaded at once (memory: parts in flight x part size).
    package var parallelParts = 4
    /// Let the store copy unchanged bytes (UploadPartCopy) in key changes and `rekey`; false streams them
    /// through sealbak (`--s3-no-server-copy`). A store that cannot copy is detected and streamed anyway.
    package var serverCopy = true
    /// Every part but the last of one size (`--s3-uniform-parts`): no doubling in packs, and key changes cut
    /// parts of the part size. nil: only for stores known to require it (Cloudflare R2).
    package var uniformParts: Bool?
    /// S3 Object Lock for the archives written (`--s3-object-lock MODE:AGE`): they can be neither deleted nor
    /// overwritten (as versions) by anyone until the retention date; COMPLIANCE not even by the account's root.
    package var objectLock: ObjectLock?
    /// Requests are retried at most this many times in all ...
    package var maxAttempts = 8
    /// ... and never for longer than this many seconds since the first attempt.
    package var maxRetrySeconds: Double = 120
    /// Told about each retry as it is scheduled (what failed, which attempt, how long until the next), so that a
    /// store that is down is not 25 seconds of silence; nil: retry quietly.
    package var onRetry: (@Sendable (String) -> Void)?
    /// First backoff and its cap (exponential with full jitter).
    package var backoffBase: Double = 0.25
    package var backoffCap: Double = 10

    package init() {}

    /// A retention mode and period; the retain-until date is the time of the write plus `period`.
    package struct ObjectLock: Sendable, Equatable {
        package enum Mode: String, Sendable {
            case governance = "GOVERNANCE"
            case compliance = "COMPLIANCE"
        }
        package var mode: Mode
        package var period: TimeInterval

        package init(mode: Mode, period: TimeInterval) {
            self.mode = mode
            self.period = period
        }

        /// The request headers that lock an object written now.
        func headers(now: Date = Date()) -> [(String, String)] {
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime]
            return [
                ("x-amz-object-lock-mode", mode.rawValue),
                ("x-amz-object-lock-retain-until-date", f.string(from: now.addingTimeInterval(period))),
            ]
        }
    }

    /// The standard AWS variables: AWS_ENDPOINT_URL(_S3), AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
    package static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> S3Settings {
        var s = S3Settings()
        s.endpoint = env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"]
        s.region = env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1"
        s.credentials = SigV4.Credentials(
            accessKey: env["AWS_ACCESS_KEY_ID"] ?? "",
            secretKey: env["AWS_SECRET_ACCESS_KEY"] ?? "",
            sessionToken: env["AWS_SESSION_TOKEN"]
        )
        return s
    }

    var usesPathStyle: Bool { pathStyle ?? (endpoint != nil) }

    /// Whether parts must be of one size: asked for, or a store that documents the requirement (R2: "all
    /// parts except the last must be the same size").
    package var usesUniformParts: Bool {
        if let uniformParts { return uniformParts }
        guard let endpoint, let host = URLComponents(string: endpoint)?.host?.lowercased() else { return false }
        return host.hasSuffix(".r2.cloudflarestorage.com")
    }

    /// The endpoint split into scheme and authority (`host[:port]`); AWS's for `region` when none is set.
    func origin(region: String? = nil) throws(SealbakError) -> (scheme: String, authority: String) {
        let e = endpoint ?? "https://s3.\(region ?? self.region).amazonaws.com"
        guard let comps = URLComponents(string: e), let scheme = comps.scheme, scheme == "http" || scheme == "https",
            let host = comps.host, !host.isEmpty
        else {
            throw SealbakError(.usage, "the S3 endpoint \(e) is not an http:// or https:// URL")
        }
        var authority = host.contains(":") ? "[\(host)]" : host
        if let port = comps.port, !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
            authority += ":\(port)"
        }
        return (scheme, authority)
    }
}

/// An S3 client: signs each request (SigV4), retries with exponential backoff and jitter on 5xx, throttling
/// and dropped connections (bounded in count and time), and maps the store's errors to `SealbakError`.
package final class S3Client: Sendable {
    package let settings: S3Settings
    private let pool = ConnectionPool()
    /// Per bucket: whether the store honours conditional completions (`probeConditionalWrites`).
    private let conditionalWrites = Locked<[String: Bool]>([:])
    /// The region the store named in a redirect (`x-amz-bucket-region`), used from then on instead of
    /// `settings.region`.
    private let redirectedRegion = Locked<String?>(nil)

    /// The region requests are signed for (and, without an endpoint, whose AWS host they go to).
    package var region: String { redirectedRegion.withLock { $0 } ?? settings.region }

    package init(settings: S3Settings) throws(SealbakError) {
        if settings.credentials.accessKey.isEmpty || settings.credentials.secretKey.isEmpty {
            throw SealbakError(
                .accessDenied,
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or give --s3-credentials-file)"
            )
        }
        _ = try settings.origin()
        self.settings = settings
    }

    /// A request to send (signed anew for each attempt).
    struct Call {
        var method: String
        var bucket: String
        var key: String
        var query: [(String, String)] = []
        var headers: [(String, String)] = []
        /// What the user is told this was, e.g. "upload part 3 of s3://b/k".
        var what: String
    }

    private func urlAndHost(
        bucket: String,
        key: String,
        query: [(String, String)]
    ) throws(SealbakError) -> (url: String, host: String, path: String) {
        let (scheme, authority) = try settings.origin(region: region)
        let encodedKey = SigV4.uriEncode(key, keepSlash: true)
        let host: String
        let path: String
        if settings.usesPathStyle {
            host = authority
            path = "/" + SigV4.uriEncode(bucket, keepSlash: false) + (key.isEmpty ? "" : "/" + encodedKey)
        } else {
            host = "\(bucket).\(authority)"
            path = "/" + encodedKey
        }
        let q = SigV4.canonicalQuery(query)
        return ("\(scheme)://\(host)\(path)\(q.isEmpty ? "" : "?" + q)", host, path)
    }

    /// Signs and sends `call` once; a redirect to the bucket's region is followed once (the region is then
    /// kept for every later request), a second one is an error naming the region to configure.
    private func attempt(
        _ call: Call,
        body: UnsafeRawBufferPointer?,
        payloadHash: String,
        sink: ((UnsafeRawBufferPointer) -> Bool)?,
        accepts: ((Int, [String: String]) -> Bool)? = nil
    ) throws(SealbakError) -> Result<HTTPResponse, TransportError> {
        let first = try attemptOnce(call, body: body, payloadHash: payloadHash, sink: sink, accepts: accepts)
        guard case .success(let r) = first, let other = S3Client.redirectRegion(r), other != region else {
            return first
        }
        let from = region
        redirectedRegion.withLock { $0 = other }
        let second = try attemptOnce(call, body: body, payloadHash: payloadHash, sink: sink, accepts: accepts)
        if case .success(let r2) = second, let again = S3Client.redirectRegion(r2) {
            throw SealbakError(
                .usage,
                "\(call.what): the bucket s3://\(call.bucket) is in another region than \(from) (the storage named "
                    + "\(again)); give --s3-region \(again) or set AWS_REGION=\(again)"
            )
        }
        return second
    }

    /// The region a redirect or a wrong-region refusal names: 301/307 (PermanentRedirect, TemporaryRedirect) or
    /// 400 AuthorizationHeaderMalformed / IllegalLocationConstraintException, with `x-amz-bucket-region` or
    /// `<Region>` in the error document.
    static func redirectRegion(_ r: HTTPResponse) -> String? {
        guard [301, 307, 400].contains(r.status) else { return nil }
        let doc = XMLElement.parse(r.body)
        if r.status == 400,
            !["AuthorizationHeaderMalformed", "IllegalLocationConstraintException"].contains(doc?.value("Code") ?? "")
        {
            return nil
        }
        let named = r.headers["x-amz-bucket-region"] ?? doc?.value("Region")
        guard let named, !named.isEmpty, named.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            return nil
        }
        return named
    }

    private func attemptOnce(
        _ call: Call,
        body: UnsafeRawBufferPointer?,
        payloadHash: String,
        sink: ((UnsafeRawBufferPointer) -> Bool)?,
        accepts: ((Int, [String: String]) -> Bool)?
    ) throws(SealbakError) -> Result<HTTPResponse, TransportError> {
        let (url, host, path) = try urlAndHost(bucket: call.bucket, key: call.key, query: call.query)
        let amzDate = SigV4.amzDate(Date())
        var headers = call.headers
        // An explicit type on every request with a body: otherwise libcurl adds an unsigned
        // "application/x-www-form-urlencoded" to a POST, which the store keeps as the archive's type.
        if (call.method == "PUT" || call.method == "POST")
            && !headers.contains(where: { $0.0.lowercased() == "content-type" })
        {
            headers.append(("content-type", "application/octet-stream"))
        }
        headers.append(("host", host))
        headers.append(("x-amz-date", amzDate))
        headers.append(("x-amz-content-sha256", payloadHash))
        if let token = settings.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        let signed = SigV4.sign(
            method: call.method,
            path: path,
            query: call.query,
            headers: headers,
            payloadHash: payloadHash,
            credentials: settings.credentials,
            region: region,
            service: "s3",
            amzDate: amzDate
        )
        headers.append(("Authorization", signed.authorization))
        let connection = pool.borrow()
        do throws(TransportError) {
            let response = try connection.perform(
                HTTPRequest(method: call.method, url: url, headers: headers),
                body: body,
                sink: sink,
                accepts: accepts
            )
            pool.giveBack(connection)
            return .success(response)
        } catch {
            // A failed connection is not reused.
            return .failure(error)
        }
    }

    /// Whether a response is worth another attempt (Amazon's advice: 5xx, throttling, request timeouts).
    static func isRetryable(_ r: HTTPResponse) -> Bool {
        if [500, 502, 503, 504, 429].contains(r.status) { return true }
        if r.status == 400, let code = XMLElement.parse(r.body)?.value("Code"),
            ["RequestTimeout", "SlowDown", "Throttling", "ThrottlingException"].contains(code)
        {
            return true
        }
        return false
    }

    /// Retry bookkeeping: sleeps before the next attempt, or throws once the count or the time is used up.
    struct Backoff {
        let settings: S3Settings
        let start = Date()
        var attempt = 0

        mutating func wait(after failure: String, what: String) throws(SealbakError) {
            attempt += 1
            let elapsed = Date().timeIntervalSince(start)
            let delay = Double.random(
                in: 0...min(settings.backoffCap, settings.backoffBase * Double(1 << min(attempt, 20)))
            )
            if attempt >= settings.maxAttempts || elapsed + delay > settings.maxRetrySeconds {
                throw SealbakError(
                    .unavailable,
                    "\(what) failed after \(attempt) attempt(s) over \(String(format: "%.1f", elapsed)) s: "
                        + "\(failure). Check that the storage endpoint is reachable, then run the command again"
                )
            }
            settings.onRetry?(
                "\(what): \(failure); attempt \(attempt + 1) of \(settings.maxAttempts) in "
                    + "\(String(format: "%.1f", delay)) s (giving up after \(Int(settings.maxRetrySeconds)) s)"
            )
            usleep(UInt32(delay * 1_000_000))
        }
    }

    /// Sends `call` with retries; returns the response when its status is in `accept`, else throws the
    /// store's error in words.
    @discardableResult
    func send(
        _ call: Call,
        body: UnsafeRawBufferPointer? = nil,
        payloadHash: String? = nil,
        accept: Set<Int> = [200]
    ) throws(SealbakError) -> HTTPResponse {
        let hash = payloadHash ?? body.map { S3Client.checksum($0).payloadHash } ?? SigV4.emptyPayloadHash
        var backoff = Backoff(settings: settings)
        while true {
            switch try attempt(call, body: body, payloadHash: hash, sink: nil) {
            case .failure(let t):
                try backoff.wait(after: t.message, what: call.what)
            case .success(let r):
                if accept.contains(r.status) { return r }
                if S3Client.isRetryable(r) {
                    try backoff.wait(after: S3Client.describe(r), what: call.what)
                    continue
                }
                throw S3Client.failure(r, what: call.what)
            }
        }
    }

    static func describe(_ r: HTTPResponse) -> String {
        let xml = XMLElement.parse(r.body)
        let message =
            xml?.value("Message").map { ": " + $0.trimmingCharacters(in: CharacterSet(charactersIn: ". \n")) } ?? ""
        guard let code = xml?.value("Code") else { return "HTTP \(r.status)\(message)" }
        return "\(code) (HTTP \(r.status))\(message)"
    }

    /// Maps the store's answer to a typed error naming what failed and what to do.
    static func failure(_ r: HTTPResponse, what: String) -> SealbakError {
        let code = XMLElement.parse(r.body)?.value("Code") ?? ""
        let said = describe(r)
        switch (r.status, code) {
        case (403, "InvalidAccessKeyId"), (403, "SignatureDoesNotMatch"), (403, "InvalidToken"), (400, "ExpiredToken"),
            (403, "ExpiredToken"):
            return SealbakError(
                .accessDenied,
                "\(what): the storage refused the credentials: \(said). Check AWS_ACCESS_KEY_ID, "
                    + "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
            )
        case (403, _), (401, _):
            return SealbakError(
                .accessDenied,
                "\(what): access denied: \(said). Check the credentials and the bucket's permissions"
            )
        case (404, "NoSuchBucket"):
            return SealbakError(.notFound, "\(what): the bucket does not exist: \(said)")
        case (404, _):
            return SealbakError(.notFound, "\(what): no such object: \(said)")
        case (301, _), (307, _):
            return SealbakError(
                .usage,
                "\(what): the storage redirected the request (\(said)): the bucket is in another region or served by "
                    + "another endpoint. Check --s3-region and --s3-endpoint"
            )
        default:
            return SealbakError(.io, "\(what): the storage answered \(said)")
        }
    }

    // MARK: Operations

    package struct ObjectInfo: Sendable {
        package var key: String
        package var size: UInt64
        package var etag: String
        /// Object Lock as HEAD reports it (only to a credential that may read the retention).
        package var lockMode: String?
        package var lockedUntil: Date?
        package var legalHold = false
        /// The version HEAD answered for, in a versioned bucket (object lock needs versioning).
        package var versionID: String?

        init(key: String, size: UInt64, etag: String) {
            self.key = key
            self.size = size
            self.etag = etag
        }

        init(key: String, size: UInt64, headers: [String: String]) {
            self.init(key: key, size: size, etag: headers["etag"] ?? "")
            lockMode = headers["x-amz-object-lock-mode"]
            lockedUntil = headers["x-amz-object-lock-retain-until-date"].flatMap(S3Client.parseTime)
            legalHold = headers["x-amz-object-lock-legal-hold"]?.uppercased() == "ON"
            versionID = headers["x-amz-version-id"].flatMap { $0.isEmpty || $0 == "null" ? nil : $0 }
        }

        /// Whether the store refuses to delete this version now (retention not yet over, or a legal hold).
        package func isLocked(now: Date = Date()) -> Bool { legalHold || (lockedUntil.map { $0 > now } ?? false) }

        /// The headers that give a rewritten copy of this object the same lock.
        var lockHeaders: [(String, String)] {
            guard let lockMode, let lockedUntil else {
                return legalHold ? [("x-amz-object-lock-legal-hold", "ON")] : []
            }
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime]
            return [
                ("x-amz-object-lock-mode", lockMode),
                ("x-amz-object-lock-retain-until-date", f.string(from: lockedUntil)),
            ]
                + (legalHold ? [("x-amz-object-lock-legal-hold", "ON")] : [])
        }
    }

    /// HEAD: nil when the object does not exist.
    package func head(_ loc: S3Location) throws(SealbakError) -> ObjectInfo? {
        let r = try send(
            Call(method: "HEAD", bucket: loc.bucket, key: loc.key, what: "reading \(loc)"),
            accept: [200, 403, 404]
        )
        if r.status == 403 {
            // HEAD answers carry no error document: ask the bucket, whose answer names the reason.
            try checkBucket(loc.bucket)
            throw SealbakError(
                .accessDenied,
                "reading \(loc): access denied. Check the credentials' permissions on this object"
            )
        }
        if r.status == 404 {
            // HEAD has no body: tell a missing bucket from a missing key with a bucket request.
            try checkBucket(loc.bucket)
            return nil
        }
        guard let length = r.headers["content-length"].flatMap(UInt64.init) else {
            throw SealbakError(.io, "reading \(loc): the storage sent no Content-Length")
        }
        return ObjectInfo(key: loc.key, size: length, headers: r.headers)
    }

    /// What a writer learns about a name before writing it.
    package enum Existence: Sendable {
        case exists(ObjectInfo)
        case absent
        /// The credential may not read the object (nor list the bucket): nothing is known. The reason in words.
        case unknown(String)
    }

    /// Whether `loc` exists, with the least rights possible: a HEAD (s3:GetObject), and only when that is refused
    /// or answers 404, a one-key listing (s3:ListBucket) to tell a missing bucket and refused credentials from a
    /// policy that simply does not allow reading. A write-only credential gets `.unknown`, never an error, so
    /// a pack needs no more than s3:PutObject (docs/s3.md, "Least privilege").
    package func existence(_ loc: S3Location) throws(SealbakError) -> Existence {
        let r = try send(
            Call(method: "HEAD", bucket: loc.bucket, key: loc.key, what: "checking whether \(loc) exists"),
            accept: [200, 403, 404]
        )
        if r.status == 200 {
            return .exists(
                ObjectInfo(
                    key: loc.key,
                    size: r.headers["content-length"].flatMap(UInt64.init) ?? 0,
                    headers: r.headers
                )
            )
        }
        let list = try send(
            Call(
                method: "GET",
                bucket: loc.bucket,
                key: "",
                query: [("list-type", "2"), ("max-keys", "1")],
                what: "checking whether \(loc) exists"
            ),
            accept: [200, 403, 404]
        )
        let code = XMLElement.parse(list.body)?.value("Code") ?? ""
        if list.status == 404 || S3Client.refusesCredentials(status: list.status, code: code) {
            throw S3Client.failure(list, what: "writing \(loc)")
        }
        if r.status == 404 { return .absent }
        return .unknown(
            list.status == 200
                ? "the credential may list the bucket but not read this object"
                : "the credential may not read (\(code.isEmpty ? "HTTP \(list.status)" : code))"
        )
    }

    /// The condition a probe checks: the one packs complete with (the name must be free) or the one key changes
    /// complete with (the object must still be the version that was read).
    package enum Condition: String, Sendable {
        case ifNoneMatch = "If-None-Match"
        case ifMatch = "If-Match"
    }

    /// Whether the store evaluates `condition` on a multipart completion, found once per bucket and process,
    /// because some stores accept conditional headers and ignore them (moto 5.2 ignores If-Match there).
    ///
    /// The probe object is `.sealbak-tmp-probe` next to `near` (hidden from `ls`, never pruned): one byte, left in
    /// place on purpose, since a write-only credential could not delete it; later probes reuse it. A one-byte
    /// upload to it is completed with the condition, which cannot hold (If-None-Match: * on a name that exists,
    /// If-Match with an ETag no object has): a store that evaluates it refuses, and the upload is aborted. For
    /// If-None-Match, a first completion that succeeds may just have created the probe object, so one more
    /// decides.
    package func probeConditionalWrites(_ condition: Condition, near loc: S3Location) throws(SealbakError) -> Bool {
        let cacheKey = loc.bucket + " " + condition.rawValue
        if let known = conditionalWrites.withLock({ $0[cacheKey] }) { return known }
        let dir = loc.key.lastIndex(of: "/").map { String(loc.key[...$0]) } ?? ""
        let probe = S3Location(bucket: loc.bucket, key: dir + ".sealbak-tmp-probe")
        func attempt() throws(SealbakError) -> Bool {
            let id = try createMultipartUpload(probe)
            do throws(SealbakError) {
                let part = try [UInt8](repeating: 0, count: 1).withUnsafeBytes { b in
                    Result { () throws(SealbakError) in try uploadPart(probe, uploadID: id, number: 1, b) }
                }.get()
                do throws(SealbakError) {
                    try completeMultipartUpload(
                        probe,
                        uploadID: id,
                        parts: [part],
                        ifNoneMatch: condition == .ifNoneMatch,
                        ifMatch: condition == .ifMatch ? "\"00000000000000000000000000000000\"" : nil
                    )
                    try? abortMultipartUpload(probe, uploadID: id)  // nothing left to abort, unless the answer lied
                    return false
                } catch {
                    // 412 PreconditionFailed, 404 NoSuchKey or another refusal: the condition was not ignored.
                    try? abortMultipartUpload(probe, uploadID: id)
                    return true
                }
            } catch {
                try? abortMultipartUpload(probe, uploadID: id)
                throw error
            }
        }
        var honoured = try attempt()
        if !honoured && condition == .ifNoneMatch { honoured = try attempt() }
        conditionalWrites.withLock { $0[cacheKey] = honoured }
        return honoured
    }

    /// A refusal of the credentials themselves (unknown key, bad signature, expired token), not of a policy.
    static func refusesCredentials(status: Int, code: String) -> Bool {
        (status == 403
            && ["InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"].contains(code))
            || (status == 400 && code == "ExpiredToken")
    }

    /// Fails with a clear message when the bucket does not exist or cannot be listed.
    package func checkBucket(_ bucket: String) throws(SealbakError) {
        try send(
            Call(
                method: "GET",
                bucket: bucket,
                key: "",
                query: [("list-type", "2"), ("max-keys", "1")],
                what: "listing s3://\(bucket)"
            )
        )
    }

    /// Ranged GET of [start, end) into `sink`, resuming after a dropped connection from the last byte received.
    /// `etag` pins the object version (If-Match): an object replaced meanwhile is an error, not a mix.
    package func get(
        _ loc: S3Location,
        range: Range<UInt64>,
        etag: String?,
        into sink: @escaping (UnsafeRawBufferPointer) -> Void
    ) throws(SealbakError) {
        guard !range.isEmpty else { return }
        var received: UInt64 = 0
        var backoff = Backoff(settings: settings)
        let what = "reading bytes \(range.lowerBound)-\(range.upperBound - 1) of \(loc)"
        while received < UInt64(range.count) {
            var call = Call(method: "GET", bucket: loc.bucket, key: loc.key, what: what)
            call.headers.append(("range", "bytes=\(range.lowerBound + received)-\(range.upperBound - 1)"))
            if let etag, !etag.isEmpty { call.headers.append(("if-match", etag)) }
            let expected = UInt64(range.count) - received
            var got: UInt64 = 0
            let from = range.lowerBound + received
            let to = range.upperBound - 1
            let result = try attempt(
                call,
                body: nil,
                payloadHash: SigV4.emptyPayloadHash,
                sink: { bytes in
                    // Never take more than was asked for.
                    let take = Int(min(UInt64(bytes.count), expected - got))
                    if take > 0 { sink(UnsafeRawBufferPointer(rebasing: bytes[0..<take])) }
                    got += UInt64(take)
                    return take == bytes.count
                },
                accepts: { status, headers in
                    // Only 206 with exactly the range asked for: a 200 carries the object from byte 0, whatever was
                    // asked.
                    status == 206
                        && S3Client.contentRange(headers["content-range"]).map { $0.first == from && $0.last == to }
                            == true
                }
            )
            received += got
            switch result {
            case .failure(let t):
                if received >= UInt64(range.count) { return }
                try backoff.wait(after: t.message, what: what)
            case .success(let r) where r.refused:
                // Nothing of this answer was used; ask again (a proxy or cache in between may answer properly next
                // time).
                let said =
                    r.status == 206
                    ? "HTTP 206 with Content-Range \(r.headers["content-range"] ?? "(none)")"
                    : "HTTP \(r.status) instead of 206"
                do {
                    try backoff.wait(
                        after: "the storage answered a ranged read of bytes \(from)-\(to) with \(said)",
                        what: what
                    )
                } catch {
                    throw SealbakError(
                        .io,
                        "\(what): the storage does not answer ranged reads correctly (\(said)); sealbak needs a "
                            + "store that answers Range requests with 206 Partial Content"
                    )
                }
            case .success(let r):
                if r.status == 206 {
                    if received < UInt64(range.count) {
                        try backoff.wait(after: "the connection ended after \(got) of \(expected) bytes", what: what)
                    }
                } else if r.status == 412 {
                    throw SealbakError(.io, "\(loc) was replaced while sealbak was reading it; run the command again")
                } else if r.status == 416 {
                    throw SealbakError.format(
                        .init(
                            .truncated,
                            "the object ends before byte \(range.upperBound)",
                            offset: range.lowerBound + received
                        ),
                        archive: loc.description
                    )
                } else if S3Client.isRetryable(r) {
                    try backoff.wait(after: S3Client.describe(r), what: what)
                } else {
                    throw S3Client.failure(r, what: what)
                }
            }
        }
    }

    /// `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
    static func contentRange(_ value: String?) -> (first: UInt64, last: UInt64)? {
        guard let value, value.hasPrefix("bytes ") else { return nil }
        let spec = value.dropFirst(6).split(separator: "/", maxSplits: 1).first ?? ""
        let ends = spec.split(separator: "-", maxSplits: 1)
        guard ends.count == 2, let a = UInt64(ends[0].trimmingCharacters(in: .whitespaces)),
            let b = UInt64(ends[1].trimmingCharacters(in: .whitespaces)), a <= b
        else { return nil }
        return (a, b)
    }

    /// The bytes [range) of the object at version `etag`, read into one buffer sized up front.
    package func getBytes(_ loc: S3Location, range: Range<UInt64>, etag: String?) throws(SealbakError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(range.count)
        try get(loc, range: range, etag: etag) { bytes.append(contentsOf: $0) }
        return bytes
    }

    package func putObject(
        _ loc: S3Location,
        _ bytes: UnsafeRawBufferPointer,
        ifNoneMatch: Bool,
        extraHeaders: [(String, String)] = []
    ) throws(SealbakError) {
        var call = Call(method: "PUT", bucket: loc.bucket, key: loc.key, what: "writing \(loc)")
        let sum = S3Client.checksum(bytes)
        call.headers += sum.headers + extraHeaders
        // A locked object must carry a checksum, and some stores accept only this header as the sign of one.
        if extraHeaders.contains(where: { $0.0.hasPrefix("x-amz-object-lock") }) {
            call.headers.append(("x-amz-sdk-checksum-algorithm", "SHA256"))
        }
        if ifNoneMatch { call.headers.append(("if-none-match", "*")) }
        let r = try send(call, body: bytes, payloadHash: sum.payloadHash, accept: [200, 412])
        if r.status == 412 { throw SealbakError(.targetExists, "\(loc) already exists; use --force to replace it") }
    }

    /// The body's SHA-256, computed once: hex as the signed payload hash (`x-amz-content-sha256`), base64 as
    /// `x-amz-checksum-sha256`, which the store recomputes, refusing a part that arrived damaged (BadDigest).
    /// (Content-MD5 would cost another pass over every byte at about a third of SHA-256's speed here.)
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> (payloadHash: String, headers: [(String, String)]) {
        let sha = SHA256Hasher()
        sha.update(RawSpan(_unsafeBytes: bytes))
        let digest = sha.finalize()
        return (hex(digest), [("x-amz-checksum-sha256", Data(digest).base64EncodedString())])
    }

    package func createMultipartUpload(
        _ loc: S3Location,
        extraHeaders: [(String, String)] = []
    ) throws(SealbakError) -> String {
        var call = Call(
            method: "POST",
            bucket: loc.bucket,
            key: loc.key,
            query: [("uploads", "")],
            what: "starting the upload of \(loc)"
        )
        call.headers.append(("x-amz-checksum-algorithm", "SHA256"))
        call.headers += extraHeaders
        let r = try send(call)
        guard let id = XMLElement.parse(r.body)?.value("UploadId"), !id.isEmpty else {
            throw SealbakError(.io, "starting the upload of \(loc): the storage sent no upload id")
        }
        return id
    }

    package struct CompletedPart: Sendable {
        package var number: Int
        package var etag: String
        package var sha256: String?
    }

    package func uploadPart(
        _ loc: S3Location,
        uploadID: String,
        number: Int,
        _ bytes: UnsafeRawBufferPointer
    ) throws(SealbakError) -> CompletedPart {
        var call = Call(
            method: "PUT",
            bucket: loc.bucket,
            key: loc.key,
            query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
            what: "uploading part \(number) of \(loc)"
        )
        let sum = S3Client.checksum(bytes)
        call.headers += sum.headers
        let r = try send(call, body: bytes, payloadHash: sum.payloadHash)
        guard let etag = r.headers["etag"] else {
            throw SealbakError(.io, "uploading part \(number) of \(loc): the storage sent no ETag")
        }
        return CompletedPart(number: number, etag: etag, sha256: sum.headers[0].1)
    }

    /// UploadPartCopy: part `number` is bytes [range) of `source` (at version `sourceETag`), copied by the store.
    /// Returns nil when the store does not implement it (501, 405, NotImplemented, or 200 without a
    /// CopyPartResult and its ETag); the caller then streams the bytes itself.
    package func uploadPartCopy(
        _ loc: S3Location,
        uploadID: String,
        number: Int,
        source: S3Location,
        range: Range<UInt64>,
        sourceETag: String
    ) throws(SealbakError) -> CompletedPart? {
        var call = Call(
            method: "PUT",
            bucket: loc.bucket,
            key: loc.key,
            query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
            what: "copying part \(number) of \(loc) on the server"
        )
        call.headers.append(("x-amz-copy-source", "/\(source.bucket)/\(SigV4.uriEncode(source.key, keepSlash: true))"))
        call.headers.append(("x-amz-copy-source-range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
        if !sourceETag.isEmpty { call.headers.append(("x-amz-copy-source-if-match", sourceETag)) }
        let r = try send(call, accept: [200, 400, 405, 412, 501])
        let xml = XMLElement.parse(r.body)
        let code = xml?.value("Code") ?? ""
        if r.status == 412 || code == "PreconditionFailed" {
            throw SealbakError(.io, "\(source) changed while sealbak was rewriting it; run the command again")
        }
        // Not implemented, in any of the ways seen: 501, 405, a NotImplemented error, or 200 without a result.
        if r.status == 501 || r.status == 405 || code == "NotImplemented" { return nil }
        if xml?.name == "Error" || r.status != 200 {
            throw S3Client.failure(
                HTTPResponse(status: r.status == 200 ? 500 : r.status, headers: r.headers, body: r.body),
                what: call.what
            )
        }
        guard xml?.name == "CopyPartResult", let etag = xml?.value("ETag"), !etag.isEmpty else { return nil }
        return CompletedPart(number: number, etag: etag, sha256: xml?.value("ChecksumSHA256"))
    }

    /// Completes an upload. `ifNoneMatch`: only if no object has the name (else exit 7); `ifMatch`: only if the
    /// object is still that version. The store may answer 200 with an error document; that is an error too.
    ///
    /// Retried safely: when an earlier attempt may have completed the upload without its answer arriving (a
    /// dropped connection, a 5xx), a later 404 NoSuchUpload or 412 is checked against the object itself (HEAD:
    /// it exists, has `expectedSize` bytes and a multipart ETag of `parts.count` parts) before it is called a
    /// failure. `lostAnswer` is told when that happened.
    @discardableResult
    package func completeMultipartUpload(
        _ loc: S3Location,
        uploadID: String,
        parts: [CompletedPart],
        ifNoneMatch: Bool,
        ifMatch: String? = nil,
        expectedSize: UInt64? = nil,
        lostAnswer: ((String) -> Void)? = nil
    ) throws(SealbakError) -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for p in parts.sorted(by: { $0.number < $1.number }) {
            xml += "<Part><PartNumber>\(p.number)</PartNumber><ETag>\(xmlEscape(p.etag))</ETag>"
            if let sha = p.sha256 { xml += "<ChecksumSHA256>\(sha)</ChecksumSHA256>" }
            xml += "</Part>"
        }
        xml += "</CompleteMultipartUpload>"
        var call = Call(
            method: "POST",
            bucket: loc.bucket,
            key: loc.key,
            query: [("uploadId", uploadID)],
            what: "completing the upload of \(loc)"
        )
        call.headers.append(("content-type", "application/xml"))
        if ifNoneMatch { call.headers.append(("if-none-match", "*")) }
        if let ifMatch { call.headers.append(("if-match", ifMatch)) }
        let body = Array(xml.utf8)
        let hash = body.withUnsafeBytes { S3Client.checksum($0).payloadHash }
        var backoff = Backoff(settings: settings)
        var mayHaveCompleted = false
        while true {
            var sent: Result<Result<HTTPResponse, TransportError>, SealbakError> = .failure(
                SealbakError(.internalError, "unreachable")
            )
            body.withUnsafeBytes { b in
                sent = Result { () throws(SealbakError) in try attempt(call, body: b, payloadHash: hash, sink: nil) }
            }
            switch try sent.get() {
            case .failure(let t):
                mayHaveCompleted = true
                try backoff.wait(after: t.message, what: call.what)
            case .success(let r):
                let doc = XMLElement.parse(r.body)
                let code = doc?.value("Code") ?? ""
                if r.status == 200 && doc?.name != "Error" { return doc?.value("ETag") ?? "" }
                if mayHaveCompleted && (r.status == 404 || r.status == 412) {
                    if try completedEarlier(loc, parts: parts.count, expectedSize: expectedSize) {
                        lostAnswer?(
                            "the answer to completing the upload of \(loc) was lost, and a retry found the archive "
                                + "stored"
                        )
                        return ""
                    }
                }
                if r.status == 412 {
                    if ifNoneMatch {
                        throw SealbakError(.targetExists, "\(loc) already exists; use --force to replace it")
                    }
                    throw SealbakError(.io, "\(loc) changed while sealbak was rewriting it; run the command again")
                }
                // A 200 carrying an error document is retried like the status it stands for.
                let asStatus =
                    r.status == 200
                    ? (["InternalError", "ServiceUnavailable", "SlowDown"].contains(code) ? 503 : 500) : r.status
                let effective = HTTPResponse(status: asStatus, headers: r.headers, body: r.body)
                if S3Client.isRetryable(effective) && (r.status != 200 || asStatus == 503) {
                    mayHaveCompleted = true
                    try backoff.wait(after: S3Client.describe(effective), what: call.what)
                    continue
                }
                throw S3Client.failure(effective, what: call.what)
            }
        }
    }

    /// Whether `loc` now holds the object a lost completion made: it exists, has `expectedSize` bytes (when
    /// known) and an ETag of `parts` parts (`"…-N"`, where the store uses the AWS form). A credential that may
    /// not read cannot tell: that is an error saying so.
    func completedEarlier(_ loc: S3Location, parts: Int, expectedSize: UInt64?) throws(SealbakError) -> Bool {
        switch try existence(loc) {
        case .absent:
            return false
        case .unknown(let why):
            throw SealbakError(
                .io,
                "the answer to completing the upload of \(loc) was lost and the retry found no upload; whether the "
                    + "archive was stored is unknown (\(why)). Check it with a credential that may read, e.g. sealbak "
                    + "verify \(loc)"
            )
        case .exists(let info):
            if let expectedSize, info.size != expectedSize { return false }
            let etag = info.etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if let dash = etag.lastIndex(of: "-"), let n = Int(etag[etag.index(after: dash)...]) { return n == parts }
            return true
        }
    }

    package func abortMultipartUpload(_ loc: S3Location, uploadID: String) throws(SealbakError) {
        try send(
            Call(
                method: "DELETE",
                bucket: loc.bucket,
                key: loc.key,
                query: [("uploadId", uploadID)],
                what: "aborting the upload of \(loc)"
            ),
            accept: [200, 204, 404]
        )
    }

    /// Sets the Object Lock retention of `loc` (PutObjectRetention) to what `lockHeaders` (as sent when
    /// writing) say. Sent after a multipart upload completes: not every store carries the lock given when the
    /// upload began over to the object (moto 5.2 does not); where it did, the same date is set again.
    package func putObjectRetention(_ loc: S3Location, lockHeaders: [(String, String)]) throws(SealbakError) {
        let h = Dictionary(lockHeaders, uniquingKeysWith: { a, _ in a })
        guard let mode = h["x-amz-object-lock-mode"], let until = h["x-amz-object-lock-retain-until-date"] else {
            return
        }
        let xml =
            "<Retention "
            + "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>\(mode)</Mode>"
            + "<RetainUntilDate>\(until)</RetainUntilDate></Retention>"
        var call = Call(
            method: "PUT",
            bucket: loc.bucket,
            key: loc.key,
            query: [("retention", "")],
            what: "locking \(loc)"
        )
        call.headers.append(("content-type", "application/xml"))
        let body = Array(xml.utf8)
        var result: Result<HTTPResponse, SealbakError> = .failure(SealbakError(.internalError, "unreachable"))
        body.withUnsafeBytes { b in
            let sum = S3Client.checksum(b)
            call.headers += sum.headers + [("x-amz-sdk-checksum-algorithm", "SHA256")]
            result = Result { () throws(SealbakError) in try send(call, body: b, payloadHash: sum.payloadHash) }
        }
        _ = try result.get()
    }

    /// Deletes `loc`, or exactly its version `versionID` (in a versioned bucket a plain DELETE only adds a
    /// delete marker and frees nothing).
    package func delete(_ loc: S3Location, versionID: String? = nil) throws(SealbakError) {
        try send(
            Call(
                method: "DELETE",
                bucket: loc.bucket,
                key: loc.key,
                query: versionID.map { [("versionId", $0)] } ?? [],
                what: "deleting \(loc)"
            ),
            accept: [200, 204]
        )
    }

    /// Multipart uploads begun and neither completed nor aborted under `prefix` (first page).
    package func listMultipartUploads(
        bucket: String,
        prefix: String
    ) throws(SealbakError) -> [(key: String, uploadID: String)] {
        let r = try send(
            Call(
                method: "GET",
                bucket: bucket,
                key: "",
                query: [("uploads", ""), ("prefix", prefix)],
                what: "listing the uploads in s3://\(bucket)/\(prefix)"
            )
        )
        return (XMLElement.parse(r.body)?.all("Upload") ?? []).compactMap { u in
            guard let k = u.value("Key"), let id = u.value("UploadId") else { return nil }
            return (k, id)
        }
    }

    /// A multipart upload begun and neither completed nor aborted (a killed pack): billed until aborted.
    package struct IncompleteUpload: Sendable {
        package var key: String
        package var uploadID: String
        package var initiated: Date?
        /// Bytes in its stored parts, and how many (nil when the parts could not be listed).
        package var size: UInt64?
        package var parts: Int?
    }

    /// The incomplete uploads under `prefix` with their start time and stored size (ListMultipartUploads and
    /// ListParts, all pages).
    package func incompleteUploads(bucket: String, prefix: String) throws(SealbakError) -> [IncompleteUpload] {
        var out: [IncompleteUpload] = []
        var markers: (key: String, id: String)?
        repeat {
            var query = [("uploads", ""), ("prefix", prefix)]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.id)] }
            let r = try send(
                Call(
                    method: "GET",
                    bucket: bucket,
                    key: "",
                    query: query,
                    what: "listing the incomplete uploads in s3://\(bucket)/\(prefix)"
                )
            )
            guard let doc = XMLElement.parse(r.body) else { break }
            for u in doc.all("Upload") {
                guard let k = u.value("Key"), let id = u.value("UploadId") else { continue }
                out.append(
                    IncompleteUpload(key: k, uploadID: id, initiated: u.value("Initiated").flatMap(S3Client.parseTime))
                )
            }
            let next = (doc.value("NextKeyMarker") ?? "", doc.value("NextUploadIdMarker") ?? "")
            markers = doc.value("IsTruncated") == "true" && !next.0.isEmpty ? next : nil
        } while markers != nil
        for i in out.indices {
            var size: UInt64 = 0
            var count = 0
            var marker: String? = nil
            do throws(SealbakError) {
                repeat {
                    var query = [("uploadId", out[i].uploadID)]
                    if let marker { query.append(("part-number-marker", marker)) }
                    let r = try send(
                        Call(
                            method: "GET",
                            bucket: bucket,
                            key: out[i].key,
                            query: query,
                            what: "listing the parts of an upload of s3://\(bucket)/\(out[i].key)"
                        )
                    )
                    let doc = XMLElement.parse(r.body)
                    for p in doc?.all("Part") ?? [] {
                        size += p.value("Size").flatMap(UInt64.init) ?? 0
                        count += 1
                    }
                    marker = doc?.value("IsTruncated") == "true" ? doc?.value("NextPartNumberMarker") : nil
                } while marker != nil
                out[i].size = size
                out[i].parts = count
            } catch {
                // Aborted meanwhile, or ListParts not allowed: shown without a size.
            }
        }
        return out
    }

    /// ISO 8601 as S3 writes it (`2026-11-30T04:47:55.000Z`, with or without the fraction).
    static func parseTime(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    /// Every object under `prefix` (ListObjectsV2, all pages).
    package func list(bucket: String, prefix: String) throws(SealbakError) -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let r = try send(
                Call(method: "GET", bucket: bucket, key: "", query: query, what: "listing s3://\(bucket)/\(prefix)")
            )
            guard let doc = XMLElement.parse(r.body), doc.name == "ListBucketResult" else {
                throw SealbakError(
                    .io,
                    "listing s3://\(bucket)/\(prefix): the storage sent an answer sealbak cannot read"
                )
            }
            for c in doc.all("Contents") {
                guard let key = c.value("Key"), let size = c.value("Size").flatMap(UInt64.init) else { continue }
                out.append(ObjectInfo(key: key, size: size, etag: c.value("ETag") ?? ""))
            }
            token = doc.value("IsTruncated") == "true" ? doc.value("NextContinuationToken") : nil
        } while token != nil
        return out
    }
}
