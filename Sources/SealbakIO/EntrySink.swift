/// Receives verified entry data in archive order. Calls are serialized.
///
/// `ArchiveReader` (the codec) feeds it; extraction, `DiscardSink` and the components' restores implement it, so
/// none of them depends on the codec.
package protocol EntrySink: AnyObject {
    /// Whether the data of entry `index` is wanted (unwanted streams are skipped without decrypting).
    func wants(_ index: Int) -> Bool
    func begin(_ index: Int) throws
    /// Plaintext of one verified frame.
    func write(_ index: Int, _ bytes: [UInt8]) throws
    /// The entry's last frame verified; `sha256` is of its whole plaintext. When the trailer is already known
    /// (seekable input) the reader has already compared size and checksum with it.
    func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws
}

/// Forwards to a sink and reports which entry begins and how many verified bytes arrive (progress displays).
package final class ProgressTap: EntrySink {
    let sink: any EntrySink
    let onBegin: (Int) -> Void
    let onBytes: (Int) -> Void
    package init(_ sink: any EntrySink, begin: @escaping (Int) -> Void, bytes: @escaping (Int) -> Void) {
        self.sink = sink
        onBegin = begin
        onBytes = bytes
    }
    package func wants(_ i: Int) -> Bool { sink.wants(i) }
    package func begin(_ i: Int) throws {
        onBegin(i)
        try sink.begin(i)
    }
    package func write(_ i: Int, _ bytes: [UInt8]) throws {
        try sink.write(i, bytes)
        onBytes(bytes.count)
    }
    package func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws { try sink.end(i, size: size, sha256: sha256) }
}

/// A sink that verifies and discards (`sealbak verify`).
package final class DiscardSink: EntrySink {
    package private(set) var bytes: UInt64 = 0
    package private(set) var entries = 0
    private let selected: Set<Int>?
    /// Called with the byte count of every verified chunk (progress display).
    package var progress: ((Int) -> Void)?
    /// Entries whose first bytes are kept in `heads` (e.g. to check a dump's magic).
    package var captureHeads: Set<Int> = []
    package private(set) var heads: [Int: [UInt8]] = [:]
    /// How much of each entry `heads` keeps (a dump's header lines; a small record entry whole).
    package static let headByteCount = 1 << 20
    package init(selected: Set<Int>? = nil) { self.selected = selected }
    package func wants(_ index: Int) -> Bool { selected?.contains(index) ?? true }
    package func begin(_ index: Int) throws {}
    package func write(_ index: Int, _ b: [UInt8]) throws {
        bytes += UInt64(b.count)
        progress?(b.count)
        if captureHeads.contains(index), heads[index, default: []].count < Self.headByteCount {
            heads[index, default: []] += b.prefix(Self.headByteCount - heads[index, default: []].count)
        }
    }
    package func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws { entries += 1 }
}
