import SealbakArchive
import SealbakCompression
import SealbakFormat
import SealbakIO
import SealbakKeys

/// The bodies of the libFuzzer targets in `fuzz/` (docs: fuzz/README.md). They live here so that unit tests
/// replay every saved crash input (`fuzz/regressions/TARGET/*`) through exactly the same code.
///
/// Expected parse errors are swallowed; broken invariants trap (which is what the fuzzer reports).
package enum FuzzTargets {
    package static let all = [
        "header", "manifest", "trailer", "frame", "reader", "roundtrip", "chunkrecords", "chunkindex",
    ]

    /// The password of the fuzz seed archives (the test-vector password).
    package static let password = Vectors.password

    package static func run(_ target: String, _ data: [UInt8]) {
        switch target {
        case "header": header(data)
        case "manifest": manifest(data)
        case "trailer": trailer(data)
        case "frame": frame(data)
        case "reader": reader(data)
        case "roundtrip": roundTrip(data)
        case "chunkrecords": chunkRecords(data)
        case "chunkindex": chunkIndex(data)
        default: preconditionFailure("unknown fuzz target \(target)")
        }
    }

    /// Header and key-slot parser (Spec §3–§4).
    package static func header(_ data: [UInt8]) {
        _ = try? ArchiveHeader.declaredLength(prefix: Array(data.prefix(12)))
        if let h = try? ArchiveHeader.parse(data) {
            precondition(h.encoded() == data, "header parse/encode is not canonical")
            precondition(h.byteCount == data.count)
        }
    }

    /// Manifest decoder (Spec §7).
    package static func manifest(_ data: [UInt8]) {
        if let m = try? Manifest.parse(data) {
            precondition(m.encoded() == data, "manifest parse/encode is not canonical")
            for e in m.entries { precondition(EntryName.problem(e.name) == nil) }
        }
    }

    /// Trailer and footer decoders (Spec §8). The first byte picks the frame size.
    package static func trailer(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let frameSize = 1 << (12 + Int(first % 13))
        let body = Array(data.dropFirst())
        if let t = try? Trailer.parse(body, frameSize: frameSize) {
            precondition(t.encoded() == body, "trailer parse/encode is not canonical")
        }
        if body.count >= FormatV1.footerByteCount,
            let f = try? Footer.parse(Array(body.suffix(FormatV1.footerByteCount)))
        {
            precondition(f.encoded() == Array(body.suffix(FormatV1.footerByteCount)))
        }
    }

    /// A fixed dictionary for codec-4 frames: trained on generated text, the same on every run.
    package static let fuzzDictionary: ZstdDictionary = {
        var samples: [[UInt8]] = []
        var state: UInt64 = 0x5EA1_BA4C
        let words = ["vector", "chunk", "embedding", "index", "backup", "archive", "frame", "restore", "query", "row"]
        for _ in 0..<64 {
            var text = ""
            for _ in 0..<300 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                text += words[Int(state >> 33) % words.count] + " "
            }
            samples.append(Array(text.utf8))
        }
        return try! ZstdDictionary(ZstdDictionary.train(samples: samples, capacity: 16 << 10)!, level: 3)
    }()

    /// Frame header, frame plaintext envelope and bounded decompression (Spec §6).
    /// Byte 0: frame size selector and last flag; byte 1: frame index selector, bit 6 declares the shuffle feature
    /// (codec 3) and bit 5 the dictionary feature (codec 4, with `fuzzDictionary`); then a frame header and plaintext.
    package static func frame(_ data: [UInt8]) {
        guard data.count >= 6 else { return }
        let frameSize = 1 << (12 + Int(data[0] % 13))
        let isLast = data[0] & 0x80 != 0
        let index = UInt64(data[1] % 3)
        var features: FormatFeatures = data[1] & 0x40 != 0 ? .shuffle : []
        if data[1] & 0x20 != 0 { features.insert(.dictionary) }
        if let h = try? FrameHeader.parse(Array(data[2..<6]), frameSize: frameSize) {
            precondition(h.encoded() == Array(data[2..<6]))
        }
        let plain = Array(data[6...])
        guard
            let env = try? FramePlaintext.parse(
                plain.span.bytes,
                frameSize: frameSize,
                frameIndex: index,
                isLast: isLast,
                features: features
            )
        else { return }
        precondition(env.codec != .shuffledZstd || features.contains(.shuffle))
        precondition(env.codec != .dictionaryZstd || features.contains(.dictionary))
        precondition(env.rawLength <= frameSize)
        let d = FrameDecompressor()
        let raw = try? [UInt8](byteCapacity: env.rawLength) { r throws(CompressionError) in
            let payload = plain.span.bytes.extracting(env.payload)
            switch env.codec {
            case .zstd: try d.zstd(payload, into: &r, maxWindow: frameSize)
            case .shuffledZstd: try d.shuffledZstd(payload, into: &r, maxWindow: frameSize)
            case .dictionaryZstd:
                try d.dictionaryZstd(payload, into: &r, maxWindow: frameSize, dictionary: fuzzDictionary)
            case .zlib: try d.zlib(payload, into: &r)
            case .stored: break
            }
        }
        if let raw, env.codec != .stored { precondition(raw.count == env.rawLength) }
    }

    /// The whole reader: open with the fixed password and the cheapest KDF cap, read everything sequentially
    /// into a discarding sink, then (seekable) read the index and every entry. Never touches the disk.
    package static func reader(_ data: [UInt8]) {
        var options = ReadOptions()
        options.limits = KDFLimits(maxOpsLimit: 1, maxMemLimitKiB: 8)
        options.threads = 1
        for seekable in [false, true] {
            let input = InputFile(bytes: data, name: "fuzz", seekable: seekable)
            guard let r = try? ArchiveReader(input: input, passphrase: Passphrase(string: password), options: options)
            else { continue }
            if seekable {
                if let t = try? r.loadIndex() {
                    precondition(t.entries.count == r.manifest.entries.count)
                    for i in r.manifest.entries.indices { try? r.readEntry(i, into: DiscardSink()) }
                }
            } else {
                _ = try? r.readAll(into: DiscardSink())
            }
        }
    }

    /// Canonical round trip over every structure: whatever parses re-encodes to exactly the input bytes. Selectors
    /// 0xF0 and above: a chain written and read back (`chainRoundTrip`).
    package static func roundTrip(_ data: [UInt8]) {
        guard let selector = data.first else { return }
        let rest = Array(data.dropFirst())
        if selector >= 0xF0 { return chainRoundTrip(rest) }
        switch selector % 5 {
        case 0: header(rest)
        case 1: manifest(rest)
        case 2: trailer(rest)
        case 3:
            if let f = try? Footer.parse(rest) { precondition(f.encoded() == rest) }
        default:
            if rest.count >= 4, let h = try? FrameHeader.parse(Array(rest.prefix(4)), frameSize: 1 << 24) {
                precondition(h.encoded() == Array(rest.prefix(4)))
            }
        }
    }

    /// Chained archives (Spec §14) written and read back: a root holding fuzzer-chosen content, then an incremental
    /// archive built on it after fuzzer-chosen edits (an insertion, a deletion, a replacement or an append in a file;
    /// a file deleted, a file added). Both read back through the chain, sequentially and entry by entry, to exactly
    /// what was written. Bytes 0–4 choose the edits; the rest (at most 64 KiB) is the content. Small chunks (64 / 256 /
    /// 1024) so that a few kilobytes make many.
    package static func chainRoundTrip(_ data: [UInt8]) {
        guard data.count >= 5 else { return }
        let choice = data[0]
        let content = Array(data[5...].prefix(1 << 16))
        let position = content.isEmpty ? 0 : (Int(data[1]) | Int(data[2]) << 8) % (content.count + 1)
        let amount = Int(data[3]) | Int(data[4]) << 8
        var edited = content
        switch choice % 4 {
        case 0: edited.insert(contentsOf: content.prefix(amount % 4096).reversed(), at: position)
        case 1: edited.removeSubrange(position..<min(content.count, position + amount))
        case 2:
            for i in position..<min(content.count, position + amount % 64) { edited[i] ^= 0x5A }
        default: edited += content.prefix(amount)
        }
        let secret = ArchiveSecret.password(Passphrase(string: password))
        var rootEntries = [
            TestEntry(.directory, "d"), TestEntry(.file, "d/a", content), TestEntry(.file, "d/empty"),
            TestEntry(.symlink, "d/l", link: "a"),
        ]
        if choice & 0x10 != 0 { rootEntries.append(TestEntry(.stream, "gone", content.reversed())) }
        var nextEntries = [TestEntry(.directory, "d"), TestEntry(.file, "d/a", edited)]
        if choice & 0x20 != 0 { nextEntries.append(TestEntry(.file, "new", Array(content.suffix(amount % 5000)))) }
        if choice & 0x40 != 0 { nextEntries.append(TestEntry(.file, "d/copy", content)) }
        do {
            var o = TestArchive.options(seed: "fuzz chain root", threads: 1)
            o.chain = .root(
                random: o.random,
                parameters: ChunkerParameters(minSize: 64, averageSize: 256, maxSize: 1024)
            )
            let root = try TestArchive.build(rootEntries, passwords: [password], options: o)
            var n = TestArchive.options(seed: "fuzz chain next", threads: 1)
            let base = try ArchiveReader(input: InputFile(bytes: root, name: "root", seekable: true), secret: secret)
            n.chain = try ChainWriteContext.continuing(from: base)
            let next = try TestArchive.build(nextEntries, passwords: [password], options: n)
            let chain = TestChain([("root", root)])
            for (bytes, entries) in [(root, rootEntries), (next, nextEntries)] {
                var options = ReadOptions()
                options.threads = 1
                let pipe = try ArchiveReader(
                    input: InputFile(bytes: bytes, name: "fuzz", seekable: false),
                    secret: secret,
                    options: options
                )
                try chain.attach(to: pipe, secret: secret)
                let sink = MemorySink()
                try pipe.readAll(into: sink)
                let file = try ArchiveReader(
                    input: InputFile(bytes: bytes, name: "fuzz", seekable: true),
                    secret: secret,
                    options: options
                )
                try chain.attach(to: file, secret: secret)
                for (i, e) in entries.enumerated() {
                    precondition((sink.data[i] ?? []) == e.data, "chain round trip: entry \(i) read back differs")
                    let one = MemorySink()
                    try file.readEntry(i, into: one)
                    precondition((one.data[i] ?? []) == e.data, "chain round trip: entry \(i) differs by random access")
                }
            }
        } catch {
            preconditionFailure("chain round trip failed: \(error)")
        }
    }

    /// Record stream parser of chained archives (`ChunkRecordParser`). Byte 0 picks how the rest is split into
    /// feeds (0: one byte each, otherwise pieces of 1...255 bytes, the size varying with the bytes seen). Fed in
    /// pieces or whole, the stream gives the same records or fails at the same place; what parses re-encodes to
    /// the input.
    package static func chunkRecords(_ data: [UInt8]) {
        guard let selector = data.first else { return }
        let stream = Array(data.dropFirst())
        let whole: Result<[ChunkRecord], FormatError> = Result { () throws(FormatError) in
            try ChunkRecords.parse(stream)
        }
        var parser = ChunkRecordParser()
        var records: [ChunkRecord] = []
        var literal: [UInt8] = []
        var start = 0
        var failure: FormatError?
        pieces: while start < stream.count {
            let size = selector == 0 ? 1 : 1 + Int((selector &+ stream[start]) % 255)
            let piece = Array(stream[start..<min(stream.count, start + size)])
            var index = 0
            var content = 0
            let before = parser.consumed
            do throws(FormatError) {
                while let event = try parser.next(in: piece, at: &index) {
                    switch event {
                    case .literal(let bytes, let endsRecord):
                        precondition(!bytes.isEmpty && bytes.startIndex >= 0 && bytes.endIndex <= piece.count)
                        content += bytes.count
                        literal += bytes
                        if endsRecord {
                            records.append(.literal(literal))
                            literal = []
                        }
                    case .reference(let r):
                        precondition(r.length >= 1 && Int(r.length) <= ChunkRecords.maxLength)
                        records.append(.reference(r))
                    }
                }
            } catch {
                failure = error
                break pieces
            }
            precondition(index == piece.count && parser.consumed == before + UInt64(piece.count))
            precondition(content <= piece.count)
            start += piece.count
        }
        if failure == nil {
            do throws(FormatError) { try parser.finish() } catch { failure = error }
        }
        switch whole {
        case .success(let all):
            precondition(failure == nil && all == records, "split parsing disagrees with whole parsing")
            precondition(ChunkRecords.encode(all) == stream, "record stream parse/encode is not canonical")
        case .failure(let e):
            precondition(e.errorClass == .payload && failure?.errorClass == .payload)
            precondition(e.offset == failure?.offset, "split parsing fails elsewhere than whole parsing")
        }
    }

    /// Chunk index parser (`ChunkIndex`, `ChunkIndexParser`). The expected entry count is the one the input
    /// declares, so that the fuzzer gets past it. Whatever parses re-encodes to the input, and every id is found
    /// where it is. Fed in two pieces without its length known in advance (as frames arrive), the parser accepts
    /// exactly what the whole parse accepts, with the same entries and records.
    package static func chunkIndex(_ data: [UInt8]) {
        guard data.count >= 4 else {
            precondition((try? ChunkIndex.parse(data, expectedEntryCount: 0)) == nil)
            return
        }
        let declared = Int(data[0]) | Int(data[1]) << 8 | Int(data[2]) << 16 | Int(data[3]) << 24
        let whole = try? ChunkIndex.parse(data, expectedEntryCount: declared)
        let split = Int(data[data.count - 1]) * data.count / 256
        var parser = ChunkIndexParser(expectedEntryCount: declared)
        let pieces = try? { () throws(FormatError) -> ([UInt8], [LogicalEntry]) in
            let first = try parser.feed(Array(data[..<split]))
            let second = try parser.feed(Array(data[split...]))
            return (first + second, try parser.finish())
        }()
        precondition((whole == nil) == (pieces == nil), "split parsing accepts differently from whole parsing")
        guard let index = whole, let pieces else { return }
        precondition(try! index.encoded() == data, "chunk index parse/encode is not canonical")
        precondition(index.entries.count == declared && pieces.1 == index.entries)
        precondition(try! index.table.records(0..<index.chunkCount) == pieces.0)
        for i in 0..<index.chunkCount {
            precondition(try! index.index(of: index.chunkID(at: i)) == i)
            precondition(try! index.location(of: index.chunkID(at: i)) == index.location(at: i))
        }
    }

    /// Seed inputs of the chained-archive targets: record streams and chunk indexes.
    package static func chainedSeeds() -> [String: [[UInt8]]] {
        let id = (0..<16).map { UInt8($0) }
        let reference = ChunkReference(
            archiveID: id,
            entry: 2,
            offset: 8192,
            length: 4096,
            chunkID: [UInt8](repeating: 0xC3, count: 32)
        )
        let streams: [[ChunkRecord]] = [
            [], [.literal(Array("hello, world".utf8))], [.reference(reference)],
            [.literal([0]), .reference(reference), .literal(Array(repeating: 0x41, count: 300))],
        ]
        var records: [[UInt8]] = []
        for (i, stream) in streams.enumerated() {
            records.append([UInt8(i * 3)] + ChunkRecords.encode(stream))
        }
        var chunks: [(id: [UInt8], location: ChunkLocation)] = []
        for n in 0..<4 {
            let location = ChunkLocation(archiveID: id, entry: UInt32(n), offset: UInt64(n) << 12, length: 4096)
            chunks.append((id: [UInt8](repeating: UInt8(0x10 * n + 1), count: 32), location: location))
        }
        let indexes = [
            ChunkIndex(entries: [], chunks: []),
            ChunkIndex(entries: [LogicalEntry(size: 16384, sha256: [UInt8](repeating: 7, count: 32))], chunks: chunks),
        ]
        return ["chunkrecords": records, "chunkindex": indexes.map { try! $0.encoded() }]
    }

    /// Seed inputs per target, derived from the valid test vectors.
    package static func seeds() throws -> [String: [[UInt8]]] {
        var out = chainedSeeds()
        // A vector opened only by an identity (x25519-only) has no password to read it with here.
        for v in Vectors.valid() where !v.passwords.isEmpty {
            let vectorPassword = v.passwords[0]
            let bytes = try v.build()
            let back = try TestReader.readAll(bytes, password: vectorPassword, chain: v.chainArchives())
            let hl = Int(bytes[10]) | Int(bytes[11]) << 8
            let header = Array(bytes.prefix(hl))
            let manifest = back.manifest.encoded()
            let trailer = back.trailer.encoded()
            out["header", default: []].append(header)
            out["manifest", default: []].append(manifest)
            out["trailer", default: []].append([0] + trailer)
            out["trailer", default: []].append([0] + Array(bytes.suffix(FormatV1.footerByteCount)))
            let layout = try ArchiveLayout(bytes, entryCount: v.entries.count)
            let f = layout.manifest[0]
            out["frame", default: []].append(
                [0x80, 0] + Array(bytes[f.offset..<f.offset + 4]) + [0] + .le(UInt64(manifest.count), count: 4)
                    + manifest
            )
            if vectorPassword == password && bytes.count < 64 << 10 { out["reader", default: []].append(bytes) }
            out["roundtrip", default: []] += [
                [0] + header, [1] + manifest, [2, 0] + trailer, [3] + Array(bytes.suffix(24)),
            ]
        }
        // Chains (selector 0xF0): each edit kind, with a deleted, a new and a copied file.
        for choice: UInt8 in [0x00, 0x11, 0x22, 0x43, 0x70] {
            out["roundtrip", default: []].append([0xF0, choice, 0x10, 0x0F, 0x40, 0x01] + TestArchive.text(6000))
        }
        return out
    }
}
