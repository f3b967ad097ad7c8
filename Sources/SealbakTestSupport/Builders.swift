import Foundation
import SealbakArchive
import SealbakCompression
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakSync

#if canImport(Glibc)
import Glibc
#endif

/// One entry to put in a test archive.
package struct TestEntry: Sendable {
    package var kind: EntryKind
    package var name: String
    package var data: [UInt8]
    package var link: String
    package var mode: UInt32
    package var metadata: Metadata

    package init(
        _ kind: EntryKind = .file,
        _ name: String,
        _ data: [UInt8] = [],
        link: String = "",
        mode: UInt32? = nil,
        metadata: Metadata = Metadata()
    ) {
        self.kind = kind
        self.name = name
        self.data = data
        self.link = link
        self.mode = mode ?? (kind == .directory ? 0o755 : kind == .symlink ? 0o777 : 0o644)
        self.metadata = metadata
    }
}

/// Builds archives in memory, deterministically when given a seed.
package enum TestArchive {
    package static let cheapKDF = KDFParameters(opsLimit: 1, memLimitKiB: 8)
    package static let fixedTime: UInt64 = 1_700_000_000

    package static func options(
        suite: CipherSuite = .xchacha20poly1305,
        compression: CompressionAlgorithm = .zstd(level: 3),
        frameSizeLog2: UInt8 = 12,
        seed: String? = nil,
        threads: Int = 2,
        shuffle: ShuffleSelection = .off
    ) -> WriteOptions {
        var o = WriteOptions()
        o.suite = suite
        o.compression = compression
        // Off unless asked: the committed vectors predate the shuffle feature and must stay byte-identical.
        o.shuffle = shuffle
        o.frameSizeLog2 = frameSizeLog2
        o.kdf = cheapKDF
        o.threads = threads
        o.createdUnix = fixedTime
        if let seed { o.random = SeededRandom(seed: SHA256Hasher.hash(Array(seed.utf8))) }
        return o
    }

    package static func manifest(
        _ entries: [TestEntry],
        metadata: Metadata = Metadata(["created-by": "sealbak test"])
    ) -> Manifest {
        Manifest(
            metadata: metadata,
            entries: entries.map {
                ManifestEntry(
                    kind: $0.kind,
                    name: $0.name,
                    mode: $0.mode,
                    mtimeSeconds: Int64(fixedTime),
                    mtimeNanoseconds: 0,
                    linkTarget: $0.link,
                    metadata: $0.metadata
                )
            }
        )
    }

    /// Writes an archive to memory.
    package static func build(
        _ entries: [TestEntry],
        passwords: [String] = ["password"],
        recipients: [[UInt8]] = [],
        options: WriteOptions = TestArchive.options(),
        metadata: Metadata = Metadata(["created-by": "sealbak test"])
    ) throws -> [UInt8] {
        let out = ByteCollector()
        let writer = try ArchiveWriter(
            manifest: manifest(entries, metadata: metadata),
            passwords: passwords.enumerated().map {
                PasswordSlotSpec(passphrase: Passphrase(string: $1), label: "slot \($0 + 1)")
            },
            recipients: recipients,
            options: options
        ) { out.append($0) }
        for e in entries {
            try writer.writeEntry(bytes: e.data)
        }
        try writer.finish()
        return out.bytes
    }

    /// Deterministic pseudo-random bytes (not for secrets).
    package static func noise(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    /// `count` float32 values, little-endian, distributed nearly like a standard normal (the sum of 4 uniform
    /// 24-bit integers, centred and scaled: integer arithmetic and one rounding, so the same bytes on every
    /// platform): what embedding files hold.
    package static func gaussianFloats(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func uniform24() -> Int64 {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return Int64(x >> 40)
        }
        var out: [UInt8] = []
        out.reserveCapacity(count * 4)
        for _ in 0..<count {
            // Irwin–Hall: mean 2^25, standard deviation 2^24 / sqrt(3); scaled to about 1.
            let sum = uniform24() + uniform24() + uniform24() + uniform24() - (1 << 25)
            let v = Float(sum) * (1.7320508 / Float(1 << 24))
            withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
        }
        return out
    }

    /// Compressible text.
    package static func text(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while out.count < count {
            out += Array("INSERT INTO chunks VALUES (\(i), 'chunk text number \(i)');\n".utf8)
            i += 1
        }
        return Array(out.prefix(count))
    }
}

/// Collects archive bytes from a writer sink.
package final class ByteCollector: Sendable {
    private let storage = Locked<[UInt8]>([])
    package init() {}
    package func append(_ b: RawSpan) { b.withUnsafeBytes { b in storage.withLock { $0.append(contentsOf: b) } } }
    package var bytes: [UInt8] { storage.current }
}

/// The failure classes of Spec §9.1 as the test helpers report them: the format classes, and `chain` (Spec §14.5),
/// which the reader reports as `SealbakError.Code.chain` rather than as a format class.
package enum FailureClass: String, Sendable, Hashable, CaseIterable {
    case header, version, key, mac, payload, truncated, trailer, chain

    package init(_ c: FormatError.Class) { self = FailureClass(rawValue: c.rawValue)! }
}

/// Archives of a chain, in memory (Spec §14.5): what a chained archive's references are resolved against.
package struct TestChain: Sendable {
    /// Every archive a reader may find (a base, its base, …), by name.
    package var archives: [(name: String, bytes: [UInt8])]

    package init(_ archives: [(name: String, bytes: [UInt8])] = []) { self.archives = archives }
    /// Bases named `base-0`, `base-1`, … in the order given.
    package init(bases: [[UInt8]]) { archives = bases.enumerated().map { ("base-\($0)", $1) } }

    package var catalog: ChainCatalog {
        let archives = self.archives
        return ChainCatalog(
            location: "mem",
            list: {
                archives.compactMap { a in
                    guard let h = try? ArchiveReader.readHeader(InputFile(bytes: a.bytes, name: a.name, seekable: true))
                    else { return nil }
                    return (a.name, h.archiveID)
                }
            },
            open: { name in
                guard let a = archives.first(where: { $0.name == name }) else {
                    throw SealbakError(.notFound, "\(name) is not in the test chain")
                }
                return InputFile(bytes: a.bytes, name: name, seekable: true)
            }
        )
    }

    /// Attaches this chain to `reader` when it is chained (a root needs no base), opening bases with `secret`.
    package func attach(to reader: ArchiveReader, secret: ArchiveSecret, options: ReadOptions = ReadOptions()) throws {
        guard reader.isChained else { return }
        try reader.attachChain(catalog: catalog) { _, input in
            try ArchiveReader(input: input, secret: secret, options: options)
        }
    }
}

/// Result of reading an archive fully into memory.
package struct ReadBack: Sendable {
    package var manifest: Manifest
    package var data: [[UInt8]]
    package var trailer: Trailer
}

/// A sink that keeps every entry in memory and records whether any entry was finished.
package final class MemorySink: EntrySink {
    package var data: [Int: [UInt8]] = [:]
    package var finished: [Int] = []
    package init() {}
    package func wants(_ index: Int) -> Bool { true }
    package func begin(_ index: Int) throws { data[index] = [] }
    package func write(_ index: Int, _ bytes: [UInt8]) throws { data[index, default: []] += bytes }
    package func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws { finished.append(index) }
}

package enum TestReader {
    /// Writes `bytes` to a temp file and opens it as a reader input.
    package static func file(_ bytes: [UInt8]) throws -> (InputFile, String) {
        let path = NSTemporaryDirectory() + "sealbak-test-\(UUID().uuidString).sbk"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (try InputFile(path: path), path)
    }

    /// Reads the whole archive sequentially with `password` (a chained one through `chain`).
    package static func readAll(
        _ bytes: [UInt8],
        password: String = "password",
        limits: KDFLimits = .default,
        chain: TestChain = TestChain()
    ) throws -> ReadBack {
        try readAll(bytes, secret: .password(Passphrase(string: password)), limits: limits, chain: chain)
    }

    package static func readAll(
        _ bytes: [UInt8],
        secret: ArchiveSecret,
        limits: KDFLimits = .default,
        chain: TestChain = TestChain()
    ) throws -> ReadBack {
        let (input, path) = try file(bytes)
        defer { unlink(path) }
        var o = ReadOptions()
        o.limits = limits
        o.threads = 2
        let reader = try ArchiveReader(input: input, secret: secret, options: o)
        try chain.attach(to: reader, secret: secret)
        let sink = MemorySink()
        let trailer = try reader.readAll(into: sink)
        return ReadBack(
            manifest: reader.manifest,
            data: reader.manifest.entries.indices.map { sink.data[$0] ?? [] },
            trailer: trailer
        )
    }

    /// The failure class a sequential read reports, or nil when the archive reads fine.
    /// Throws when the read fails with an error that has no format class (an I/O or internal error): a tamper test
    /// must not pass because something else broke.
    package static func failureClass(
        _ bytes: [UInt8],
        password: String = "password",
        chain: TestChain = TestChain()
    ) throws -> FailureClass? {
        try formatClass(failure(bytes, password: password, chain: chain))
    }

    /// The class of a reader's error (a format class, or `chain`, Spec §14.5); nil for no error; a test failure for
    /// an error with neither.
    package static func formatClass(_ e: SealbakError?) throws -> FailureClass? {
        guard let e else { return nil }
        if let c = e.formatClass { return FailureClass(c) }
        if e.code == .chain { return .chain }
        throw TestFailure("the reader failed with an error that is not a format error (\(e.code)): \(e.message)")
    }

    /// The error of a sequential read of every entry, or nil when the archive reads fine.
    package static func failure(
        _ bytes: [UInt8],
        password: String = "password",
        chain: TestChain = TestChain()
    ) -> SealbakError? {
        classify { _ = try readAll(bytes, password: password, chain: chain) }
    }

    /// Reads the whole archive front to back from a real pipe (not seekable, Spec §9.2): the class it fails with.
    package static func pipeFailureClass(
        _ bytes: [UInt8],
        password: String,
        chain: TestChain = TestChain()
    ) throws -> FailureClass? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TestFailure("pipe failed") }
        let writeFD = fds[1]
        let writer = Thread {
            bytes.withUnsafeBytes { b in
                var done = 0
                while done < b.count {
                    let n = Glibc.write(writeFD, b.baseAddress! + done, b.count - done)
                    if n <= 0 { break }
                    done += n
                }
            }
            close(writeFD)
        }
        writer.start()
        defer { close(fds[0]) }
        let input = try InputFile(path: "/dev/fd/\(fds[0])")
        precondition(!input.isSeekable)
        var o = ReadOptions()
        o.threads = 2
        let result = classify {
            let secret = ArchiveSecret.password(Passphrase(string: password))
            let reader = try ArchiveReader(input: input, secret: secret, options: o)
            try chain.attach(to: reader, secret: secret)
            try reader.readAll(into: MemorySink())
        }
        // Drain what the reader left so the writer thread can finish.
        var scratch = [UInt8](repeating: 0, count: 65536)
        while (try? input.read(upTo: scratch.count))?.isEmpty == false {}
        scratch.removeAll()
        return try formatClass(result)
    }

    /// Random access through the footer and trailer (Spec §8.3) of a regular file: reads `entries` (default: all, in
    /// manifest order) with one reader and returns the class of the first failure, or nil.
    package static func randomAccessFailureClass(
        _ bytes: [UInt8],
        password: String,
        entries: [Int]? = nil,
        chain: TestChain = TestChain()
    ) throws -> FailureClass? {
        let (input, path) = try file(bytes)
        defer { unlink(path) }
        precondition(input.isSeekable)
        var o = ReadOptions()
        o.threads = 2
        let failure = classify {
            let secret = ArchiveSecret.password(Passphrase(string: password))
            let reader = try ArchiveReader(input: input, secret: secret, options: o)
            try chain.attach(to: reader, secret: secret)
            try reader.loadIndex()
            for i in entries ?? Array(reader.manifest.entries.indices) { try reader.readEntry(i, into: MemorySink()) }
        }
        return try formatClass(failure)
    }

    /// The number of entries of an archive that opens with `password`.
    package static func entryCount(_ bytes: [UInt8], password: String) throws -> Int {
        let reader = try ArchiveReader(
            input: InputFile(bytes: bytes, name: "count", seekable: false),
            secret: .password(Passphrase(string: password))
        )
        return reader.manifest.entries.count
    }

    private static func classify(_ body: () throws -> Void) -> SealbakError? {
        do {
            try body()
            return nil
        } catch let e as SealbakError {
            return e
        } catch {
            return SealbakError(.internalError, "\(error)")
        }
    }
}

