import CSealbakShims

#if canImport(Glibc)
import Glibc
#endif

/// A regular file, or what was written so far to an `AtomicOutput`: sequential `read(2)` from the descriptor's
/// offset, random access with `pread(2)`.
package final class FileInput: ArchiveInputSource {
    private let fd: Int32
    private let ownsDescriptor: Bool
    package let name: String
    package let size: UInt64?
    package var isSeekable: Bool { true }

    /// - Parameter ownsDescriptor: whether `fd` is closed with this input (not for standard input).
    init(fd: Int32, ownsDescriptor: Bool, name: String, size: UInt64) {
        self.fd = fd
        self.ownsDescriptor = ownsDescriptor
        self.name = name
        self.size = size
    }

    /// Reads what was written so far to `output` (from its start), e.g. to verify an archive before committing it.
    package convenience init(readingBack output: AtomicOutput) throws(SealbakError) {
        let d = output.path == "-" ? -1 : sealbak_reopen_read(output.fd)
        if d < 0 { throw SealbakError(.internalError, "cannot read back \(output.path)") }
        var st = stat()
        fstat(d, &st)
        self.init(fd: d, ownsDescriptor: true, name: output.path, size: UInt64(st.st_size))
    }

    deinit { if ownsDescriptor { close(fd) } }

    package func readSequential(into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        if out.appendRead(from: fd) < 0 { throw SealbakError.io("cannot read", path: name, errno: errno) }
    }

    package func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot read", path: name, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        out.removeLast(count - done)
        return out
    }
}

/// Standard input or another descriptor that cannot seek (a pipe, a FIFO, a terminal): sequential `read(2)` only.
package final class PipeInput: ArchiveInputSource {
    private let fd: Int32
    private let ownsDescriptor: Bool
    package let name: String
    package var isSeekable: Bool { false }
    package var size: UInt64? { nil }

    /// - Parameter ownsDescriptor: whether `fd` is closed with this input (not for standard input).
    init(fd: Int32, ownsDescriptor: Bool, name: String) {
        self.fd = fd
        self.ownsDescriptor = ownsDescriptor
        self.name = name
    }

    deinit { if ownsDescriptor { close(fd) } }

    package func readSequential(into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        if out.appendRead(from: fd) < 0 { throw SealbakError.io("cannot read", path: name, errno: errno) }
    }

    package func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        preconditionFailure("\(name) is not seekable")
    }
}

/// Opens the local archive `path` (`-`: standard input) as a `FileInput` when it is a regular file that can seek,
/// else as a `PipeInput`.
func openLocalInput(_ path: String) throws(SealbakError) -> any ArchiveInputSource {
    let fd: Int32
    let ownsDescriptor: Bool
    let name: String
    if path == "-" {
        fd = 0
        ownsDescriptor = false
        name = "standard input"
    } else {
        let d = open(path, O_RDONLY | O_CLOEXEC)
        if d < 0 { throw SealbakError.io("cannot open", path: path, errno: errno) }
        var st = stat()
        if fstat(d, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            close(d)
            throw SealbakError(.usage, "\(path) is a directory, not an archive")
        }
        fd = d
        ownsDescriptor = true
        name = path
    }
    var st = stat()
    if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && lseek(fd, 0, SEEK_CUR) >= 0 {
        return FileInput(fd: fd, ownsDescriptor: ownsDescriptor, name: name, size: UInt64(st.st_size))
    }
    return PipeInput(fd: fd, ownsDescriptor: ownsDescriptor, name: name)
}
