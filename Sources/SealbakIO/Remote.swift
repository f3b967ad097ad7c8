#if canImport(Glibc)
import Glibc
#endif

/// Archive bytes held elsewhere, read by offset (an object in S3-compatible storage). Implemented outside the
/// codec (SealbakS3) and reached through `ArchiveLocations`, so every command that opens an archive by name also
/// opens `s3://` URLs.
package protocol RemoteSource: AnyObject {
    /// The URL as shown to the user (never with credentials).
    var name: String { get }
    var size: UInt64 { get }
    /// Bytes fetched from the store so far (for "fetched N of M" reports).
    var bytesFetched: UInt64 { get }
    /// Reads up to `count` bytes at `offset`; fewer only at the end of the object.
    func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8]
    /// Sequential reading: appends the bytes from `offset` on to `out` (at least one while any is left and `out` has
    /// room); appends nothing at the end.
    func readSequential(at offset: UInt64, into out: inout OutputSpan<UInt8>) throws(SealbakError)
    /// The byte range the next `read(at:)` calls will cover, so it can be fetched in large pieces and no further.
    func willRead(_ range: Range<UInt64>)
}

/// Where an archive is written: a local file (`AtomicOutput`) or a remote upload. Nothing appears under the
/// final name before `commit`; `abandon` leaves nothing behind.
package protocol ArchiveOutput: AnyObject {
    var path: String { get }
    var bytesWritten: UInt64 { get }
    func write(_ bytes: RawSpan) throws(SealbakError)
    func commit() throws(SealbakError)
    func abandon()
    /// Everything written so far, readable before `commit` (to verify an archive before it replaces another).
    func readBack() throws(SealbakError) -> InputFile
}

extension ArchiveOutput {
    package func write(_ bytes: [UInt8]) throws(SealbakError) {
        try write(bytes.span.bytes)
    }
}

extension AtomicOutput: ArchiveOutput {
    package func readBack() throws(SealbakError) -> InputFile { InputFile(try FileInput(readingBack: self)) }
}

/// The handler for archive names that are URLs (`s3://…`), given to the commands through `ArchiveLocations`.
package protocol RemoteStorageHandler: Sendable {
    func openInput(_ url: String) throws(SealbakError) -> any RemoteSource
    /// `staged`: complete under a temporary name so `readBack` can verify it before `commit` gives it its name.
    func openOutput(_ url: String, overwrite: Bool, staged: Bool) throws(SealbakError) -> any ArchiveOutput
    /// Replaces the first `expected.count` bytes of the object (the old header, which must still be there)
    /// with `header`, keeping the rest; all or nothing.
    func replaceHeader(_ url: String, expected: [UInt8], header: [UInt8]) throws(SealbakError)
}

/// Where the archives a command names are: local files (and `-`), and, when it has a remote handler, objects
/// named by URL (`s3://…`).
///
/// Each command builds one from its options and passes it to whatever opens an archive by name; nothing is
/// installed globally. Tests pass `.local` or a handler of their own.
///
/// ```swift
/// let locations = ArchiveLocations(remote: storage)
/// let reader = try ArchiveReader(input: try locations.input(name), secret: secret)
/// ```
package struct ArchiveLocations: Sendable {
    /// Opens `s3://` names; nil where only local files are available.
    package let remote: (any RemoteStorageHandler)?

    package init(remote: (any RemoteStorageHandler)?) {
        self.remote = remote
    }

    /// Local files only.
    package static let local = ArchiveLocations(remote: nil)

    /// Whether `name` names a remote object rather than a local file.
    package static func isRemote(_ name: String) -> Bool { name.hasPrefix("s3://") }

    /// The handler for the remote archive `name`.
    /// - Throws: `usage` when these locations have no remote handler.
    package func handler(for name: String) throws(SealbakError) -> any RemoteStorageHandler {
        guard let remote else { throw Self.unavailable(name) }
        return remote
    }

    /// Opens the archive `name` for reading: a remote object for a URL, else a local file (`-`: standard input).
    package func input(_ name: String) throws(SealbakError) -> InputFile {
        if Self.isRemote(name) { return InputFile(remote: try handler(for: name).openInput(name)) }
        return try InputFile(path: name)
    }

    /// Opens the archive output `name`: an upload for a URL, else an atomic local file.
    package func output(
        _ name: String,
        overwrite: Bool,
        staged: Bool = false,
        mode: mode_t = 0o600
    ) throws(SealbakError) -> any ArchiveOutput {
        if Self.isRemote(name) { return try handler(for: name).openOutput(name, overwrite: overwrite, staged: staged) }
        return try AtomicOutput(path: name, overwrite: overwrite, mode: mode)
    }

    static func unavailable(_ name: String) -> SealbakError {
        SealbakError(.usage, "\(name): remote archives are not available here")
    }
}
