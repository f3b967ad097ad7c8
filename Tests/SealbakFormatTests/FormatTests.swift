import SealbakFormat
import Testing

/// Parser strictness of Spec §2–§8, without any cryptography.
@Suite struct HeaderTests {
    static func sample(slots: Int = 1) -> ArchiveHeader {
        let s = (0..<slots).map { i in
            KeySlot(
                id: UInt16(i + 1),
                createdUnix: 1_700_000_000,
                label: "slot \(i)",
                body: .password(
                    kdf: KDFParameters(opsLimit: 3, memLimitKiB: 262_144),
                    salt: [UInt8](repeating: 1, count: 16),
                    nonce: [UInt8](repeating: 2, count: 24),
                    wrappedKey: [UInt8](repeating: 3, count: 48)
                )
            )
        }
        return ArchiveHeader(
            cipherSuite: .xchacha20poly1305,
            frameSizeLog2: 20,
            archiveID: [UInt8](repeating: 9, count: 16),
            createdUnix: 1_700_000_000,
            slots: s,
            mac: [UInt8](repeating: 7, count: 32)
        )
    }

    @Test func headerRoundTripsByteForByte() throws {
        for n in [1, 2, 32] {
            let h = Self.sample(slots: n)
            let bytes = h.encoded()
            #expect(try ArchiveHeader.parse(bytes) == h)
            #expect(try ArchiveHeader.parse(bytes).encoded() == bytes)
            #expect(Int(bytes[10]) | Int(bytes[11]) << 8 == bytes.count)
        }
    }

    @Test func fixedFieldsSitAtTheSpecifiedOffsets() {
        let b = Self.sample().encoded()
        #expect(Array(b[0..<8]) == [0x89, 0x53, 0x42, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(b[8] == 1 && b[9] == 0)
        #expect(b[14] == 1 && b[15] == 20)
        #expect(Array(b[16..<32]) == [UInt8](repeating: 9, count: 16))
        #expect(b[40] == 1)
        #expect(Array(b[(b.count - 32)...]) == [UInt8](repeating: 7, count: 32))
    }

    @Test func trailingBytesAreRejected() {
        #expect(throws: FormatError.self) { try ArchiveHeader.parse(Self.sample().encoded() + [0]) }
    }

    @Test func newerVersionIsAVersionError() {
        var b = Self.sample().encoded()
        b[8] = 3  // version 2 is known (Spec §3.4): the first newer one is 3
        #expect { try ArchiveHeader.parse(b) } throws: {
            ($0 as? FormatError)?.errorClass == .version && "\($0)".contains("newer sealbak")
        }
    }

    /// Spec §4.1: slot fields are checked in field order, so slot type 0 is reported before a later defect of the
    /// same slot (reserved flags, slot id, label, body length), at the type byte's offset.
    @Test func slotTypeZeroIsCheckedBeforeTheFieldsAfterIt() {
        var b = Self.sample().encoded()
        b[41] = 0  // slot type 0
        b[42] = 1  // reserved slot flags set
        b[43] = 0
        b[44] = 0  // slot id 0
        #expect { try ArchiveHeader.parse(b) } throws: { e in
            guard let e = e as? FormatError else { return false }
            return e.errorClass == .header && e.offset == 41 && e.message.contains("slot type 0")
        }
    }

    /// Spec §4.1 rule column: the label must be well-formed UTF-8 (class `header`, before the MAC is checked).
    @Test func slotLabelMustBeUTF8() {
        var b = Self.sample().encoded()
        b[54] = 0xFF  // first label byte ("slot 0")
        #expect { try ArchiveHeader.parse(b) } throws: { e in
            guard let e = e as? FormatError else { return false }
            return e.errorClass == .header && e.offset == 54 && e.message.contains("UTF-8")
        }
    }

    @Test func unknownSlotTypesAreKeptVerbatim() throws {
        var h = Self.sample(slots: 2)
        h.slots[1].body = .unknown(type: 9, body: [1, 2, 3, 4])
        let parsed = try ArchiveHeader.parse(h.encoded())
        #expect(parsed == h)
        #expect(parsed.encoded() == h.encoded())
    }

    @Test func slotIDsMustIncrease() {
        var h = Self.sample(slots: 2)
        h.slots[1].id = 1
        #expect(throws: FormatError.self) { try ArchiveHeader.parse(h.encoded()) }
    }

    @Test func everyPrefixIsTruncatedOrRejected() {
        let b = Self.sample().encoded()
        for n in 0..<b.count {
            #expect(throws: FormatError.self) { try ArchiveHeader.parse(Array(b.prefix(n))) }
        }
    }
}

