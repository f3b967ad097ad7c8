import SealbakFormat
import Testing

/// Feature bit 1 (chained): the base record between the last key slot and the header MAC.
@Suite struct BaseRecordTests {
    static let baseID = [UInt8](repeating: 0xA1, count: 16)
    static let baseHash = [UInt8](repeating: 0xB2, count: 32)

    static func header(_ base: BaseRecord?, features: FormatFeatures = .chained, slots: Int = 1) -> ArchiveHeader {
        var h = HeaderTests.sample(slots: slots)
        h.features = features
        h.base = base
        return h
    }

    static func error(_ bytes: [UInt8]) -> FormatError? {
        do {
            _ = try ArchiveHeader.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    /// The bytes of `h` with its base record replaced by `record` (50 bytes), MAC untouched.
    static func withRecord(_ h: ArchiveHeader, _ record: [UInt8]) -> [UInt8] {
        var b = h.encoded()
        let start = b.count - 32 - 50
        b.replaceSubrange(start..<start + 50, with: record)
        return b
    }

    @Test func rootAndNonRootRoundTrip() throws {
        for base in [BaseRecord.root, BaseRecord(archiveID: Self.baseID, trailerSHA256: Self.baseHash, depth: 7)] {
            for slots in [1, 3] {
                let h = Self.header(base, slots: slots)
                let b = h.encoded()
                #expect(b.count == 41 + slotBytes(slots) + 50 + 32)
                #expect(Int(b[10]) | Int(b[11]) << 8 == b.count)
                #expect(b[8] == 2 && b[12] == 2 && b[13] == 0)
                let parsed = try ArchiveHeader.parse(b)
                #expect(parsed == h && parsed.base == base)
                #expect(parsed.encoded() == b)
                #expect(throws: Never.self) { try h.validate() }
            }
        }
        #expect(BaseRecord.root.isRoot && BaseRecord.root.depth == 0)
        #expect(BaseRecord.root.archiveID == [UInt8](repeating: 0, count: 16))
        #expect(BaseRecord.root.trailerSHA256 == [UInt8](repeating: 0, count: 32))
        #expect(!BaseRecord(archiveID: Self.baseID, trailerSHA256: Self.baseHash, depth: 1).isRoot)
        #expect(BaseRecord.byteCount == 50)
    }

    func slotBytes(_ n: Int) -> Int { HeaderTests.sample(slots: n).encoded().count - 41 - 32 }

    @Test func recordLayoutIsIDThenHashThenLittleEndianDepth() {
        let h = Self.header(BaseRecord(archiveID: Self.baseID, trailerSHA256: Self.baseHash, depth: 0x0102))
        let b = h.encoded()
        let start = b.count - 32 - 50
        #expect(Array(b[start..<start + 16]) == Self.baseID)
        #expect(Array(b[start + 16..<start + 48]) == Self.baseHash)
        #expect(b[start + 48] == 0x02 && b[start + 49] == 0x01)
        #expect(Array(b.suffix(32)) == h.mac)
    }

    /// The MAC input (`encodedWithoutMAC`) covers the base record.
    @Test func macInputCoversTheBaseRecord() {
        let a = Self.header(BaseRecord(archiveID: Self.baseID, trailerSHA256: Self.baseHash, depth: 1))
        var b = a
        b.base?.depth = 2
        #expect(a.encodedWithoutMAC() != b.encodedWithoutMAC())
        #expect(Array(a.encodedWithoutMAC().suffix(50)) == a.base!.encoded())
    }

    @Test func shuffleAndChainedTogether() throws {
        let h = Self.header(.root, features: [.shuffle, .chained])
        let b = h.encoded()
        #expect(b[12] == 3)
        #expect(try ArchiveHeader.parse(b) == h)
    }

    @Test func baseRecordRulesAreHeaderErrorsInOrder() {
        let h = Self.header(BaseRecord(archiveID: Self.baseID, trailerSHA256: Self.baseHash, depth: 1))
        let zero16 = [UInt8](repeating: 0, count: 16)
        let zero32 = [UInt8](repeating: 0, count: 32)
        let cases: [([UInt8], String)] = [
            (zero16 + Self.baseHash + [0, 0], "chain root"),  // depth 0, hash set
            (Self.baseID + zero32 + [0, 0], "chain root"),  // depth 0, id set
            (zero16 + Self.baseHash + [1, 0], "all-zero base archive id"),
            (Self.baseID + zero32 + [1, 0], "all-zero base trailer hash"),
            (zero16 + zero32 + [5, 0], "all-zero base archive id"),
            (Self.baseID + Self.baseHash + [0x01, 0x04], "exceeds the maximum 1024"),  // 1025
            (Self.baseID + Self.baseHash + [0xFF, 0xFF], "exceeds the maximum 1024"),
            (h.archiveID + Self.baseHash + [1, 0], "own id"),
        ]
        for (record, text) in cases {
            let e = Self.error(Self.withRecord(h, record))
            #expect(e?.errorClass == .header && e?.message.contains(text) == true, "\(String(describing: e))")
        }
        // Depth 1024 is the largest accepted.
        #expect(Self.error(Self.withRecord(h, Self.baseID + Self.baseHash + [0x00, 0x04])) == nil)
    }

    @Test func aChainedHeaderWithoutItsRecordIsAHeaderError() {
        // The version-1 layout with flags 2: the slots end at the MAC, 50 bytes too late.
        var b = HeaderTests.sample().encoded()
        b[8] = 2
        b[12] = 2
        let e = Self.error(b)
        #expect(e?.errorClass == .header && e?.message.contains("base record") == true, "\(String(describing: e))")
        // A base record in a header without the feature: bytes left between the slots and the MAC.
        var noFeature = Self.header(.root, features: .shuffle).encoded()
        #expect(Self.error(noFeature)?.errorClass == .header)
        noFeature[12] = 3
        #expect(Self.error(noFeature) == nil)
    }

    @Test func validateRequiresRecordExactlyWithTheFeature() {
        #expect(throws: FormatError.self) { try Self.header(nil).validate() }
        #expect(throws: FormatError.self) { try Self.header(.root, features: .shuffle).validate() }
        #expect(throws: FormatError.self) { try Self.header(.root, features: []).validate() }
        let bad = BaseRecord(archiveID: Self.baseID, trailerSHA256: Self.baseHash, depth: 0)
        #expect(throws: FormatError.self) { try Self.header(bad).validate() }
    }

    /// Key editing mutates the parsed struct and re-encodes it: the record survives.
    @Test func slotEditsKeepTheBaseRecord() throws {
        let base = BaseRecord(archiveID: Self.baseID, trailerSHA256: Self.baseHash, depth: 3)
        var h = try ArchiveHeader.parse(Self.header(base, slots: 2).encoded())
        h.slots.removeLast()
        h.slots[0].label = "renamed"
        let back = try ArchiveHeader.parse(h.encoded())
        #expect(back.base == base && back.slots.count == 1)
    }
}
