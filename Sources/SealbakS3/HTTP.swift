import CCurl
import Foundation
import SealbakSync

/// One HTTP exchange as the S3 client sees it.
struct HTTPRequest {
    var method: String
    var url: String
    var headers: [(String, String)]
}

struct HTTPResponse {
    var status: Int
    /// Lower-cased names.
    var headers: [String: String]
    /// The body, unless it was streamed to the caller.
    var body: [UInt8]
    /// The caller's `accepts` check refused this 2xx answer: its body was neither streamed nor kept.
    var refused = false
}

/// A failure below HTTP: no connection, a dropped connection, a timeout. Always worth a retry.
struct TransportError: Error {
    var message: String
}

/// One libcurl easy handle, reused for the keep-alive connection it holds. Used by one thread at a time.
// @unchecked: a curl handle is used by one thread at a time, handed over by ConnectionPool's lock.
final class HTTPConnection: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer

    init() {
        sbk_curl_global_init()
        guard let h = curl_easy_init() else { fatalError("libcurl could not create a handle") }
        handle = h
    }

    deinit { curl_easy_cleanup(handle) }

    /// Context handed to the C callbacks through their user-data pointer.
    private final class Transfer {
        var upload: UnsafeRawBufferPointer
        var uploaded = 0
        var headers: [String: String] = [:]
        var body: [UInt8] = []
        var sink: ((UnsafeRawBufferPointer) -> Bool)?
        var accepts: ((Int, [String: String]) -> Bool)?
        /// The verdict of `accepts`, taken once, at the first body bytes.
        var accepted: Bool?
        var status = 0
        init(upload: UnsafeRawBufferPointer) { self.upload = upload }
    }

    /// Performs `request`, sending `body` (for PUT and POST) and giving the response body to `sink` when the
    /// status is 2xx and a sink is set (it returns false to stop), else collecting it (at most 1 MiB).
    /// `accepts` sees the status and headers of a 2xx answer before its first body byte reaches `sink`; when it
    /// says no, the transfer stops there and the response comes back with `refused` set (no body).
    func perform(
        _ request: HTTPRequest,
        body: UnsafeRawBufferPointer?,
        sink: ((UnsafeRawBufferPointer) -> Bool)? = nil,
        timeoutSeconds: Int? = nil,
        accepts: ((Int, [String: String]) -> Bool)? = nil
    ) throws(TransportError) -> HTTPResponse {
        curl_easy_reset(handle)
        let transfer = Transfer(upload: body ?? UnsafeRawBufferPointer(start: nil, count: 0))
        transfer.sink = sink
        transfer.accepts = accepts
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
        // No "Expect: 100-continue" round trip, no default Accept; the body length is always known.
        list = curl_slist_append(list, "Expect:")
        list = curl_slist_append(list, "Accept:")
        defer { curl_slist_free_all(list) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = request.url.withCString { url in
            request.method.withCString { method in
                errorBuffer.withUnsafeMutableBufferPointer { eb in
                    sbk_curl_set_str(handle, CURLOPT_URL, url)
                    sbk_curl_set_ptr(handle, CURLOPT_ERRORBUFFER, eb.baseAddress)
                    sbk_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
                    sbk_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, 15)
                    if let timeoutSeconds { sbk_curl_set_long(handle, CURLOPT_TIMEOUT, timeoutSeconds) }
                    // A stalled transfer (below 1 KiB/s for 60 s) fails and is retried.
                    sbk_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1024)
                    sbk_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, 60)
                    sbk_curl_set_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
                    sbk_curl_set_ptr(handle, CURLOPT_HTTPHEADER, list.map { UnsafeMutableRawPointer($0) })
                    sbk_curl_set_fn(handle, CURLOPT_HEADERFUNCTION, headerCallback)
                    sbk_curl_set_ptr(handle, CURLOPT_HEADERDATA, context)
                    sbk_curl_set_fn(handle, CURLOPT_WRITEFUNCTION, writeCallback)
                    sbk_curl_set_ptr(handle, CURLOPT_WRITEDATA, context)
                    switch request.method {
                    case "GET": sbk_curl_set_long(handle, CURLOPT_HTTPGET, 1)
                    case "HEAD": sbk_curl_set_long(handle, CURLOPT_NOBODY, 1)
                    case "PUT":
                        sbk_curl_set_long(handle, CURLOPT_UPLOAD, 1)
                        sbk_curl_set_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(transfer.upload.count))
                        sbk_curl_set_fn(handle, CURLOPT_READFUNCTION, readCallback)
                        sbk_curl_set_ptr(handle, CURLOPT_READDATA, context)
                    case "POST":
                        sbk_curl_set_long(handle, CURLOPT_POST, 1)
                        sbk_curl_set_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(transfer.upload.count))
                        sbk_curl_set_fn(handle, CURLOPT_READFUNCTION, readCallback)
                        sbk_curl_set_ptr(handle, CURLOPT_READDATA, context)
                    default: sbk_curl_set_str(handle, CURLOPT_CUSTOMREQUEST, method)
                    }
                    return curl_easy_perform(handle)
                }
            }
        }
        if transfer.accepted == false {
            return HTTPResponse(status: transfer.status, headers: transfer.headers, body: [], refused: true)
        }
        if code != CURLE_OK {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let what = String(cString: curl_easy_strerror(code))
            throw TransportError(message: detail.isEmpty ? what : "\(what): \(detail)")
        }
        return HTTPResponse(status: transfer.status, headers: transfer.headers, body: transfer.body)
    }

    private static func transfer(_ p: UnsafeMutableRawPointer?) -> Transfer {
        Unmanaged<Transfer>.fromOpaque(p!).takeUnretainedValue()
    }

    private let headerCallback: sbk_curl_data_fn = { ptr, size, count, userdata in
        let t = HTTPConnection.transfer(userdata)
        let n = size * count
        guard let ptr else { return n }
        let line = String(decoding: UnsafeRawBufferPointer(start: ptr, count: n), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            // A new status line (after "100 Continue" or a redirect): start over.
            t.headers = [:]
            let parts = line.split(separator: " ")
            t.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased()
            t.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return n
    }

    private let writeCallback: sbk_curl_data_fn = { ptr, size, count, userdata in
        let t = HTTPConnection.transfer(userdata)
        let n = size * count
        guard let ptr, n > 0 else { return n }
        let bytes = UnsafeRawBufferPointer(start: ptr, count: n)
        if let sink = t.sink, (200..<300).contains(t.status) {
            if t.accepted == nil { t.accepted = t.accepts?(t.status, t.headers) ?? true }
            guard t.accepted == true else { return 0 }
            return sink(bytes) ? n : 0
        }
        if t.body.count < 1 << 20 { t.body.append(contentsOf: bytes) }
        return n
    }

    private let readCallback: sbk_curl_data_fn = { ptr, size, count, userdata in
        let t = HTTPConnection.transfer(userdata)
        let n = min(size * count, t.upload.count - t.uploaded)
        if n > 0, let ptr {
            UnsafeMutableRawPointer(ptr).copyMemory(from: t.upload.baseAddress! + t.uploaded, byteCount: n)
            t.uploaded += n
        }
        return n
    }
}

