import Dispatch
import Foundation
import SealbakCrypto
import SealbakIO
import SealbakSync

/// A streaming multipart upload as an archive output (docs/s3.md).
///
/// Parts are cut as the archive is written and uploaded by up to `parallelParts` threads, each with its
/// SHA-256 (signed, and as x-amz-checksum-sha256) so the store checks it; memory stays at (parts in flight + 1) x part
/// size. Part sizes
/// double every 1,000 parts, so a stream of unknown length fits S3's 10,000-part limit up to 5 TiB and beyond.
/// Nothing appears under the name until `commit` completes the upload, with `If-None-Match: *` unless
/// overwriting; any failure or interrupt aborts the upload. A staged upload (for `rekey`) completes under a
/// temporary name first, is read back and verified, and only then copied to its name by the store.
final class S3Upload: ArchiveOutput {
    let client: S3Client
    let location: S3Location
    /// Where the parts go: `location`, or a temporary name when staged.
    let target: S3Location
    let overwrite: Bool
    let staged: Bool
    private let report: @Sendable (String) -> Void
    /// Object Lock for the archive itself (retain-until counted from the start), never for a temporary object,
    /// which must stay deletable.
    private let lockHeaders: [(String, String)]
    private(set) var bytesWritten: UInt64 = 0
    private var buffer: [UInt8] = []
    private var uploadID: String?
    private var nextPart = 1
    private let parts = Locked<[S3Client.CompletedPart]>([])
    private let firstError = Locked<SealbakError?>(nil)
    private let group = DispatchGroup()
    private let slots: DispatchSemaphore
    private var interruptToken: Int?
    private var completed = false
    private var finished = false

