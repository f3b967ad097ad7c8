import SealbakFormat
import Testing

/// Format version 2 and its required features (Spec §3.1, §3.4) and the codec they allow (Spec §6.2).
@Suite struct FeatureTests {
    static func header(_ features: FormatFeatures) -> ArchiveHeader {
        var h = HeaderTests.sample()
        h.features = features
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

    @Test func noFeatureIsVersionOneWithFlagsZeroAsBefore() throws {
        let b = Self.header([]).encoded()
        #expect(b == HeaderTests.sample().encoded())
        #expect(b[8] == 1 && b[9] == 0 && b[12] == 0 && b[13] == 0)
        #expect(try ArchiveHeader.parse(b).features == [])
    }

    @Test func shuffleIsVersionTwoWithBitZero() throws {
        let h = Self.header(.shuffle)
        let b = h.encoded()
        #expect(h.version == 2)
        #expect(b[8] == 2 && b[9] == 0 && b[12] == 1 && b[13] == 0)
        let parsed = try ArchiveHeader.parse(b)
        #expect(parsed == h && parsed.features == .shuffle)
        #expect(parsed.encoded() == b)
    }

    /// Spec §3.4 rule 1: version 2 without a feature has another encoding than the archive's (version 1).
    @Test func versionTwoWithFlagsZeroIsAHeaderError() {
        var b = HeaderTests.sample().encoded()
        b[8] = 2
        let e = Self.error(b)
        #expect(e?.errorClass == .header && e?.offset == 12, "\(String(describing: e))")
    }

    /// Spec §3.4 rule 2: a bit this reader does not implement is a newer sealbak's (class `version`), named in the
    /// message, also when bit 0 is set beside it; it is checked before flags = 0 and before the later fields.
    @Test func unknownFeatureBitsAreVersionErrorsNamingTheBit() {
        for (flags, bit) in [(UInt16(0x0008), 3), (0x8001, 15), (0x000E, 3), (0x8002, 15), (0xFFFF, 3)] {
            var b = Self.header(.shuffle).encoded()
            b[12] = UInt8(flags & 0xFF)
            b[13] = UInt8(flags >> 8)
            b[14] = 9  // unknown cipher suite: later in field order, so not the reported defect
            let e = Self.error(b)
            #expect(e?.errorClass == .version && e?.offset == 12, "flags \(flags): \(String(describing: e))")
            #expect(
                e?.message.contains("feature bit \(bit)") == true && e?.message.contains("newer sealbak") == true,
                "\(String(describing: e))"
            )
        }
    }

    /// Spec §3.1: in version 1 every non-zero flags value stays a header error, the shuffle bit included.
    @Test func versionOneRejectsEveryFlag() {
        for flags: UInt16 in [1, 2, 0x8000] {
            var b = HeaderTests.sample().encoded()
            b[12] = UInt8(flags & 0xFF)
            b[13] = UInt8(flags >> 8)
            #expect(Self.error(b)?.errorClass == .header, "flags \(flags)")
        }
    }

    @Test func versionsAboveTwoAreVersionErrorsBeforeTheFlags() throws {
        var b = Self.header(.shuffle).encoded()
        b[8] = 3
        b[12] = 0
        #expect(Self.error(b)?.errorClass == .version)
        #expect(throws: FormatError.self) { try ArchiveHeader.declaredLength(prefix: Array(b.prefix(12))) }
        b[8] = 2
        #expect(try ArchiveHeader.declaredLength(prefix: Array(b.prefix(12))) == b.count)
    }

    /// A writer cannot encode a feature it does not implement: `validate` parses what it would write.
    @Test func validateRefusesUnknownFeatures() {
        #expect(throws: FormatError.self) { try Self.header(FormatFeatures(rawValue: 8)).validate() }
        #expect(throws: Never.self) { try Self.header(.shuffle).validate() }
    }

    @Test func featureNames() {
        #expect(FormatFeatures.shuffle.names == ["shuffle"])
        #expect(FormatFeatures.chained.names == ["chained"])
        #expect(FormatFeatures.dictionary.names == ["dictionary"])
        #expect(FormatFeatures(rawValue: 0x800F).names == ["shuffle", "chained", "dictionary", "bit 3", "bit 15"])
        #expect(FormatFeatures().description == "none")
    }

    /// Spec §6.2 rule 1: codec 3 is a codec only where the header declares feature bit 0; its payload follows
    /// the rules of the other compressed codecs (rule 4: never an empty frame; rule 6: smaller than raw_len).
    @Test func codecThreeNeedsTheShuffleFeature() throws {
        func parse(
            _ b: [UInt8],
            _ features: FormatFeatures,
            index: UInt64 = 0,
            last: Bool = true
        ) throws -> FramePlaintext {
            try FramePlaintext.parse(b.span.bytes, frameSize: 4096, frameIndex: index, isLast: last, features: features)
        }
        let frame: [UInt8] = [3, 8, 0, 0, 0, 1, 2, 3]
        #expect(try parse(frame, .shuffle).codec == .shuffledZstd)
        #expect(try parse(frame, .shuffle).rawLength == 8)
        #expect { try parse(frame, []) } throws: { e in
            guard let e = e as? FormatError else { return false }
            return e.errorClass == .payload && e.message.contains("shuffle")
        }
        #expect(throws: FormatError.self) { try parse([3, 0, 0, 0, 0], .shuffle) }  // empty: stored only
        #expect(throws: FormatError.self) { try parse([3, 2, 0, 0, 0, 7, 7], .shuffle) }  // not smaller
        #expect(throws: FormatError.self) { try parse([4, 8, 0, 0, 0, 1, 2, 3], .shuffle) }  // codec 4 never
        #expect(try parse([1, 8, 0, 0, 0, 1, 2, 3], .shuffle).codec == .zstd)  // the others stay
    }
}
