import Dispatch
import Foundation
import SealbakIO
import SealbakSync
import Synchronization

/// The `s3://` handler behind every command: archives are read with ranged GETs, written with streaming
/// multipart uploads, and their headers rewritten with server-side copies.
package final class S3Storage: RemoteStorageHandler {
    package let client: S3Client
    private let report: @Sendable (String) -> Void

    package init(client: S3Client, report: @escaping @Sendable (String) -> Void = { _ in }) {
        self.client = client
        self.report = report
    }

    package func openInput(_ url: String) throws(SealbakError) -> any RemoteSource {
        try S3Input(client: client, location: try S3Location(url: url))
    }

    package func openOutput(_ url: String, overwrite: Bool, staged: Bool) throws(SealbakError) -> any ArchiveOutput {
        try S3Upload(
            client: client,
            location: try S3Location(url: url),
            overwrite: overwrite,
            staged: staged,
            report: report
        )
    }

    package func replaceHeader(_ url: String, expected: [UInt8], header: [UInt8]) throws(SealbakError) {
        let r = try HeaderRewrite.run(
            client: client,
            location: try S3Location(url: url),
            expected: expected,
            header: header
        )
        if !r.conditionHonoured {
            report(
                "warning: s3://\(try S3Location(url: url).bucket) ignores If-Match on completions, so a change made "
                    + "to \(url) by someone else during this one would have been overwritten without notice"
            )
        }
        report(
            "\(url): header rewritten; \(formatBytes(r.throughClient)) passed through sealbak, "
                + "\(formatBytes(r.copiedOnServer)) copied by the store"
                + (r.serverCopy
                    ? ""
                    : client.settings.serverCopy
                        ? " (the store cannot copy parts, so the body was streamed through sealbak)"
                        : " (--s3-no-server-copy: the body was streamed through sealbak)")
        )
    }
}

/// Waits for a value computed on another thread.
final class Future<T: Sendable>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let result = Locked<Result<T, SealbakError>?>(nil)

    init(_ work: @escaping @Sendable () throws(SealbakError) -> T) {
        DispatchQueue.global().async {
            let r = Result { () throws(SealbakError) in try work() }
            self.result.withLock { $0 = r }
            self.done.signal()
        }
    }

    func get() throws(SealbakError) -> T {
        done.wait()
        done.signal()
        return try result.withLock { $0! }.get()
    }
}

/// Ranged GETs of one object version, counted; shared with the prefetching thread.
final class RangeFetcher: Sendable {
    let client: S3Client
    let location: S3Location
    let etag: String
    let fetched = Atomic<UInt64>(0)

    init(client: S3Client, location: S3Location, etag: String) {
        self.client = client
        self.location = location
        self.etag = etag
    }

    func fetch(_ range: Range<UInt64>) throws(SealbakError) -> [UInt8] {
        let bytes = try client.getBytes(location, range: range, etag: etag)
        fetched.add(UInt64(bytes.count), ordering: .relaxed)
        return bytes
    }
}

/// A remote archive read through ranged GETs pinned to one version (If-Match on the ETag).
///
/// Sequential reads fetch growing chunks (256 KiB first, so `list` costs little, then up to 16 MiB) with the
/// next chunk prefetched from the second one on; a dropped connection resumes from the last byte received. Ranged reads
/// fetch exactly
/// the range announced with `willRead`, in pieces of at most 16 MiB.
final class S3Input: RemoteSource {
    let client: S3Client
    let location: S3Location
    let size: UInt64
    let etag: String
    private let fetcher: RangeFetcher
    private var window: (start: UInt64, bytes: [UInt8]) = (0, [])
    private var hint: Range<UInt64>?
    private var current: (start: UInt64, bytes: [UInt8]) = (0, [])
    private var pending: (start: UInt64, future: Future<[UInt8]>)?
    private var chunk = 256 << 10
    static let maxChunk = 16 << 20

    init(client: S3Client, location: S3Location) throws(SealbakError) {
        guard let info = try client.head(location) else {
            throw SealbakError(.notFound, "\(location) does not exist; see sealbak ls s3://\(location.bucket)/")
        }
        self.client = client
        self.location = location
        size = info.size
        etag = info.etag
        fetcher = RangeFetcher(client: client, location: location, etag: info.etag)
    }

    var name: String { location.description }
    var bytesFetched: UInt64 { fetcher.fetched.load(ordering: .relaxed) }

    private func fetch(_ range: Range<UInt64>) throws(SealbakError) -> [UInt8] { try fetcher.fetch(range) }

    func willRead(_ range: Range<UInt64>) { hint = range }

    func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        guard offset < size, count > 0 else { return [] }
        let end = min(size, offset + UInt64(count))
        let w = window
        if offset >= w.start && end <= w.start + UInt64(w.bytes.count) {
            return Array(w.bytes[Int(offset - w.start)..<Int(end - w.start)])
        }
        var fetchEnd = end
        if let hint, hint.contains(offset) {
            fetchEnd = max(end, min(hint.upperBound, offset + UInt64(S3Input.maxChunk)))
        }
        let bytes = try fetch(offset..<min(size, fetchEnd))
        window = (offset, bytes)
        return Array(bytes[0..<min(bytes.count, Int(end - offset))])
    }

    func readSequential(at offset: UInt64, into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        guard offset < size, out.freeCapacity > 0 else { return }
        if !(offset >= current.start && offset < current.start + UInt64(current.bytes.count)) {
            if let p = pending, p.start == offset {
                current = (offset, try p.future.get())
            } else {
                current = (offset, try fetch(offset..<min(size, offset + UInt64(chunk))))
            }
            pending = nil
            chunk = min(S3Input.maxChunk, chunk * 4)
            let next = current.start + UInt64(current.bytes.count)
            // No prefetch after the first chunk: `list` and `inspect` need only the header and manifest.
            if next < size && current.start > 0 {
                let range = next..<min(size, next + UInt64(chunk))
                let fetcher = self.fetcher
                pending = (next, Future { () throws(SealbakError) in try fetcher.fetch(range) })
            }
        }
        let bytes = current.bytes  // a local: a span cannot outlive an access to a class's property
        out.appendPrefix(of: bytes.span.extracting(Int(offset - current.start)...))
    }
}
