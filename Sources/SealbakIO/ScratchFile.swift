import CSealbakShims
import Foundation

/// A temporary file without a name, for data that outgrows memory (the chunk tables of a chain): an `O_TMPFILE`
/// file in `TMPDIR` (else /tmp), or where the file system cannot make one, a named file removed at once. It has no
/// name from the moment it exists, so a run that is killed leaves nothing behind; the file system frees it when
/// the last descriptor closes. Owner-only.
///
/// Written in order by one owner (`append`), read at any offset from any thread (`read`, which is `pread(2)`).
package final class ScratchFile: Sendable {
    private let fd: Int32
    /// The directory it is in, and what it holds, for messages.
    package let directory: String
    private let purpose: String

    /// - Parameters:
    ///   - purpose: what it holds, for the error message.
    ///   - directory: where; nil: TMPDIR, else /tmp.
    package init(purpose: String, directory: String? = nil) throws(SealbakError) {
        let env = ProcessInfo.processInfo.environment["TMPDIR"] ?? ""
        let dir = directory ?? (env.isEmpty ? "/tmp" : env)
        self.directory = dir
        self.purpose = purpose
        var d = sealbak_open_tmpfile(dir, 0o600)
        if d < 0 {
            var template = Array("\(dir)/.sealbak-scratch-\(getpid())-XXXXXX".utf8CString)
            d = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if d < 0 { throw Self.failure("cannot create a temporary file for \(purpose) in", dir, errno) }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        fd = d
    }

    deinit { close(fd) }

    /// Writes `bytes` at `offset`.
    package func write(_ bytes: [UInt8], at offset: UInt64) throws(SealbakError) {
        try bytes.span.bytes.withUnsafeBytes { raw throws(SealbakError) in
            var done = 0
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Self.failure("cannot write the temporary file for \(purpose) in", directory, errno)
                }
                done += n
            }
        }
    }

    /// Reads exactly `count` bytes at `offset`.
    package func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let at = offset + UInt64(done)
            let n = try fillBytes(&bytes, from: done) { (out: inout OutputSpan<UInt8>) throws(SealbakError) in
                let n = out.appendRead(from: fd, at: at)
                if n < 0 { throw Self.failure("cannot read the temporary file for \(purpose) in", directory, errno) }
            }
            if n == 0 {
                throw SealbakError(.io, "the temporary file for \(purpose) in \(directory) ended early")
            }
            done += n
        }
        return bytes
    }

    /// An I/O error that says where temporary files go and how to move them.
    private static func failure(_ what: String, _ directory: String, _ e: Int32) -> SealbakError {
        var error = SealbakError.io(what, path: directory, errno: e)
        error.message += " (temporary files go to TMPDIR, else /tmp: set TMPDIR to use another file system)"
        return error
    }
}
