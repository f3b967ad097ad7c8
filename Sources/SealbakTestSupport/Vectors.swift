import Foundation
import SealbakArchive
import SealbakCompression
import SealbakCrypto
import SealbakFormat

/// A valid test vector of Spec §12.
package struct ValidVector: Sendable {
    package var name: String
    package var description: String
    package var passwords: [String]
    package var entries: [TestEntry]
    package var options: WriteOptions
    package var metadata: Metadata = Metadata(["created-by": "sealbak vector generator"])
    /// X25519 secret keys (hex) whose public keys are recipients of the archive.
    package var identities: [String] = []

    package var recipientKeys: [[UInt8]] {
        identities.map { X25519.publicKey(SecureBytes(copying: Vectors.unhex($0))) }
    }

    package func build() throws -> [UInt8] {
        try TestArchive.build(entries, passwords: passwords, recipients: recipientKeys, options: options, metadata: metadata)
    }

    package var compressionName: String {
        switch options.compression {
        case .zstd: "zstd"
        case .zlib: "zlib"
        case .stored: "stored"
        }
    }
}

/// An invalid test vector: a valid one with exactly one defect, and the class a reader must report.
package struct InvalidVector: Sendable {
    package var name: String
    package var description: String
    package var base: String
    package var password: String
    package var expected: FormatError.Class
    package var bytes: [UInt8]
}

