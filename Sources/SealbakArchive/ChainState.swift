import Foundation
import SealbakCrypto
import SealbakFormat
import SealbakIO

/// What the writer of the next archive of a chain needs from the archive it just wrote (Spec §14.6, §14.8), kept by
/// the writer in a local file so that a writer that cannot open its archives (packed for recipients only) can still
/// pack incrementally. It holds no data key: the chunk key only makes chunk identities unguessable, the chunk table
/// only says where chunks are stored.
///
/// File layout: `"SBKCHST1"` ‖ archive_id[16] ‖ trailer_sha256[32] ‖ LE16(depth) ‖ chunk_key[32] ‖
/// LE16(n) ‖ chunker parameters (n bytes of UTF-8) ‖ index stream plaintext (Spec §14.3) ‖ SHA-256 of everything
/// before it.
package struct ChainState {
    package static let magic = Array("SBKCHST1".utf8)
    package var archiveID: [UInt8]
    package var trailerSHA256: [UInt8]
    package var depth: UInt16
    package var chunkKey: SecureBytes
    package var parameters: ChunkerParameters
    package var index: ChunkIndex

    package init(
        archiveID: [UInt8],
        trailerSHA256: [UInt8],
        depth: UInt16,
        chunkKey: SecureBytes,
        parameters: ChunkerParameters,
        index: ChunkIndex
    ) {
        self.archiveID = archiveID
        self.trailerSHA256 = trailerSHA256
        self.depth = depth
        self.chunkKey = chunkKey
        self.parameters = parameters
        self.index = index
    }

    package func encoded() -> [UInt8] {
        var out = Self.magic + archiveID + trailerSHA256
        out += [UInt8(truncatingIfNeeded: depth), UInt8(truncatingIfNeeded: depth >> 8)]
        chunkKey.withUnsafeBytes { out += $0 }
        let text = Array(parameters.text.utf8)
        out += [UInt8(truncatingIfNeeded: text.count), UInt8(truncatingIfNeeded: text.count >> 8)] + text
        out += index.encoded()
        out += SHA256Hasher.hash(out)
        return out
    }

    /// Parses a chain state file's bytes; nil when they are not one (damaged, truncated, another file).
    package static func parse(_ bytes: [UInt8], expectedEntryCount: Int? = nil) -> ChainState? {
        let fixed = 8 + 16 + 32 + 2 + 32 + 2
        guard bytes.count >= fixed + 32, Array(bytes[0..<8]) == magic else { return nil }
        let body = Array(bytes[0..<(bytes.count - 32)])
        guard Sodium.constantTimeEqual(SHA256Hasher.hash(body), Array(bytes[(bytes.count - 32)...])) else { return nil }
        let id = Array(body[8..<24])
        let hash = Array(body[24..<56])
        let depth = UInt16(body[56]) | UInt16(body[57]) << 8
        let key = Array(body[58..<90])
        let n = Int(body[90]) | Int(body[91]) << 8
        guard body.count >= fixed + n,
            let text = String(validating: body[92..<(92 + n)], as: UTF8.self),
            let parameters = ChunkerParameters(text: text)
        else { return nil }
        let indexBytes = Array(body[(92 + n)...])
        guard indexBytes.count >= 4 else { return nil }
        let entryCount =
            Int(indexBytes[0]) | Int(indexBytes[1]) << 8 | Int(indexBytes[2]) << 16 | Int(indexBytes[3]) << 24
        guard let index = try? ChunkIndex.parse(indexBytes, expectedEntryCount: expectedEntryCount ?? entryCount)
        else { return nil }
        var copy = key
        defer { wipe(&copy) }
        return ChainState(
            archiveID: id,
            trailerSHA256: hash,
            depth: depth,
            chunkKey: SecureBytes(count: 32) { $0.copyBytes(from: copy) },
            parameters: parameters,
            index: index
        )
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
            baseIndex: state.index
        )
    }
}