/// The byte layout of an archive, recovered from its cleartext frame headers (for surgery in tests).
package struct ArchiveLayout: Sendable {
    package struct FrameSpan: Sendable {
        package var offset: Int
        package var length: Int
        package var isLast: Bool
    }

    package var headerLength: Int
    package var manifest: [FrameSpan]
    package var entries: [[FrameSpan]]
    /// The index stream of a chained archive (Spec §14.3), between the last entry stream and the trailer.
    package var index: [FrameSpan]?
    package var trailer: [FrameSpan]
    package var footerOffset: Int

    package init(_ bytes: [UInt8], entryCount: Int) throws {
        headerLength = Int(bytes[10]) | Int(bytes[11]) << 8
        var at = headerLength
        func stream() -> [FrameSpan] {
            var frames: [FrameSpan] = []
            while true {
                let word =
                    UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3])
                    << 24
                let len = Int(word & 0x7FFF_FFFF) + 4
                let last = word & 0x8000_0000 != 0
                frames.append(FrameSpan(offset: at, length: len, isLast: last))
                at += len
                if last { return frames }
            }
        }
        manifest = stream()
        entries = (0..<entryCount).map { _ in stream() }
        // Version 2 with feature bit 1 (Spec §3.4, §14).
        let chained = bytes[8] == 2 && bytes[9] == 0 && bytes[12] & 0x02 != 0
        index = chained ? stream() : nil
        trailer = stream()
        footerOffset = at
    }

    package func streamRange(_ frames: [FrameSpan]) -> Range<Int> {
        frames.first!.offset..<(frames.last!.offset + frames.last!.length)
    }
}