package enum Vectors {
    package static let password = "correct horse battery staple"
    /// The X25519 secret key of the recipient vectors (test only).
    package static let identity = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"

    package static func unhex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex { let j = s.index(i, offsetBy: 2); out.append(UInt8(s[i..<j], radix: 16)!); i = j }
        return out
    }

    static func opts(_ name: String, suite: CipherSuite = .xchacha20poly1305, compression: CompressionAlgorithm = .zstd(level: 3)) -> WriteOptions {
        TestArchive.options(suite: suite, compression: compression, frameSizeLog2: 12, seed: "sealbak vector " + name)
    }

    /// The valid vectors (frame size 4096 so that frame edges are cheap to reach).
    package static func valid() -> [ValidVector] {
        let fs = 4096
        var v: [ValidVector] = []
        func add(_ name: String, _ description: String, _ entries: [TestEntry], passwords: [String] = [password],
                 suite: CipherSuite = .xchacha20poly1305, compression: CompressionAlgorithm = .zstd(level: 3), metadata: Metadata? = nil) {
            var vec = ValidVector(name: name, description: description, passwords: passwords, entries: entries,
                                  options: opts(name, suite: suite, compression: compression))
            if let metadata { vec.metadata = metadata }
            v.append(vec)
        }
        add("empty-archive", "an archive with no entries", [])
        add("empty-entry", "one file of zero bytes (a single empty stored frame)", [TestEntry(.file, "empty.txt")])
        add("one-frame", "one file of exactly one frame (4096 bytes)", [TestEntry(.file, "one-frame.bin", TestArchive.noise(fs, seed: 2))])
        add("frame-plus-one", "one file of 4097 bytes: a full frame and a 1-byte last frame",
            [TestEntry(.file, "frame-plus-one.bin", TestArchive.noise(fs + 1, seed: 3))])
        add("multi-frame-text", "compressible text over several frames, zstd",
            [TestEntry(.file, "dump.sql", TestArchive.text(3 * fs + 123))])
        add("aes-256-gcm", "cipher suite 2 (AES-256-GCM) with text and noise",
            [TestEntry(.file, "a.txt", TestArchive.text(fs + 10)), TestEntry(.file, "b.bin", TestArchive.noise(100, seed: 4))],
            suite: .aes256gcm)
        add("compression-zlib", "zlib (RFC 1950) frames", [TestEntry(.file, "notes.txt", TestArchive.text(2 * fs + 7))], compression: .zlib(level: 6))
        add("compression-stored", "no compression: every frame stored", [TestEntry(.file, "notes.txt", TestArchive.text(2 * fs + 7))], compression: .stored)
        add("incompressible", "zstd requested on random bytes: frames fall back to stored",
            [TestEntry(.file, "embeddings.f32", TestArchive.noise(2 * fs + 512, seed: 5))])
        add("two-key-slots", "two password slots open the same archive (passwords[0] and passwords[1])",
            [TestEntry(.file, "secret.env", Array("API_KEY=not-a-real-key\n".utf8))], passwords: [password, "second password"])
        var recipient = ValidVector(name: "x25519-recipient", description: "one password slot and one X25519 recipient slot (secret key in identities[0])",
                                    passwords: [password], entries: [TestEntry(.file, "db.dump", TestArchive.noise(5000, seed: 12))], options: opts("x25519-recipient"))
        recipient.identities = [identity]
        v.append(recipient)
        var recipientOnly = ValidVector(name: "x25519-only", description: "only an X25519 recipient slot: no password opens it (secret key in identities[0])",
                                        passwords: [], entries: [TestEntry(.file, "notes.txt", TestArchive.text(3000))], options: opts("x25519-only"))
        recipientOnly.identities = [identity]
        v.append(recipientOnly)
        var many: [TestEntry] = [TestEntry(.directory, "app"), TestEntry(.directory, "app/config"), TestEntry(.directory, "app/docs")]
        for i in 0..<30 { many.append(TestEntry(.file, "app/docs/page-\(i).md", TestArchive.text(37 * i))) }
        many.append(TestEntry(.symlink, "app/docs/latest.md", link: "page-29.md"))
        many.append(TestEntry(.file, "app/config/settings.json", Array("{\"top_k\": 8}\n".utf8), mode: 0o600))
        many.append(TestEntry(.stream, "app/db.dump", TestArchive.noise(fs * 2, seed: 6), mode: 0o600))
        add("many-entries", "36 entries: directories, files, a symlink and a stream", many)
        add("metadata-unicode", "archive and entry metadata, non-ASCII names",
            [TestEntry(.file, "données/résumé-日本.txt", Array("héllo\n".utf8), metadata: Metadata(["kind": "config", "secrets": "1"]))],
            metadata: Metadata(["created-by": "sealbak vector generator", "host": "vector-host", "plan": "{\"components\": []}"]))
        return v
    }

    package static func invalid() throws -> [InvalidVector] {
        let valid = Dictionary(uniqueKeysWithValues: valid().map { ($0.name, $0) })
        let text = valid["multi-frame-text"]!
        let textBytes = try text.build()
        let textLayout = try ArchiveLayout(textBytes, entryCount: text.entries.count)
        let many = valid["many-entries"]!
        let manyBytes = try many.build()
        let manyLayout = try ArchiveLayout(manyBytes, entryCount: many.entries.count)
        var out: [InvalidVector] = []
        func add(_ name: String, _ expected: FormatError.Class, _ description: String, base: String = "multi-frame-text",
                 password: String = Vectors.password, _ mutate: (inout [UInt8]) -> Void) {
            var b = base == "many-entries" ? manyBytes : textBytes
            mutate(&b)
            out.append(InvalidVector(name: name, description: description, base: base, password: password, expected: expected, bytes: b))
        }
        let h = textLayout.headerLength
        let slot = 41 // first slot envelope
        let labelLength = Int(textBytes[slot + 12])
        let body = slot + 13 + labelLength + 2 // first byte of the password slot body

        // header
        add("bad-magic", .header, "first magic byte changed") { $0[0] ^= 0xFF }
        add("version-zero", .header, "format version 0") { $0[8] = 0; $0[9] = 0 }
        add("header-flags", .header, "reserved header flags set") { $0[12] = 1 }
        add("unknown-cipher", .header, "cipher suite 3 does not exist") { $0[14] = 3 }
        add("frame-size-too-small", .header, "frame size 2^11 is below the minimum") { $0[15] = 11 }
        add("frame-size-too-large", .header, "frame size 2^25 is above the maximum") { $0[15] = 25 }
        add("slot-count-zero", .header, "slot count 0") { $0[40] = 0 }
        add("slot-flags", .header, "reserved slot flags set") { $0[slot + 1] = 1 }
        add("slot-id-zero", .header, "slot id 0 (ids must be non-zero and increasing)") { $0[slot + 2] = 0; $0[slot + 3] = 0 }
        add("slot-label-too-long", .header, "slot label length 65 (limit 64)") { $0[slot + 12] = 65 }
        add("slot-body-length", .header, "password slot body length 96 instead of 97") { $0[body - 2] = 96 }
        add("kdf-parallelism", .header, "Argon2id parallelism 2 (only 1 is defined)") { $0[body + 8] = 2 }
        add("kdf-memory-below-minimum", .header, "Argon2id memory 4 KiB (minimum 8)") { $0[body + 4] = 4; $0[body + 5] = 0; $0[body + 6] = 0; $0[body + 7] = 0 }
        add("header-length-short", .truncated, "header length claims more bytes than the file has") { $0[10] = 0xFF; $0[11] = 0xFF; $0.removeSubrange(100...) }
        add("header-length-long", .header, "header length 1 larger than the slots and MAC it holds") { b in
            let n = (Int(b[10]) | Int(b[11]) << 8) + 1
            b[10] = UInt8(n & 0xFF); b[11] = UInt8(n >> 8)
        }
        // version
        add("version-two", .version, "format version 2: made by a newer sealbak") { $0[8] = 2 }
        // key
        add("wrong-password", .key, "the archive is intact; the password given is wrong", password: "wrong password") { _ in }
        add("wrapped-key-altered", .key, "one byte of the wrapped master key flipped") { $0[body + 49 + 5] ^= 0x01 }
        add("salt-altered", .key, "one byte of the Argon2id salt flipped") { $0[body + 9] ^= 0x01 }
        add("archive-id-altered", .key, "archive id changed (it is bound into the key slot's associated data)") { $0[16] ^= 0x01 }
        // mac
        add("created-altered", .mac, "creation time changed: only the header MAC catches it") { $0[32] ^= 0x01 }
        add("label-altered", .mac, "slot label changed: only the header MAC catches it") { $0[slot + 13] ^= 0x20 }
        add("header-mac-altered", .mac, "last byte of the header MAC flipped") { $0[h - 1] ^= 0x01 }
        // payload
        add("manifest-bit-flip", .payload, "one bit of the manifest ciphertext flipped") { $0[textLayout.manifest[0].offset + 20] ^= 0x04 }
        add("entry-bit-flip", .payload, "one bit of an entry frame's ciphertext flipped") { $0[textLayout.entries[0][1].offset + 30] ^= 0x80 }
        add("entry-tag-flip", .payload, "last byte of an entry frame's tag flipped") { b in
            let f = textLayout.entries[0][0]
            b[f.offset + f.length - 1] ^= 0x01
        }
        add("frames-swapped", .payload, "frames 0 and 1 of an entry swapped") { b in
            let f0 = textLayout.entries[0][0], f1 = textLayout.entries[0][1]
            let a = Array(b[f0.offset..<f0.offset + f0.length]), c = Array(b[f1.offset..<f1.offset + f1.length])
            b.replaceSubrange(f0.offset..<f1.offset + f1.length, with: c + a)
        }
        add("frame-duplicated", .payload, "frame 0 of an entry repeated in place of frame 1") { b in
            let f0 = textLayout.entries[0][0], f1 = textLayout.entries[0][1]
            b.replaceSubrange(f1.offset..<f1.offset + f1.length, with: Array(b[f0.offset..<f0.offset + f0.length]))
        }
        add("frame-dropped", .payload, "frame 1 of an entry removed") { b in
            let f1 = textLayout.entries[0][1]
            b.removeSubrange(f1.offset..<f1.offset + f1.length)
        }
        add("last-flag-cleared", .payload, "the last-frame flag of an entry's last frame cleared") { b in
            b[textLayout.entries[0].last!.offset + 3] &= 0x7F
        }
        add("frame-length-altered", .payload, "a frame header's length set below the minimum") { b in
            let o = textLayout.entries[0][0].offset
            b[o] = 3; b[o + 1] = 0; b[o + 2] = 0
        }
        add("entries-swapped", .payload, "the streams of two entries with equal-length streams swapped", base: "many-entries") { b in
            // page-1 and page-2 entries hold 37 and 74 bytes: find two file streams of equal encoded length.
            var chosen: (Range<Int>, Range<Int>)?
            outer: for i in manyLayout.entries.indices {
                for j in manyLayout.entries.indices where j > i {
                    let ri = manyLayout.streamRange(manyLayout.entries[i]), rj = manyLayout.streamRange(manyLayout.entries[j])
                    if ri.count == rj.count && many.entries[i].kind == .file && many.entries[j].kind == .file && many.entries[i].data != many.entries[j].data {
                        chosen = (ri, rj)
                        break outer
                    }
                }
            }
            let (ri, rj) = chosen!
            let a = Array(b[ri]), c = Array(b[rj])
            b.replaceSubrange(rj, with: a)
            b.replaceSubrange(ri, with: c)
        }
        // A second archive with the same password and same layout: its entry stream spliced in.
        var other = text
        other.options = opts("multi-frame-text other archive")
        let otherBytes = try other.build()
        let otherLayout = try ArchiveLayout(otherBytes, entryCount: other.entries.count)
        add("spliced-from-other-archive", .payload, "entry stream replaced by the same entry from another archive with the same password") { b in
            let r = textLayout.streamRange(textLayout.entries[0])
            b.replaceSubrange(r, with: otherBytes[otherLayout.streamRange(otherLayout.entries[0])])
        }
        // truncated
        add("empty-file", .truncated, "zero bytes") { $0 = [] }
        add("truncated-in-header", .truncated, "cut inside the key slot") { $0.removeSubrange(80...) }
        add("truncated-in-frame", .truncated, "cut in the middle of an entry frame") { $0.removeSubrange((textLayout.entries[0][1].offset + 100)...) }
        add("truncated-at-frame-boundary", .truncated, "cut right after an entry's last frame (trailer missing)") { b in
            b.removeSubrange(textLayout.trailer[0].offset...)
        }
        add("truncated-footer", .truncated, "the last 10 bytes of the footer missing") { $0.removeLast(10) }
        add("footer-missing", .truncated, "the whole footer missing") { $0.removeLast(FormatV1.footerByteCount) }
        // trailer
        add("trailer-bit-flip", .trailer, "one bit of the trailer ciphertext flipped") { $0[textLayout.trailer[0].offset + 10] ^= 0x01 }
        add("footer-magic", .trailer, "footer magic changed") { $0[$0.count - 1] ^= 0x01 }
        add("footer-offset", .trailer, "footer's trailer offset changed") { b in b[textLayout.footerOffset] ^= 0x01 }
        add("footer-length", .trailer, "footer's trailer length changed") { b in b[textLayout.footerOffset + 8] ^= 0x01 }
        add("bytes-after-footer", .trailer, "one byte appended after the footer") { $0.append(0) }
        return out
    }
}
