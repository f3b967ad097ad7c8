import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO

/// A file of the archive a chain state describes, as it was when it was read: if the same entry is a file in the
/// same state (size, modification and change times, inode, device) when the next archive is packed, its content is
/// what the archive holds, and the next archive refers to it without reading the file (as restic's and borg's file
/// caches do).
package struct ChainFileRecord: Sendable, Equatable {
    package var name: String
    package var state: FileState
    /// The content's SHA-256 (its index stream entry, Spec §14.3).
    package var sha256: [UInt8]
    /// The content's chunks in order, as positions in the state's chunk table.
    package var chunks: [UInt32]

    package init(name: String, state: FileState, sha256: [UInt8], chunks: [UInt32]) {
        self.name = name
        self.state = state
        self.sha256 = sha256
        self.chunks = chunks
    }
}

/// What the writer of the next archive of a chain needs from the archive it just wrote (Spec §14.6, §14.8), kept by
/// the writer in a local file so that a writer that cannot open its archives (packed for recipients only) can still
/// pack incrementally. It holds no data key: the chunk key only makes chunk identities unguessable, the chunk table
/// only says where chunks are stored, and the file table only which files were unchanged in which state.
///
/// File layout (version 2): `"SBKCHST2"` ‖ archive_id[16] ‖ trailer_sha256[32] ‖ LE16(depth) ‖ chunk_key[32] ‖
/// LE16(n) ‖ chunker parameters (n bytes of UTF-8) ‖ LE64(m) ‖ index stream plaintext (m bytes, Spec §14.3) ‖
/// file table ‖ SHA-256 of everything before it. The file table is LE32(count), then per file: LE16(name length),
/// the name (UTF-8), LE64 size, LE64 mtime seconds, LE32 mtime nanoseconds, LE64 ctime seconds, LE32 ctime
/// nanoseconds, LE64 inode, LE64 device, the content's SHA-256[32], LE32(chunk count), LE32 chunk table positions.
/// Version 1 (`"SBKCHST1"`, written before file tables existed) ends with the index stream and is still read.
package struct ChainState {
    package static let magic = Array("SBKCHST2".utf8)
    static let magicVersion1 = Array("SBKCHST1".utf8)
    package var archiveID: [UInt8]
    package var trailerSHA256: [UInt8]
    package var depth: UInt16
    package var chunkKey: SecureBytes
    package var parameters: ChunkerParameters
    package var index: ChunkIndex
    package var files: [ChainFileRecord]

    package init(
        archiveID: [UInt8],
        trailerSHA256: [UInt8],
        depth: UInt16,
        chunkKey: SecureBytes,
        parameters: ChunkerParameters,
        index: ChunkIndex,
        files: [ChainFileRecord] = []
    ) {
        self.archiveID = archiveID
        self.trailerSHA256 = trailerSHA256
        self.depth = depth
        self.chunkKey = chunkKey
        self.parameters = parameters
        self.index = index
        self.files = files
    }

    package func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.write(bytes: Self.magic)
        w.write(bytes: archiveID)
        w.write(bytes: trailerSHA256)
        w.write(depth)
        chunkKey.withUnsafeBytes { w.write(bytes: $0) }
        let text = Array(parameters.text.utf8)
        w.write(UInt16(text.count))
        w.write(bytes: text)
        let indexBytes = index.encoded()
        w.write(UInt64(indexBytes.count))
        w.write(bytes: indexBytes)
        w.write(UInt32(files.count))
        for f in files {
            let name = Array(f.name.utf8)
            w.write(UInt16(name.count))
            w.write(bytes: name)
            w.write(f.state.size)
            w.write(f.state.mtimeSeconds)
            w.write(UInt32(truncatingIfNeeded: f.state.mtimeNanoseconds))
            w.write(f.state.ctimeSeconds)
            w.write(UInt32(truncatingIfNeeded: f.state.ctimeNanoseconds))
            w.write(f.state.inode)
            w.write(f.state.device)
            w.write(bytes: f.sha256)
            w.write(UInt32(f.chunks.count))
            for c in f.chunks { w.write(c) }
        }
        var out = w.bytes
        out += SHA256Hasher.hash(out)
        return out
    }

    /// Parses a chain state file's bytes; nil when they are not one (damaged, truncated, another file).
    package static func parse(_ bytes: [UInt8], expectedEntryCount: Int? = nil) -> ChainState? {
        let fixed = 8 + 16 + 32 + 2 + 32 + 2
        guard bytes.count >= fixed + 32 else { return nil }
        let version1 = Array(bytes[0..<8]) == magicVersion1
        guard version1 || Array(bytes[0..<8]) == magic else { return nil }
        let body = Array(bytes[0..<(bytes.count - 32)])
        guard Sodium.constantTimeEqual(SHA256Hasher.hash(body), Array(bytes[(bytes.count - 32)...])) else { return nil }
        var key: [UInt8] = []
        defer { wipe(&key) }
        do throws(FormatError) {
            var r = ByteReader(body, errorClass: .payload)
            _ = try r.readBytes(8, "magic")
            let id = try r.readBytes(16, "archive id")
            let hash = try r.readBytes(32, "trailer hash")
            let depth = try r.readUInt16("depth")
            key = try r.readBytes(32, "chunk key")
            let n = try r.readUInt16("parameters length")
            guard let parameters = ChunkerParameters(text: try r.readUTF8(Int(n), "parameters", errorClass: .payload))
            else { return nil }
            let indexLength = version1 ? UInt64(r.remaining) : try r.readUInt64("index length")
            guard indexLength <= UInt64(r.remaining) else { return nil }
            let indexBytes = try r.readBytes(Int(indexLength), "index")
            guard indexBytes.count >= 4 else { return nil }
            let entryCount =
                Int(indexBytes[0]) | Int(indexBytes[1]) << 8 | Int(indexBytes[2]) << 16 | Int(indexBytes[3]) << 24
            let index = try ChunkIndex.parse(indexBytes, expectedEntryCount: expectedEntryCount ?? entryCount)
            var files: [ChainFileRecord] = []
            if !version1 {
                let count = try r.readUInt32("file count")
                for _ in 0..<count {
                    let nameLength = try r.readUInt16("name length")
                    let name = try r.readUTF8(Int(nameLength), "name", errorClass: .payload)
                    var st = FileState()
                    st.size = try r.readUInt64("size")
                    st.mtimeSeconds = try r.readInt64("mtime")
                    st.mtimeNanoseconds = Int64(try r.readUInt32("mtime ns"))
                    st.ctimeSeconds = try r.readInt64("ctime")
                    st.ctimeNanoseconds = Int64(try r.readUInt32("ctime ns"))
                    st.inode = try r.readUInt64("inode")
                    st.device = try r.readUInt64("device")
                    let sha = try r.readBytes(32, "sha256")
                    let chunkCount = try r.readUInt32("chunk count")
                    guard Int(chunkCount) * 4 <= r.remaining else { return nil }
                    var chunks: [UInt32] = []
                    chunks.reserveCapacity(Int(chunkCount))
                    var total: UInt64 = 0
                    for _ in 0..<chunkCount {
                        let c = try r.readUInt32("chunk")
                        guard Int(c) < index.chunkCount else { return nil }
                        total += UInt64(index.location(at: Int(c)).length)
                        chunks.append(c)
                    }
                    // A record whose chunks do not add up to its size is not one this writer wrote.
                    guard total == st.size else { return nil }
                    files.append(ChainFileRecord(name: name, state: st, sha256: sha, chunks: chunks))
                }
            }
            try r.expectEnd("chain state", errorClass: .payload)
            return ChainState(
                archiveID: id,
                trailerSHA256: hash,
                depth: depth,
                chunkKey: SecureBytes(count: 32) { $0.copyBytes(from: key) },
                parameters: parameters,
                index: index,
                files: files
            )
        } catch {
            return nil
        }
    }

    /// Reads the state file at `path`; nil when it does not exist or is not a chain state.
    package static func load(path: String) -> ChainState? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return parse([UInt8](data))
    }

    /// Writes the state to `path` atomically, readable by its owner only.
    package func save(path: String) throws {
        let out = try AtomicOutput(path: path, overwrite: true, mode: 0o600)
        do {
            try out.write(encoded())
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }
}

