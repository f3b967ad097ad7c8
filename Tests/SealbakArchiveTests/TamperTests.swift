import Foundation
import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Testing

/// Spec §9: every alteration is detected, with the right class, and nothing unverified is released.
@Suite struct TamperTests {
    static let entries = [
        TestEntry(.directory, "d"),
        TestEntry(.file, "d/a.txt", TestArchive.text(700)),
        TestEntry(.file, "d/b.bin", TestArchive.noise(4096 + 300, seed: 3)),
    ]
    static let archive = try! TestArchive.build(entries, options: TestArchive.options(seed: "tamper"))
    /// 1 (every byte) normally; sanitizer runs in scripts/test set SEALBAK_TAMPER_STRIDE to sample the matrix.
    static let step = Int(ProcessInfo.processInfo.environment["SEALBAK_TAMPER_STRIDE"] ?? "") ?? 1
    static let layout = try! ArchiveLayout(archive, entryCount: entries.count)

    /// Classes that may result from changing a byte in each region.
    static func allowed(at offset: Int) -> Set<FailureClass> {
        if offset < 41 { return [.header, .version, .key, .mac, .truncated] }
        if offset < layout.headerLength - 32 { return [.header, .key, .mac, .truncated] }
        if offset < layout.headerLength { return [.mac] }
        if offset < layout.footerOffset {
            let inTrailer = offset >= layout.trailer[0].offset
            return inTrailer ? [.trailer, .truncated] : [.payload, .truncated, .trailer]
        }
        return [.trailer, .truncated]
    }

    @Test func flippingAnyByteIsDetectedWithTheRightClass() throws {
        var failures: [String] = []
        for offset in stride(from: 0, to: Self.archive.count, by: Self.step) {
            var b = Self.archive
            b[offset] ^= 0xFF
            let got = try TestReader.failureClass(b)
            if got == nil || !Self.allowed(at: offset).contains(got!) {
                failures.append("byte \(offset): \(got.map { $0.rawValue } ?? "accepted")")
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(20))")
    }

    @Test func flippingAnyBitOfTheHeaderOneFrameAndTheTrailerIsDetected() throws {
        let frame = Self.layout.entries[2][0]
        let regions = [
            0..<Self.layout.headerLength, frame.offset..<frame.offset + frame.length,
            Self.layout.streamRange(Self.layout.trailer),
        ]
        var failures: [String] = []
        for r in regions {
            for offset in stride(from: r.lowerBound, to: r.upperBound, by: Self.step) {
                for bit in 0..<8 {
                    var b = Self.archive
                    b[offset] ^= UInt8(1 << bit)
                    let got = try TestReader.failureClass(b)
                    if got == nil || !Self.allowed(at: offset).contains(got!) {
                        failures.append("byte \(offset) bit \(bit): \(String(describing: got))")
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(20))")
    }

    @Test func truncationAtEveryByteIsReportedAsTruncation() throws {
        var failures: [Int] = []
        for length in stride(from: 0, to: Self.archive.count, by: Self.step) {
            if try TestReader.failureClass(Array(Self.archive.prefix(length))) != .truncated { failures.append(length) }
        }
        #expect(failures.isEmpty, "lengths not reported as truncated: \(failures.prefix(20))")
    }

    @Test func truncationIsCaughtByTheIndexToo() throws {
        for length in [
            Self.archive.count - 1, Self.layout.footerOffset, Self.layout.trailer[0].offset,
            Self.layout.entries[2][1].offset,
        ] {
            let (input, path) = try TestReader.file(Array(Self.archive.prefix(length)))
            defer { unlink(path) }
            let reader = try ArchiveReader(input: input, passphrase: Passphrase(string: "password"))
            #expect(throws: SealbakError.self) { try reader.loadIndex() }
        }
    }

    @Test func aFailedReadReleasesNoFinishedEntryAfterTheDamage() throws {
        // Damage the second frame of entry 2: entries 0 and 1 may finish, entry 2 must not.
        var b = Self.archive
        b[Self.layout.entries[2][1].offset + 20] ^= 1
        let (input, path) = try TestReader.file(b)
        defer { unlink(path) }
        let reader = try ArchiveReader(input: input, passphrase: Passphrase(string: "password"))
        let sink = MemorySink()
        #expect(throws: SealbakError.self) { try reader.readAll(into: sink) }
        #expect(!sink.finished.contains(2))
    }

    @Test func extractionLeavesNothingBehindOnAnyCorruption() throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for offset in stride(from: Self.layout.headerLength, to: Self.archive.count, by: 97) {
            var b = Self.archive
            b[offset] ^= 0x10
            let (input, path) = try TestReader.file(b)
            defer { unlink(path) }
            #expect(throws: SealbakError.self) {
                let reader = try ArchiveReader(input: input, passphrase: Passphrase(string: "password"))
                let ex = try Extractor(
                    root: root,
                    manifest: reader.manifest,
                    selected: Set(reader.manifest.entries.indices),
                    force: false
                )
                do {
                    try reader.readAll(into: ex)
                    try ex.commit()
                } catch {
                    ex.abort()
                    throw error
                }
            }
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: root).isEmpty,
                "offset \(offset) left files in the target"
            )
        }
    }