    init(
        client: S3Client,
        location: S3Location,
        overwrite: Bool,
        staged: Bool,
        report: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(SealbakError) {
        self.client = client
        self.location = location
        self.overwrite = overwrite
        self.staged = staged
        self.report = report
        lockHeaders = staged ? [] : client.settings.objectLock?.headers() ?? []
        // Refuse an existing archive before any work (and find bad credentials or a missing bucket early). A
        // credential that may only write learns nothing here, which is fine: the completion is conditional.
        switch try client.existence(location) {
        case .exists where !overwrite:
            throw SealbakError(.targetExists, "\(location) already exists; use --force to replace it")
        case .unknown(let why) where !overwrite:
            report("could not check whether \(location) exists: \(why); relying on the store's conditional write")
        default:
            break
        }
        // The conditional completion is the only guard against an archive written under the name meanwhile (and
        // the only one at all for a write-only credential): make sure the store honours it, or say that it does not.
        if !overwrite && !staged {
            do throws(SealbakError) {
                if try !client.probeConditionalWrites(.ifNoneMatch, near: location) {
                    report(
                        "warning: s3://\(location.bucket) ignores If-None-Match on completions (a probe completed "
                            + "where it must not), so an archive written under \(location.key) meanwhile would be "
                            + "replaced without notice; only the check before packing protects it"
                    )
                }
            } catch {
                report("could not check whether s3://\(location.bucket) honours conditional writes: \(error.message)")
            }
        }
        target =
            staged
            ? S3Location(bucket: location.bucket, key: location.key + ".sealbak-tmp-" + hex(SystemRandom().bytes(6)))
            : location
        slots = DispatchSemaphore(value: max(1, client.settings.parallelParts))
    }

    deinit { abandon() }

    var path: String { location.description }

    /// The size of part `number`: `base`, doubling every 1,000 parts unless `uniform`.
    static func partSize(base: Int, number: Int, uniform: Bool = false) -> Int {
        uniform ? base : min(5 << 30, base << min(22, (number - 1) / 1000))
    }

    func write(_ bytes: RawSpan) throws(SealbakError) {
        if let e = firstError.withLock({ $0 }) { throw e }
        var offset = 0
        while offset < bytes.byteCount {
            let size = S3Upload.partSize(
                base: client.settings.partSize,
                number: nextPart,
                uniform: client.settings.usesUniformParts
            )
            if buffer.capacity < size { buffer.reserveCapacity(size) }
            let n = min(bytes.byteCount - offset, size - buffer.count)
            bytes.extracting(offset..<offset + n).withUnsafeBytes { buffer.append(contentsOf: $0) }
            offset += n
            if buffer.count == size { try flushPart() }
        }
        bytesWritten += UInt64(bytes.byteCount)
    }

    /// Hands the full buffer to an upload thread (waiting while `parallelParts` are in flight).
    private func flushPart() throws(SealbakError) {
        if uploadID == nil {
            let id = try client.createMultipartUpload(target, extraHeaders: lockHeaders)
            uploadID = id
            let client = self.client
            let target = self.target
            interruptToken = Interrupts.register { try? client.abortMultipartUpload(target, uploadID: id) }
        }
        guard nextPart <= 10_000 else {
            let uniformNote = client.settings.usesUniformParts ? " (uniform parts)" : ""
            throw SealbakError(
                .usage,
                "\(location): more than 10,000 parts of "
                    + "\(formatBytes(UInt64(client.settings.partSize)))\(uniformNote); give a larger --s3-part-size"
            )
        }
        slots.wait()
        if let e = firstError.withLock({ $0 }) {
            slots.signal()
            throw e
        }
        let data = buffer
        let number = nextPart
        let id = uploadID!
        buffer = []
        nextPart += 1
        group.enter()
        let client = self.client
        let target = self.target
        let slots = self.slots
        let group = self.group
        let parts = self.parts
        let firstError = self.firstError
        DispatchQueue.global().async {
            defer {
                slots.signal()
                group.leave()
            }
            do throws(SealbakError) {
                let part = try data.withUnsafeBytes { b in
                    Result { () throws(SealbakError) in try client.uploadPart(target, uploadID: id, number: number, b) }
                }.get()
                parts.withLock { $0.append(part) }
            } catch {
                firstError.withLock { if $0 == nil { $0 = error } }
            }
        }
    }

    /// Completes the upload under `target`.
    private func complete() throws(SealbakError) {
        guard !completed else { return }
        let exclusive = !overwrite && !staged
        let single = uploadID == nil
        if !single {
            if !buffer.isEmpty { try flushPart() }
            group.wait()
            if let e = firstError.withLock({ $0 }) { throw e }
        }
        let id = uploadID
        let all = parts.withLock { $0 }
        let size = bytesWritten
        let complete = { () throws(SealbakError) in
            Faults.point("s3: completing \(self.target)")
            if let id {
                try self.client.completeMultipartUpload(
                    self.target,
                    uploadID: id,
                    parts: all,
                    ifNoneMatch: exclusive,
                    expectedSize: size,
                    lostAnswer: self.report
                )
                if !self.lockHeaders.isEmpty {
                    try self.client.putObjectRetention(self.target, lockHeaders: self.lockHeaders)
                }
            } else {
                // Smaller than one part: a single PUT, checksummed and conditional like the multipart path.
                let buffer = self.buffer  // a local (shares the storage): a span cannot borrow a class's property
                try buffer.span.withUnsafeBytes { b throws(SealbakError) in
                    try self.client.putObject(self.target, b, ifNoneMatch: exclusive, extraHeaders: self.lockHeaders)
                }
            }
            // From here on the upload is an object: an interrupt must not abort it; a temporary one is removed.
            self.interruptToken.map(Interrupts.unregister)
            self.interruptToken = nil
            if self.staged {
                let client = self.client
                let target = self.target
                self.interruptToken = Interrupts.register { try? client.delete(target) }
            }
            self.completed = true
        }
        if staged {
            // A temporary object: an interrupt during its completion still ends in 128 + signal (and its removal).
            try Interrupts.deferring(complete)
        } else {
            try Interrupts.completing(stored: "\(self.location) is stored", complete)
        }
        buffer = []
        completed = true
    }

    func readBack() throws(SealbakError) -> InputFile {
        guard staged else { throw SealbakError(.internalError, "readBack needs a staged upload") }
        try complete()
        return InputFile(remote: try S3Input(client: client, location: target))
    }

    func commit() throws(SealbakError) {
        guard !finished else { return }
        try complete()
        if staged {
            guard let info = try client.head(target) else {
                throw SealbakError(.io, "\(target) vanished before it could be copied to \(location)")
            }
            let streamed = try ServerCopy.copy(
                client: client,
                from: target,
                size: info.size,
                etag: info.etag,
                to: location,
                ifNoneMatch: !overwrite
            )
            if streamed > 0 {
                report(
                    "\(location): \(formatBytes(streamed)) streamed through sealbak "
                        + "(\(client.settings.serverCopy ? "the store cannot copy parts" : "--s3-no-server-copy"))"
                )
            }
            try? client.delete(target)
        }
        finished = true
        interruptToken.map(Interrupts.unregister)
        interruptToken = nil
    }

    func abandon() {
        guard !finished else { return }
        finished = true
        group.wait()
        interruptToken.map(Interrupts.unregister)
        if completed {
            if staged { try? client.delete(target) }
        } else if let uploadID {
            try? client.abortMultipartUpload(target, uploadID: uploadID)
        }
    }
}

/// Copies by the store: UploadPartCopy of the source's byte ranges into a multipart upload, or, where the
/// store cannot (or `serverCopy` is off), the same ranges read and uploaded by sealbak, pinned to the source's
/// ETag either way.
enum ServerCopy {
    /// Copy parts of 1 GiB (S3 allows 5 MiB ... 5 GiB; the last may be smaller), or of the part size when parts
    /// must be uniform.
    static let maxPiece: UInt64 = 1 << 30

