/// Where the bytes of an archive being read come from: one type per kind of input (`FileInput`, `PipeInput`,
/// `MemoryInput`, `RemoteInput`), read through `InputFile`, which buffers and keeps the position.
///
/// A source is used by one thread at a time. `read(at:count:)` is called only when `isSeekable` is true.
package protocol ArchiveInputSource: AnyObject {
    /// The input as messages name it: a path, "standard input", a URL without credentials.
    var name: String { get }
    /// Whether `read(at:count:)` works (regular files, read-backs, remote objects).
    var isSeekable: Bool { get }
    /// The input's length in bytes, where it is known (seekable inputs).
    var size: UInt64? { get }
    /// Sequential reading: appends the next bytes to `out` (at least one while any is left and `out` has room);
    /// appends nothing at the end of the input.
    func readSequential(into out: inout OutputSpan<UInt8>) throws(SealbakError)
    /// Moves the sequential position `count` bytes on without reading them, where the source can do that cheaply;
    /// returns how many bytes it moved (fewer only at the end), or nil when the caller must read them instead.
    func skipSequential(_ count: UInt64) -> UInt64?
    /// Reads up to `count` bytes at absolute `offset`; fewer only at the end of the input.
    func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8]
    /// Tells the source which bytes the next `read(at:count:)` calls will cover, so it can fetch them in large
    /// pieces and no further.
    func willRead(_ range: Range<UInt64>)
}

extension ArchiveInputSource {
    package func skipSequential(_ count: UInt64) -> UInt64? { nil }
    package func willRead(_ range: Range<UInt64>) {}
}