    @Test func wrongPasswordIsAKeyError() throws {
        #expect(try TestReader.failureClass(Self.archive, password: "not it") == .key)
    }

    @Test func newerVersionSaysSo() throws {
        var b = Self.archive
        b[8] = 7
        do {
            _ = try TestReader.readAll(b)
            Issue.record("accepted a version 7 archive")
        } catch let e as SealbakError {
            #expect(e.code == .unsupported)
            #expect(e.message.contains("made by a newer sealbak"))
        }
    }

    @Test func kdfCostAboveTheCapIsRefusedBeforeRunning() throws {
        var o = TestArchive.options()
        o.kdf = KDFParameters(opsLimit: 2, memLimitKiB: 16)
        let b = try TestArchive.build([], options: o)
        do {
            _ = try TestReader.readAll(b, limits: KDFLimits(maxOpsLimit: 1, maxMemLimitKiB: 1 << 20))
            Issue.record("accepted a slot above the cap")
        } catch let e as SealbakError {
            #expect(e.code == .unsupported)
            #expect(e.message.contains("--max-kdf"))
        }
        #expect(
            try TestReader.readAll(b, limits: KDFLimits(maxOpsLimit: 2, maxMemLimitKiB: 16)).manifest.entries.isEmpty
        )
    }

    @Test func streamsFromAnotherArchiveWithTheSamePasswordAreRejected() throws {
        let other = try TestArchive.build(Self.entries, options: TestArchive.options(seed: "tamper other"))
        let otherLayout = try ArchiveLayout(other, entryCount: Self.entries.count)
        for i in Self.entries.indices {
            var b = Self.archive
            let mine = Self.layout.streamRange(Self.layout.entries[i])
            b.replaceSubrange(mine, with: other[otherLayout.streamRange(otherLayout.entries[i])])
            #expect(try TestReader.failureClass(b) == .payload, "entry \(i)")
        }
        // And the manifest and trailer streams.
        var m = Self.archive
        m.replaceSubrange(
            Self.layout.streamRange(Self.layout.manifest),
            with: other[otherLayout.streamRange(otherLayout.manifest)]
        )
        #expect(try TestReader.failureClass(m) == .payload)
        var t = Self.archive
        t.replaceSubrange(
            Self.layout.streamRange(Self.layout.trailer),
            with: other[otherLayout.streamRange(otherLayout.trailer)]
        )
        #expect(try TestReader.failureClass(t) == .trailer)
    }

    @Test func framesCannotBeReorderedDuplicatedOrDropped() throws {
        let frames = Self.layout.entries[2]
        #expect(frames.count == 2)
        let f0 = Array(Self.archive[frames[0].offset..<frames[0].offset + frames[0].length])
        let f1 = Array(Self.archive[frames[1].offset..<frames[1].offset + frames[1].length])
        let r = Self.layout.streamRange(frames)
        for replacement in [f1 + f0, f0 + f0 + f1, f0 + f1 + f1, f1, f0, f0 + f1 + f0] {
            var b = Self.archive
            b.replaceSubrange(r, with: replacement)
            // A surplus frame is read as the first frame of the next stream (here the trailer) and fails there.
            let got = try TestReader.failureClass(b)
            #expect(got == .payload || got == .truncated || got == .trailer, "\(String(describing: got))")
        }
        // Moving a frame to another entry of the same archive.
        var b = Self.archive
        let e1 = Self.layout.streamRange(Self.layout.entries[1])
        b.replaceSubrange(e1, with: f1)
        #expect(try TestReader.failureClass(b) == .payload)
    }
}