    static func piece(_ settings: S3Settings) -> UInt64 {
        settings.usesUniformParts ? UInt64(settings.partSize) : maxPiece
    }

    /// Part `number` = bytes [range) of `source`, copied by the store; nil when it cannot, which also turns
    /// `serverCopy` off for the rest of the object.
    static func copied(
        client: S3Client,
        dest: S3Location,
        uploadID: String,
        number: Int,
        source: S3Location,
        range: Range<UInt64>,
        etag: String,
        serverCopy: inout Bool
    ) throws(SealbakError) -> S3Client.CompletedPart? {
        guard serverCopy else { return nil }
        if let p = try client.uploadPartCopy(
            dest,
            uploadID: uploadID,
            number: number,
            source: source,
            range: range,
            sourceETag: etag
        ) {
            return p
        }
        serverCopy = false
        return nil
    }

    /// Part `number` = bytes [range) of `source` (pinned to `etag`), read and uploaded by sealbak.
    static func streamed(
        client: S3Client,
        dest: S3Location,
        uploadID: String,
        number: Int,
        source: S3Location,
        range: Range<UInt64>,
        etag: String,
        prefix: [UInt8] = []
    ) throws(SealbakError) -> S3Client.CompletedPart {
        let bytes = prefix + (try client.getBytes(source, range: range, etag: etag))
        return try bytes.withUnsafeBytes { b in
            Result { () throws(SealbakError) in try client.uploadPart(dest, uploadID: uploadID, number: number, b) }
        }.get()
    }

    /// Returns the bytes streamed through sealbak (0 when the store copied everything).
    @discardableResult
    static func copy(
        client: S3Client,
        from source: S3Location,
        size: UInt64,
        etag: String,
        to dest: S3Location,
        ifNoneMatch: Bool
    ) throws(SealbakError) -> UInt64 {
        let lock = client.settings.objectLock?.headers()
        let id = try client.createMultipartUpload(dest, extraHeaders: lock ?? [])
        let token = Interrupts.register { try? client.abortMultipartUpload(dest, uploadID: id) }
        defer { Interrupts.unregister(token) }
        var serverCopy = client.settings.serverCopy
        var streamedBytes: UInt64 = 0
        do throws(SealbakError) {
            var parts: [S3Client.CompletedPart] = []
            var at: UInt64 = 0
            while at < size {
                let copyEnd = min(size, at + piece(client.settings))
                if let p = try copied(
                    client: client,
                    dest: dest,
                    uploadID: id,
                    number: parts.count + 1,
                    source: source,
                    range: at..<copyEnd,
                    etag: etag,
                    serverCopy: &serverCopy
                ) {
                    parts.append(p)
                    at = copyEnd
                    continue
                }
                // Streamed parts are read whole into memory: parts of the part size.
                let end = min(size, at + UInt64(client.settings.partSize))
                parts.append(
                    try streamed(
                        client: client,
                        dest: dest,
                        uploadID: id,
                        number: parts.count + 1,
                        source: source,
                        range: at..<end,
                        etag: etag
                    )
                )
                streamedBytes += end - at
                at = end
            }
            try client.completeMultipartUpload(
                dest,
                uploadID: id,
                parts: parts,
                ifNoneMatch: ifNoneMatch,
                expectedSize: size
            )
            if let lock = lock { try client.putObjectRetention(dest, lockHeaders: lock) }
        } catch {
            try? client.abortMultipartUpload(dest, uploadID: id)
            throw error
        }
        return streamedBytes
    }
}

/// Rewrites the header of a remote archive (a key change): the new object is the new header plus the old
/// body. Part 1 is the header and the first 5 MiB of the body (S3's minimum part size), uploaded by sealbak;
/// the rest is copied by the store (UploadPartCopy, pinned to the old version). The object is replaced
/// atomically when the upload completes; until then the old one is untouched, and a failure aborts the upload.
enum HeaderRewrite {
    struct Outcome {
        var throughClient: UInt64 = 0
        var copiedOnServer: UInt64 = 0
        var serverCopy = true
        /// Whether the store evaluates the If-Match that pins the rewrite to the version read.
        var conditionHonoured = true
    }

