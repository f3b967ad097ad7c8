import Foundation
import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Synchronization
import Testing

@Suite(.serialized) struct SecretWipeTests {
    /// SecureBytes wipes its memory before freeing it. The observer sees the bytes after the wipe, before free.
    @Test func secureBytesAreZeroedWhenReleased() {
        let observed = Mutex<[[UInt8]]>([])
        SecureBytes.wipeObserver.withLock { $0 = { buf in observed.withLock { $0.append(Array(buf)) } } }
        defer { SecureBytes.wipeObserver.withLock { $0 = nil } }
        do {
            let key = SecureBytes(copying: [UInt8](repeating: 0xAB, count: 32))
            #expect(key.withUnsafeBytes { Array($0) } == [UInt8](repeating: 0xAB, count: 32))
        }
        let seen = observed.withLock { $0 }
        #expect(seen.contains { $0.count == 32 })
        #expect(seen.allSatisfy { $0.allSatisfy { $0 == 0 } })
    }

    /// Opening an archive creates the KEK, master key and subkeys in guarded memory; all are wiped afterwards.
    @Test func keysFromAnArchiveReadAreWiped() throws {
        let bytes = try TestArchive.build([TestEntry(.file, "f", TestArchive.text(100))])
        let count = Mutex(0)
        let dirty = Mutex(0)
        SecureBytes.wipeObserver.withLock {
            $0 = { buf in
                count.withLock { $0 += 1 }
                if buf.contains(where: { $0 != 0 }) { dirty.withLock { $0 += 1 } }
            }
        }
        defer { SecureBytes.wipeObserver.withLock { $0 = nil } }
        _ = try TestReader.readAll(bytes)
        #expect(count.withLock { $0 } >= 5)  // password, KEK, master key, header MAC key, stream keys
        #expect(dirty.withLock { $0 } == 0)
    }
}

@Suite struct KeyHierarchyTests {
    @Test func subkeysDifferPerStreamAndPurpose() {
        let master = MasterKey.generate(random: SystemRandom())
        var keys: [[UInt8]] = [master.headerMACKey.withUnsafeBytes { Array($0) }]
        for id in [0, 1, 2, FormatV1.manifestStreamID, FormatV1.trailerStreamID] as [UInt32] {
            keys.append(master.streamKey(id).withUnsafeBytes { Array($0) })
        }
        #expect(Set(keys).count == keys.count)
    }

    @Test func archivesNeverShareMasterKeysOrIDs() throws {
        let a = try TestArchive.build([])
        let b = try TestArchive.build([])
        #expect(Array(a[16..<32]) != Array(b[16..<32]))
        #expect(a != b)
    }

    @Test func everyFrameOfAnArchiveHasAUniqueNonce() throws {
        let entries = (0..<6).map { TestEntry(.file, "f\($0)", TestArchive.noise(4096 * $0 + 10, seed: UInt64($0))) }
        let bytes = try TestArchive.build(entries)
        let layout = try ArchiveLayout(bytes, entryCount: entries.count)
        var seen = Set<[UInt8]>()
        func record(_ stream: UInt32, _ frames: [ArchiveLayout.FrameSpan]) {
            for (i, f) in frames.enumerated() {
                #expect(f.isLast == (i == frames.count - 1))
                #expect(
                    seen.insert(
                        FrameBinding.nonce(
                            suite: .xchacha20poly1305,
                            streamID: stream,
                            frameIndex: UInt64(i),
                            isLast: f.isLast
                        )
                    ).inserted
                )
            }
        }
        record(FormatV1.manifestStreamID, layout.manifest)
        for (i, e) in layout.entries.enumerated() { record(UInt32(i), e) }
        record(FormatV1.trailerStreamID, layout.trailer)
    }

    @Test func headerIsAuthenticatedUnderTheMasterKey() throws {
        let bytes = try TestArchive.build([])
        let (input, path) = try TestReader.file(bytes)
        defer { unlink(path) }
        let header = try ArchiveReader.readHeader(input)
        let (master, _) = try KeySlots.unlock(
            header: header,
            passphrase: Passphrase(string: "password"),
            limits: .default,
            archive: "x"
        )
        #expect(master.mac(for: header) == header.mac)
        var other = header
        other.createdUnix += 1
        #expect(master.mac(for: other) != header.mac)
    }
}

@Suite struct ExtractionSafetyTests {
    func unpack(_ entries: [TestEntry], to root: String, force: Bool = false) throws -> Extractor {
        let bytes = try TestArchive.build(entries)
        let (input, path) = try TestReader.file(bytes)
        defer { unlink(path) }
        let reader = try ArchiveReader(input: input, passphrase: Passphrase(string: "password"))
        let ex = try Extractor(
            root: root,
            manifest: reader.manifest,
            selected: Set(reader.manifest.entries.indices),
            force: force
        )
        do {
            try reader.readAll(into: ex)
            try ex.commit()
        } catch {
            ex.abort()
            throw error
        }
        return ex
    }

    @Test(arguments: [
        ("a/b", "../../x"), ("a", "/etc/passwd"), ("a", "../x"), ("a/b", "c/../../../x"), ("a/b", "x/.."),
        ("a", "/\u{301}etc"), ("a", "../\u{301}x"),
    ])
    func symlinksThatLeaveTheRootAreRefused(_ pair: (String, String)) {
        #expect(!Extractor.symlinkStaysInside(name: pair.0, target: pair.1))
    }

