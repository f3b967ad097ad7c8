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

    package func readSequential(into buffer: UnsafeMutableRawBufferPointer) throws(SealbakError) -> Int {
        let n = min(buffer.count, bytes.count - offset)
        if n > 0 {
            bytes.withUnsafeBytes { m in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: m[offset..<offset + n]))
            }
            offset += n
        }
        return n
    }

    package func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        guard offset < UInt64(bytes.count) else { return [] }
        let lo = Int(offset)
        return Array(bytes[lo..<min(bytes.count, lo + count)])
    }
}
