/// An archive held elsewhere (an object in S3-compatible storage), through the `RemoteSource` its store opened:
/// sequential reads keep their own offset, skips fetch nothing, random access becomes ranged reads.
package final class RemoteInput: ArchiveInputSource {
    package let remote: any RemoteSource
    /// Bytes taken from the remote source by sequential reads (the part `InputFile` buffered included).
    private var offset: UInt64 = 0

    package let name: String
    package let size: UInt64?
    package var isSeekable: Bool { true }

    package init(_ remote: any RemoteSource) {
        self.remote = remote
        name = remote.name
        size = remote.size
    }

    package func readSequential(into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        let before = out.count
        try remote.readSequential(at: offset, into: &out)
        offset += UInt64(out.count - before)
    }

    package func skipSequential(_ count: UInt64) -> UInt64? {
        let n = min(count, remote.size - min(remote.size, offset))
        offset += n
        return n
    }

    package func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        try remote.read(at: offset, count: count)
    }

    package func willRead(_ range: Range<UInt64>) { remote.willRead(range) }
}