    static func run(
        client: S3Client,
        location: S3Location,
        expected: [UInt8],
        header: [UInt8]
    ) throws(SealbakError) -> Outcome {
        guard let info = try client.head(location) else { throw SealbakError(.notFound, "\(location) does not exist") }
        let oldLength = UInt64(expected.count)
        guard info.size >= oldLength else {
            throw SealbakError(.io, "\(location) changed while sealbak was working on it; run the command again")
        }
        let source = try S3Input(client: client, location: location)
        if try source.read(at: 0, count: expected.count) != expected {
            throw SealbakError(.io, "\(location) changed while sealbak was working on it; run the command again")
        }
        let bodyLength = info.size - oldLength
        // Part 1 is the new header and the body's first bytes: 5 MiB (S3's minimum part), or with uniform parts
        // as many as make it exactly one part size, so every part but the last has that size.
        let uniform = client.settings.usesUniformParts
        let firstBody = min(bodyLength, uniform ? UInt64(max(client.settings.partSize - header.count, 0)) : 5 << 20)
        var result = Outcome()
        result.serverCopy = client.settings.serverCopy
        result.conditionHonoured = (try? client.probeConditionalWrites(.ifMatch, near: location)) ?? true
        // The rewritten archive keeps the old one's lock (which stays on the old version too).
        let id = try client.createMultipartUpload(location, extraHeaders: info.lockHeaders)
        let token = Interrupts.register { try? client.abortMultipartUpload(location, uploadID: id) }
        defer { Interrupts.unregister(token) }
        do throws(SealbakError) {
            var first = header
            first += try source.read(at: oldLength, count: Int(firstBody))
            var parts = [
                try first.withUnsafeBytes { b in
                    Result { () throws(SealbakError) in try client.uploadPart(location, uploadID: id, number: 1, b) }
                }.get()
            ]
            result.throughClient = firstBody + UInt64(header.count)
            var at = oldLength + firstBody
            while at < info.size {
                let copyEnd = min(info.size, at + ServerCopy.piece(client.settings))
                if let p = try ServerCopy.copied(
                    client: client,
                    dest: location,
                    uploadID: id,
                    number: parts.count + 1,
                    source: location,
                    range: at..<copyEnd,
                    etag: info.etag,
                    serverCopy: &result.serverCopy
                ) {
                    parts.append(p)
                    result.copiedOnServer += copyEnd - at
                    at = copyEnd
                    continue
                }
                // No server-side copy here: stream the rest through sealbak in parts.
                let end = min(info.size, at + UInt64(client.settings.partSize))
                parts.append(
                    try ServerCopy.streamed(
                        client: client,
                        dest: location,
                        uploadID: id,
                        number: parts.count + 1,
                        source: location,
                        range: at..<end,
                        etag: info.etag
                    )
                )
                result.throughClient += end - at
                at = end
            }
            let expected = UInt64(header.count) + bodyLength
            let all = parts
            try Interrupts.completing(stored: "the new header of \(location) is in place") { () throws(SealbakError) in
                try client.completeMultipartUpload(
                    location,
                    uploadID: id,
                    parts: all,
                    ifNoneMatch: false,
                    ifMatch: info.etag,
                    expectedSize: expected
                )
                if !info.lockHeaders.isEmpty { try client.putObjectRetention(location, lockHeaders: info.lockHeaders) }
                Interrupts.unregister(token)
            }
        } catch {
            try? client.abortMultipartUpload(location, uploadID: id)
            throw error
        }
        guard let now = try client.head(location), now.size == UInt64(header.count) + bodyLength else {
            throw SealbakError(
                .io,
                "\(location) does not have the expected size after the header rewrite; check it with sealbak verify"
            )
        }
        return result
    }
}