    @Test(arguments: [("a", "b"), ("a/b", "../c"), ("a/b/c", "../../d/e"), ("a", "./b/c")])
    func symlinksThatStayInsideAreAllowed(_ pair: (String, String)) {
        #expect(Extractor.symlinkStaysInside(name: pair.0, target: pair.1))
    }

    @Test func escapingSymlinksAreSkippedAndNothingIsWrittenThroughThem() throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let ex = try unpack(
            [TestEntry(.symlink, "evil", link: "/tmp"), TestEntry(.file, "ok.txt", [1, 2, 3])],
            to: root
        )
        #expect(ex.skippedSymlinks == ["evil"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).sorted() == ["ok.txt"])
    }

    @Test func aFileBehindAnArchiveSymlinkIsRefused() throws {
        // "d" is an inside symlink to "real"; an entry "d/f" must not be written through it.
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(throws: SealbakError.self) {
            _ = try unpack(
                [TestEntry(.directory, "real"), TestEntry(.symlink, "d", link: "real"), TestEntry(.file, "d/f", [1])],
                to: root
            )
        }
    }

    @Test func aPreexistingSymlinkInTheTargetIsNeverFollowed() throws {
        let root = try Proc.tempDir()
        let outside = try Proc.tempDir()
        defer {
            try? FileManager.default.removeItem(atPath: root)
            try? FileManager.default.removeItem(atPath: outside)
        }
        try FileManager.default.createSymbolicLink(atPath: root + "/sub", withDestinationPath: outside)
        #expect(throws: SealbakError.self) { _ = try unpack([TestEntry(.file, "sub/f", [1])], to: root) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    @Test func existingFilesAreKeptUnlessForced() throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data([9]).write(to: URL(fileURLWithPath: root + "/f"))
        #expect { _ = try unpack([TestEntry(.file, "f", [1, 2])], to: root) } throws: {
            ($0 as? SealbakError)?.code == .targetExists
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/f")) == Data([9]))
        _ = try unpack([TestEntry(.file, "f", [1, 2])], to: root, force: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/f")) == Data([1, 2]))
    }

    @Test func aFileIsNeverReplacedByADirectoryOrTheReverse() throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Data([9]).write(to: URL(fileURLWithPath: root + "/a"))
        #expect {
            _ = try unpack([TestEntry(.directory, "a"), TestEntry(.file, "a/b", [1])], to: root, force: true)
        } throws: {
            ($0 as? SealbakError)?.code == .targetExists
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["a"])
    }

    @Test func staleStagingFromAKilledUnpackIsRemoved() throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A staging directory of a process that no longer exists (pid 2^22 + 1 is above Linux's pid_max default).
        try FileManager.default.createDirectory(
            atPath: root + "/.sealbak-unpack-4194305-abcdef",
            withIntermediateDirectories: true
        )
        try Data([1]).write(to: URL(fileURLWithPath: root + "/.sealbak-unpack-4194305-abcdef/0"))
        _ = try unpack([TestEntry(.file, "f", [1])], to: root)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["f"])
    }

    @Test func modesAndTimesAreRestoredAndSetuidDropped() throws {
        let root = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try unpack([TestEntry(.directory, "d", mode: 0o750), TestEntry(.file, "d/x", [1], mode: 0o4755)], to: root)
        var st = stat()
        #expect(stat(root + "/d/x", &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o755)
        #expect(st.st_mtim.tv_sec == Int(TestArchive.fixedTime))
        #expect(stat(root + "/d", &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o750)
        #expect(st.st_mtim.tv_sec == Int(TestArchive.fixedTime))
        // No staging directory left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["d"])
    }
}

@Suite struct HeaderRewriteTests {
    /// Offsets after the header are body-relative (Spec §8.1): a header with another slot (longer header) in
    /// front of the unchanged body is a valid archive that both passwords open.
    @Test func addingASlotRewritesOnlyTheHeader() throws {
        let data = TestArchive.text(20_000)
        let bytes = try TestArchive.build([TestEntry(.file, "f", data)], passwords: ["old"])
        let (input, path) = try TestReader.file(bytes)
        defer { unlink(path) }
        var header = try ArchiveReader.readHeader(input)
        let body = Array(bytes[header.byteCount...])
        let (master, _) = try KeySlots.unlock(
            header: header,
            passphrase: Passphrase(string: "old"),
            limits: .default,
            archive: "x"
        )
        header.slots.append(
            try KeySlots.passwordSlot(
                id: 2,
                label: "a much longer label than before",
                createdUnix: 1,
                passphrase: Passphrase(string: "new"),
                kdf: TestArchive.cheapKDF,
                archiveID: header.archiveID,
                master: master,
                random: SystemRandom()
            )
        )
        header.mac = master.mac(for: header)
        let rewritten = header.encoded() + body
        #expect(rewritten.count > bytes.count)
        #expect(try TestReader.readAll(rewritten, password: "old").data[0] == data)
        #expect(try TestReader.readAll(rewritten, password: "new").data[0] == data)
        // Random access through the footer works on the rewritten file as well.
        let (input2, path2) = try TestReader.file(rewritten)
        defer { unlink(path2) }
        let reader = try ArchiveReader(input: input2, passphrase: Passphrase(string: "new"))
        let sink = MemorySink()
        try reader.readEntry(0, into: sink)
        #expect(sink.data[0] == data)
    }
}
