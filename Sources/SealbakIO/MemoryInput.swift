/// Bytes in memory, read as a seekable file or as a pipe: the fuzzer and tests (no I/O at all), and headers
/// already fetched.
package final class MemoryInput: ArchiveInputSource {
    private let bytes: [UInt8]
    /// Bytes taken by sequential reads.
    private var offset = 0
    package let name: String
    package let isSeekable: Bool
    package var size: UInt64? { isSeekable ? UInt64(bytes.count) : nil }

    package init(bytes: [UInt8], name: String, seekable: Bool) {
        self.bytes = bytes
        self.name = name
        isSeekable = seekable
    }

    package func readSequential(into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        let bytes = self.bytes  // a local: a span cannot outlive an access to a class's property
        offset += out.appendPrefix(of: bytes.span.extracting(offset...))
    }

    package func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        guard offset < UInt64(bytes.count) else { return [] }
        let lo = Int(offset)
        return Array(bytes[lo..<min(bytes.count, lo + count)])
    }
}
