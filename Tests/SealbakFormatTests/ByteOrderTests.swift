import SealbakFormat
import Testing

struct ByteOrderTests {
    /// `utf8Precedes` and `bytesPrecede` are byte order of the UTF-8 encoding (not `String`'s `<`, which compares
    /// normalized scalars): prefixes first, every byte value unsigned, NFC and NFD names kept apart.
    @Test func namesSortByTheirUTF8Bytes() {
        let names = [
            "", "a", "a/", "a/b", "ab", "a\u{0}", "A", "z", "\u{7F}", "\u{80}", "\u{E9}", "e\u{301}", "\u{FFFF}",
            "\u{1F600}", "night/docs/area-00/topic-00/note-00001.md", "night/docs/area-00/topic-00/note-0000.md",
        ]
        for a in names {
            for b in names {
                let expected = Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
                #expect(a.utf8Precedes(b) == expected, "\(a.debugDescription) < \(b.debugDescription)")
                #expect(Array(a.utf8).bytesPrecede(Array(b.utf8)) == expected)
            }
        }
        #expect([UInt8]([0x7F]).bytesPrecede([0x80]) && ![UInt8]([0xFF]).bytesPrecede([0x01]))
    }
}