extension ChainWriteContext {
    /// The next archive after `base`, from the chain state its writer kept (no key of `base` needed): accepted only if
    /// the state is for `base` (its archive id, and the SHA-256 of its stored trailer stream, which is computed from
    /// its bytes; the footer that locates the trailer is not trusted: a wrong one gives a hash that does not match).
    package static func continuing(from state: ChainState, base input: InputFile) throws -> ChainWriteContext? {
        let header = try ArchiveReader.readHeader(input)
        guard header.archiveID == state.archiveID, header.base != nil, let size = input.size,
            size >= UInt64(header.byteCount) + UInt64(FormatV1.footerByteCount)
        else { return nil }
        let footerAt = size - UInt64(FormatV1.footerByteCount)
        guard let footer = try? Footer.parse(input.read(at: footerAt, count: FormatV1.footerByteCount)) else {
            return nil
        }
        let start = UInt64(header.byteCount) + footer.trailerOffset
        guard footer.trailerOffset <= footerAt, start <= footerAt, footerAt - start == footer.trailerLength else {
            return nil
        }
        guard let hash = try input.sha256(start..<footerAt), Sodium.constantTimeEqual(hash, state.trailerSHA256)
        else { return nil }
        if Int(state.depth) + 1 > Int(FormatV1.maxChainDepth) { return nil }
        return ChainWriteContext(
            base: BaseRecord(archiveID: state.archiveID, trailerSHA256: state.trailerSHA256, depth: state.depth + 1),
            chunkKey: state.chunkKey,
            parameters: state.parameters,
            baseIndex: state.index,
            files: state.files
        )
    }
}
