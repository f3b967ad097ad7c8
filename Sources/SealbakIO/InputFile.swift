/// The reading front of every archive reader: a buffered sequential cursor (`position`, `read(upTo:)`, `skip`,
/// `atEnd`) and, on seekable inputs, reads at absolute offsets, over one `ArchiveInputSource`.
package final class InputFile {
    /// Where the bytes come from.
    package let source: any ArchiveInputSource
    private var buffer: [UInt8]
    private var bufferStart = 0
    private var bufferEnd = 0
    /// Bytes consumed so far by sequential reads (the archive offset of the next byte).
    package private(set) var position: UInt64 = 0

    /// - Parameter bufferByteCount: how much one sequential read from `source` asks for.
    package init(_ source: any ArchiveInputSource, bufferByteCount: Int = 1 << 20) {
        self.source = source
        buffer = [UInt8](repeating: 0, count: bufferByteCount)
    }

    /// Opens the local file `path` for reading (`-` means standard input). Archives that may be remote objects
    /// are opened through `ArchiveLocations.input`.
    package convenience init(path: String) throws(SealbakError) {
        if ArchiveLocations.isRemote(path) { throw ArchiveLocations.unavailable(path) }
        self.init(try openLocalInput(path))
    }

    /// Reads from memory, as a seekable file or as a pipe (for the fuzzer and tests; no I/O at all).
    package convenience init(bytes: [UInt8], name: String, seekable: Bool) {
        self.init(MemoryInput(bytes: bytes, name: name, seekable: seekable), bufferByteCount: 1 << 16)
    }

    /// Reads a remote object (random access through ranged requests).
    package convenience init(remote: any RemoteSource) {
        self.init(RemoteInput(remote))
    }

    /// The input as messages name it.
    package var path: String { source.name }
    package var isSeekable: Bool { source.isSeekable }
    package var size: UInt64? { source.size }
    /// The remote object behind this input, if it is one (for "fetched N of M" reports).
    package var remote: (any RemoteSource)? { (source as? RemoteInput)?.remote }

    /// Tells a remote input which bytes the next `read(at:)` calls will cover (local inputs ignore it).
    package func willRead(_ range: Range<UInt64>) { source.willRead(range) }

    /// Reads up to `count` bytes sequentially; fewer only at end of input.
    package func read(upTo count: Int) throws(SealbakError) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count)
        while out.count < count {
            if bufferStart == bufferEnd {
                if try !refill() { break }
            }
            let n = min(count - out.count, bufferEnd - bufferStart)
            out.append(contentsOf: buffer[bufferStart..<bufferStart + n])
            bufferStart += n
        }
        position += UInt64(out.count)
        return out
    }

    /// Skips `count` bytes sequentially; returns how many were skipped (fewer only at end of input).
    package func skip(_ count: UInt64) throws(SealbakError) -> UInt64 {
        let buffered = UInt64(bufferEnd - bufferStart)
        if count > buffered, let moved = source.skipSequential(count - buffered) {
            // Skipped without reading (a remote input fetches nothing): drop what is buffered.
            bufferStart = 0
            bufferEnd = 0
            position += buffered + moved
            return buffered + moved
        }
        var left = count
        while left > 0 {
            if bufferStart == bufferEnd {
                if try !refill() { break }
            }
            let n = Int(min(left, UInt64(bufferEnd - bufferStart)))
            bufferStart += n
            left -= UInt64(n)
        }
        position += count - left
        return count - left
    }

    /// True when no byte is left.
    package func atEnd() throws(SealbakError) -> Bool {
        if bufferStart < bufferEnd { return false }
        return try !refill()
    }

    private func refill() throws(SealbakError) -> Bool {
        let source = self.source
        let n = try fillBytes(&buffer) { (out) throws(SealbakError) in try source.readSequential(into: &out) }
        bufferStart = 0
        bufferEnd = n
        return n > 0
    }

    /// Reads exactly `count` bytes at `offset` (seekable inputs only); fewer only at end of file.
    package func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        precondition(isSeekable)
        return try source.read(at: offset, count: count)
    }
}