@Suite struct ManifestTests {
    static let manifest = Manifest(
        metadata: Metadata(["b": "2", "a": "1"]),
        entries: [
            ManifestEntry(kind: .directory, name: "dir", mode: 0o755),
            ManifestEntry(
                kind: .file,
                name: "dir/f.txt",
                mode: 0o644,
                mtimeSeconds: -5,
                mtimeNanoseconds: 999_999_999,
                metadata: Metadata(["kind": "config"])
            ),
            ManifestEntry(kind: .symlink, name: "dir/l", mode: 0o777, linkTarget: "f.txt"),
            ManifestEntry(kind: .stream, name: "db.dump"),
        ]
    )

    @Test func manifestRoundTripsByteForByte() throws {
        let bytes = Self.manifest.encoded()
        let parsed = try Manifest.parse(bytes)
        #expect(parsed == Self.manifest)
        #expect(parsed.encoded() == bytes)
        #expect(Array(parsed.metadata.map(\.key)) == ["a", "b"])
    }

    @Test(arguments: [
        "", "/etc/passwd", "../x", "a/../../x", "a//b", "a/", "./a", "a/.", "a\u{0}b",
        String(repeating: "x", count: 4097),
    ])
    func nonCanonicalNamesAreRejected(_ name: String) {
        #expect(EntryName.problem(name) != nil)
        var m = Self.manifest
        m.entries[1].name = name
        #expect(throws: FormatError.self) { try Manifest.parse(m.encoded()) }
    }

    @Test(arguments: ["a", "a/b/c", "..a", "a..", ".hidden", "x\\y", "données/é"])
    func canonicalNamesAreAccepted(_ name: String) {
        #expect(EntryName.problem(name) == nil)
    }

    @Test func duplicateNamesAreRejectedBytewise() throws {
        var m = Self.manifest
        m.entries[3].name = "dir/f.txt"
        #expect(throws: FormatError.self) { try Manifest.parse(m.encoded()) }
        // NFC and NFD spellings are different files on Linux, hence different names.
        m.entries[1].name = "caf\u{E9}"
        m.entries[3].name = "cafe\u{301}"
        #expect(try Manifest.parse(m.encoded()).entries.count == 4)
    }

    @Test func linkTargetsOnlyOnSymlinks() {
        var m = Self.manifest
        m.entries[1].linkTarget = "x"
        #expect(throws: FormatError.self) { try Manifest.parse(m.encoded()) }
        m = Self.manifest
        m.entries[2].linkTarget = ""
        #expect(throws: FormatError.self) { try Manifest.parse(m.encoded()) }
    }

    @Test func unknownKindIsMadeByANewerSealbak() {
        var b = Self.manifest.encoded()
        // The first entry's kind follows the archive metadata (2 + 2 × 7 bytes) and the entry count (4).
        let metadataLength = 2 + (1 + 1 + 4 + 1) * 2
        #expect(b[metadataLength + 4] == EntryKind.directory.rawValue)
        b[metadataLength + 4] = 77
        #expect { try Manifest.parse(b) } throws: { ($0 as? FormatError)?.errorClass == .version }
    }

    @Test func hugeCountsAreRefusedBeforeAllocation() {
        var w = [UInt8](repeating: 0, count: 2)  // empty metadata
        w += [0xFF, 0xFF, 0xFF, 0x00]  // 16,777,215 entries, no bytes for them
        #expect(throws: FormatError.self) { try Manifest.parse(w) }
    }

    @Test func unsortedMetadataIsRejected() {
        var b = Manifest(metadata: Metadata(["a": "1", "b": "2"])).encoded()
        // swap the two keys "a" and "b" in place
        let ia = b.firstIndex(of: UInt8(ascii: "a"))!
        let ib = b.firstIndex(of: UInt8(ascii: "b"))!
        b[ia] = UInt8(ascii: "b")
        b[ib] = UInt8(ascii: "a")
        #expect(throws: FormatError.self) { try Manifest.parse(b) }
    }

    @Test func trailingBytesAreRejected() {
        #expect(throws: FormatError.self) { try Manifest.parse(Self.manifest.encoded() + [0]) }
    }
}

@Suite struct TrailerTests {
    static let fs = 4096
    static func sample() -> Trailer {
        let frame = UInt64(4 + 5 + 16)
        return Trailer(
            archiveID: [UInt8](repeating: 1, count: 16),
            manifestLength: 100,
            entries: [
                TrailerEntry(size: 0, offset: 100, length: frame, sha256: [UInt8](repeating: 0, count: 32)),
                TrailerEntry(size: 5000, offset: 100 + frame, length: 4000, sha256: [UInt8](repeating: 5, count: 32)),
            ],
            trailerOffset: 100 + frame + 4000
        )
    }

