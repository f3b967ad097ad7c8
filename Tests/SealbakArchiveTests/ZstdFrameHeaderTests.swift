import SealbakCompression
import SealbakTestSupport
import Testing

/// Spec §6.2 rule 7: what the writer's zstd frames look like, and how a frame header is read and checked.
@Suite struct ZstdFrameHeaderTests {
    static func compress(_ input: [UInt8], level: Int32) throws -> [UInt8] {
        var n: Int?
        let out = [UInt8](byteCapacity: input.count) { o in
            n = FrameCompressor().compress(input.span.bytes, into: &o, algorithm: .zstd(level: level))
        }
        _ = try #require(n)
        return out
    }

    /// The writer compresses each frame in one call with its size known, so libzstd shrinks the window to the input:
    /// no Dictionary_ID field, Frame_Content_Size = raw_len, Window_Size ≤ frame_size for every frame size and level.
    @Test(arguments: [(12, 3), (12, 19), (16, 1), (20, 3), (20, 19), (24, 3)])
    func writerFramesStayWithinTheCap(_ log2: Int, _ level: Int32) throws {
        let frameSize = 1 << log2
        for raw in [TestArchive.text(frameSize), TestArchive.text(frameSize / 3 + 7)] {
            let payload = try Self.compress(raw, level: level)
            let h = try ZstdFrameHeader.parse(payload.span.bytes)
            #expect(h.dictionaryIDFieldSize == 0)
            #expect(h.contentSize == UInt64(raw.count))
            #expect(h.windowSize <= UInt64(frameSize), "2^\(log2) level \(level): window \(h.windowSize)")
            #expect(throws: Never.self) { try h.check(maxWindow: UInt64(frameSize), rawLength: UInt64(raw.count)) }
        }
    }

    /// RFC 8878 §3.1.1.1.2: Window_Size = 2^(10 + exponent) + 2^(10 + exponent) / 8 × mantissa.
    @Test func windowDescriptorArithmetic() throws {
        func window(_ wd: UInt8) throws -> UInt64 {
            let bytes: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, wd]
            return try ZstdFrameHeader.parse(bytes.span.bytes).windowSize
        }
        #expect(try window(0x00) == 1024)
        #expect(try window(0x10) == 4096)  // exponent 2
        #expect(try window(0x18) == 8192)  // exponent 3
        #expect(try window(0x1B) == 8192 + 3 * 1024)
        #expect(try window(0xFF) == (1 << 41) + 7 * (1 << 38))
    }

    /// Rule 7's order: magic, then the reserved bit, the Dictionary_ID field, the window, the content size.
    @Test func checksRunInTheSpecifiedOrder() throws {
        func error(_ bytes: [UInt8], maxWindow: UInt64 = 4096, raw: UInt64 = 100) -> String {
            do {
                try ZstdFrameHeader.parse(bytes.span.bytes).check(maxWindow: maxWindow, rawLength: raw)
                return "accepted"
            } catch { return "\(error)" }
        }
        let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
        #expect(error([0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0]).contains("magic"))  // a skippable frame
        #expect(error(magic + [0x09, 0xFF, 0x00]).contains("reserved bit"))  // reserved + DID + huge window
        #expect(error(magic + [0x01, 0xFF, 0x00]).contains("dictionary"))  // DID present, value 0, huge window
        #expect(error(magic + [0x41, 0x10, 0x00, 0x00, 0x00]).contains("dictionary"))  // DID before content size
        #expect(error(magic + [0x40, 0x18, 0x00, 0x00]).contains("window"))  // window 8192 > 4096, FCS wrong too
        #expect(error(magic + [0x40, 0x10, 0x00, 0x00]).contains("content bytes"))  // FCS 256 ≠ 100
        #expect(error(magic + [0x40, 0x10, 100, 0x00], raw: 356) == "accepted")  // FCS field 2 bytes: value + 256
        #expect(error(magic + [0x20, 100]) == "accepted")  // single segment: window = FCS = 100
        #expect(error(magic + [0x20, 100], raw: 101).contains("content bytes"))
        // single segment, FCS 8192
        #expect(error(magic + [0xE0, 0, 0x20, 0, 0, 0, 0, 0, 0], maxWindow: 4096).contains("window"))
        #expect(error(magic + [0x00]).contains("ends inside"))
    }
}