/// Idle connections, so requests reuse their TCP (and TLS) sessions.
final class ConnectionPool: Sendable {
    private let idle = Locked<[HTTPConnection]>([])

    func borrow() -> HTTPConnection { idle.withLock { $0.popLast() } ?? HTTPConnection() }
    func giveBack(_ c: HTTPConnection) { idle.withLock { $0.append(c) } }
}

/// A plain GET for health checks after a restore: the HTTP status, or why there was none.
package enum HTTPProbe {
    package static func get(_ url: String) -> (status: Int?, detail: String) {
        let c = HTTPConnection()
        do {
            let r = try c.perform(HTTPRequest(method: "GET", url: url, headers: []), body: nil)
            return (r.status, String(decoding: r.body.prefix(200), as: UTF8.self))
        } catch {
            return (nil, error.message)
        }
    }

    /// POSTs `body` as `application/json` (run notifications): the HTTP status, or why there was none.
    package static func postJSON(_ url: String, _ body: [UInt8], timeoutSeconds: Int) -> (status: Int?, detail: String)
    {
        let c = HTTPConnection()
        do {
            let r = try body.span.withUnsafeBytes { b throws(TransportError) in
                try c.perform(
                    HTTPRequest(method: "POST", url: url, headers: [("Content-Type", "application/json")]),
                    body: b,
                    timeoutSeconds: timeoutSeconds
                )
            }
            return (r.status, String(decoding: r.body.prefix(200), as: UTF8.self))
        } catch {
            return (nil, error.message)
        }
    }
}