    @Test func trailerRoundTrips() throws {
        let t = Self.sample()
        #expect(try Trailer.parse(t.encoded(), frameSize: Self.fs) == t)
    }

    @Test func streamsMustBeContiguous() {
        var t = Self.sample()
        t.entries[1].offset += 1
        #expect(throws: FormatError.self) { try Trailer.parse(t.encoded(), frameSize: Self.fs) }
        t = Self.sample()
        t.trailerOffset += 1
        #expect(throws: FormatError.self) { try Trailer.parse(t.encoded(), frameSize: Self.fs) }
    }

    @Test func implausibleStreamLengthsAreRejected() {
        var t = Self.sample()
        t.entries[1].length = 10  // two frames need at least 50 bytes
        t.trailerOffset = t.entries[1].offset + 10
        #expect(throws: FormatError.self) { try Trailer.parse(t.encoded(), frameSize: Self.fs) }
    }

    @Test func footerRoundTripsAndChecksMagic() throws {
        let f = Footer(trailerOffset: 123, trailerLength: 456)
        #expect(try Footer.parse(f.encoded()) == f)
        var b = f.encoded()
        b[23] ^= 1
        #expect(throws: FormatError.self) { try Footer.parse(b) }
    }
}

@Suite struct FrameTests {
    @Test func headerBitsAndBounds() throws {
        let h = FrameHeader(ciphertextLength: 4096 + 21, isLast: true)
        #expect(h.encoded() == [0x15, 0x10, 0x00, 0x80])
        #expect(try FrameHeader.parse(h.encoded(), frameSize: 4096) == h)
        #expect(throws: FormatError.self) {
            try FrameHeader.parse(FrameHeader(ciphertextLength: 4096 + 22, isLast: false).encoded(), frameSize: 4096)
        }
        #expect(throws: FormatError.self) {
            try FrameHeader.parse(FrameHeader(ciphertextLength: 20, isLast: false).encoded(), frameSize: 4096)
        }
    }

    @Test func noncesNeverRepeatWithinOrAcrossStreams() {
        var seen = Set<[UInt8]>()
        for stream in [0, 1, 2, FormatV1.manifestStreamID, FormatV1.trailerStreamID] as [UInt32] {
            for index in 0..<200 as Range<UInt64> {
                for last in [false, true] {
                    #expect(
                        seen.insert(
                            FrameBinding.nonce(suite: .aes256gcm, streamID: stream, frameIndex: index, isLast: last)
                        ).inserted
                    )
                }
            }
        }
        #expect(FrameBinding.nonce(suite: .xchacha20poly1305, streamID: 1, frameIndex: 2, isLast: true).count == 24)
        #expect(
            FrameBinding.nonce12(streamID: 1, frameIndex: 2, isLast: true) == [1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x80]
        )
    }

    @Test func frameCountNeverOverflows() {
        // Found by the trailer fuzzer: (size + frameSize - 1) overflowed for sizes near 2^64.
        #expect(FormatV1.frameCount(size: .max, frameSize: 4096) == UInt64.max / 4096 + 1)
        #expect(FormatV1.frameCount(size: 0, frameSize: 4096) == 1)
        #expect(FormatV1.frameCount(size: 4096, frameSize: 4096) == 1)
        #expect(FormatV1.frameCount(size: 4097, frameSize: 4096) == 2)
    }

    @Test func plaintextEnvelopeRules() throws {
        func parse(_ b: [UInt8], index: UInt64 = 0, last: Bool = true) throws -> FramePlaintext {
            try FramePlaintext.parse(b.span.bytes, frameSize: 4096, frameIndex: index, isLast: last, features: [])
        }
        #expect(try parse([0, 0, 0, 0, 0]).rawLength == 0)  // the empty stream
        #expect(throws: FormatError.self) { try parse([0, 0, 0, 0, 0], index: 1) }  // empty frame later on
        #expect(throws: FormatError.self) { try parse([1, 0, 0, 0, 0]) }  // empty compressed frame
        #expect(throws: FormatError.self) { try parse([0, 2, 0, 0, 0, 7]) }  // stored length mismatch
        #expect(throws: FormatError.self) { try parse([1, 2, 0, 0, 0, 7, 7]) }  // compressed not smaller
        #expect(throws: FormatError.self) { try parse([0, 1, 0, 0, 0, 7], last: false) }  // short non-last frame
        #expect(throws: FormatError.self) { try parse([9, 1, 0, 0, 0, 7]) }  // unknown codec
        #expect(throws: FormatError.self) { try parse([0, 1, 0x10, 0, 0, 7]) }  // raw length above frame size
    }
}
