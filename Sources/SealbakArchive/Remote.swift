import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Archive bytes held elsewhere, read by offset (an object in S3-compatible storage). Implemented outside the
/// codec (SealbakS3) and reached through `RemoteStorage`, so every command that opens an archive by name also
/// opens `s3://` URLs.
package protocol RemoteSource: AnyObject {
    /// The URL as shown to the user (never with credentials).
    var name: String { get }
    var size: UInt64 { get }
    /// Bytes fetched from the store so far (for "fetched N of M" reports).
    var bytesFetched: UInt64 { get }
    /// Reads up to `count` bytes at `offset`; fewer only at the end of the object.
    func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8]
    /// Sequential reading: fills `buffer` with the bytes from `offset` on and returns how many; 0 at the end.
    func readSequential(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(SealbakError) -> Int
    /// The byte range the next `read(at:)` calls will cover, so it can be fetched in large pieces and no further.
    func willRead(_ range: Range<UInt64>)
}

/// Where an archive is written: a local file (`AtomicOutput`) or a remote upload. Nothing appears under the
/// final name before `commit`; `abandon` leaves nothing behind.
package protocol ArchiveOutput: AnyObject {
    var path: String { get }
    var bytesWritten: UInt64 { get }
    func write(_ bytes: UnsafeRawBufferPointer) throws(SealbakError)
    func commit() throws(SealbakError)
    func abandon()
    /// Everything written so far, readable before `commit` (to verify an archive before it replaces another).
    func readBack() throws(SealbakError) -> InputFile
}

extension ArchiveOutput {
    package func write(_ bytes: [UInt8]) throws(SealbakError) {
        var result: Result<Void, SealbakError> = .success(())
        bytes.withUnsafeBytes { b in result = Result { () throws(SealbakError) in try write(b) } }
        try result.get()
    }
}

extension AtomicOutput: ArchiveOutput {
    package func readBack() throws(SealbakError) -> InputFile { try InputFile(readingBack: self) }
}

/// The handler for archive names that are URLs (`s3://…`), installed by the command line.
package protocol RemoteStorageHandler: Sendable {
    func openInput(_ url: String) throws(SealbakError) -> any RemoteSource
    /// `staged`: complete under a temporary name so `readBack` can verify it before `commit` gives it its name.
    func openOutput(_ url: String, overwrite: Bool, staged: Bool) throws(SealbakError) -> any ArchiveOutput
    /// Replaces the first `expected.count` bytes of the object (the old header, which must still be there)
    /// with `header`, keeping the rest; all or nothing.
    func replaceHeader(_ url: String, expected: [UInt8], header: [UInt8]) throws(SealbakError)
}

package enum RemoteStorage {
    private static let installed = Mutex<(any RemoteStorageHandler)?>(nil)

    package static func install(_ handler: any RemoteStorageHandler) {
        installed.withLock { $0 = handler }
    }

    /// Whether `path` names a remote object rather than a local file.
    package static func isRemote(_ path: String) -> Bool { path.hasPrefix("s3://") }

    package static func handler(for path: String) throws(SealbakError) -> any RemoteStorageHandler {
        guard let h = installed.withLock({ $0 }) else {
            throw SealbakError(.usage, "\(path): remote archives are not available here")
        }
        return h
    }

    /// Opens the archive output for `path`: an upload for a URL, else an atomic local file.
    package static func output(_ path: String, overwrite: Bool, staged: Bool = false, mode: mode_t = 0o600) throws(SealbakError) -> any ArchiveOutput {
        if isRemote(path) { return try handler(for: path).openOutput(path, overwrite: overwrite, staged: staged) }
        return try AtomicOutput(path: path, overwrite: overwrite, mode: mode)
    }
}
