import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport
import Synchronization
import Testing

/// Remote storage is passed in (`ArchiveLocations`), never installed globally: `.local` refuses `s3://` names, and
/// a test's own handler receives every remote read, write and header rewrite of the codec's entry points.
@Suite struct ArchiveLocationsTests {
    static let url = "s3://bucket/app.sbk"

    @Test func localLocationsRefuseRemoteNames() throws {
        for open in [
            { _ = try ArchiveLocations.local.input(Self.url) },
            { _ = try ArchiveLocations.local.output(Self.url, overwrite: false) },
            { _ = try InputFile(path: Self.url) },
        ] as [() throws -> Void] {
            let error = #expect(throws: SealbakError.self) { try open() }
            #expect(error?.code == .usage)
            #expect(error?.message == "\(Self.url): remote archives are not available here")
        }
    }

    @Test func readsAndWritesOfRemoteNamesGoToTheGivenHandler() throws {
        let store = MemoryStore()
        let locations = ArchiveLocations(remote: store)
        let data = TestArchive.noise(50_000, seed: 3)
        store.put(Self.url, try TestArchive.build([TestEntry(.file, "data", data)]))
        let reader = try ArchiveReader(input: try locations.input(Self.url), passphrase: Passphrase(string: "password"))
        let sink = MemorySink()
        try reader.readAll(into: sink)
        #expect(sink.data[0] == data)
        #expect(reader.input.path == Self.url)

        let out = try locations.output("s3://bucket/copy.sbk", overwrite: false)
        try out.write(try store.get(Self.url))
        #expect(store.names() == [Self.url])  // nothing appears before the commit
        try out.commit()
        #expect(try store.get("s3://bucket/copy.sbk") == (try store.get(Self.url)))
    }

    @Test func keyChangesAndRekeyOfARemoteArchiveGoThroughTheHandler() throws {
        let store = MemoryStore()
        let locations = ArchiveLocations(remote: store)
        let data = TestArchive.text(30_000)
        store.put(Self.url, try TestArchive.build([TestEntry(.file, "dump.sql", data)]))

        let unlocked = try KeyEditing.unlock(
            path: Self.url,
            in: locations,
            secret: .password(Passphrase(string: "password")),
            limits: .default
        )
        _ = try KeyEditing.addPassword(
            unlocked,
            passphrase: Passphrase(string: "second"),
            label: "second",
            kdf: TestArchive.cheapKDF
        )
        #expect(try TestReader.readAll(try store.get(Self.url), password: "second").data == [data])

        let rotated = "s3://bucket/rotated.sbk"
        let out = try locations.output(rotated, overwrite: false, staged: true)
        let summary = try Rekey.run(
            path: Self.url,
            in: locations,
            current: .password(Passphrase(string: "second")),
            newPassword: Passphrase(string: "new"),
            kdf: TestArchive.cheapKDF,
            output: out
        )
        try out.commit()
        #expect(summary.oldHeader == Array(try store.get(Self.url).prefix(summary.oldHeader.count)))
        #expect(try TestReader.readAll(try store.get(rotated), password: "new").data == [data])
        #expect(try TestReader.failureClass(try store.get(rotated), password: "password") == .key)
    }
}

/// Objects in memory: the remote handler a test gives `ArchiveLocations`.
private final class MemoryStore: RemoteStorageHandler {
    private let objects = Mutex<[String: [UInt8]]>([:])

    func put(_ url: String, _ bytes: [UInt8]) { objects.withLock { $0[url] = bytes } }

    func get(_ url: String) throws(SealbakError) -> [UInt8] {
        guard let bytes = objects.withLock({ $0[url] }) else { throw SealbakError(.notFound, "\(url) does not exist") }
        return bytes
    }

    func names() -> [String] { objects.withLock { $0.keys.sorted() } }

    func openInput(_ url: String) throws(SealbakError) -> any RemoteSource {
        MemorySource(name: url, bytes: try get(url))
    }

    func openOutput(_ url: String, overwrite: Bool, staged: Bool) throws(SealbakError) -> any ArchiveOutput {
        if !overwrite, objects.withLock({ $0[url] }) != nil { throw SealbakError(.targetExists, "\(url) exists") }
        return MemoryUpload(url) { bytes in self.objects.withLock { $0[url] = bytes } }
    }

    func replaceHeader(_ url: String, expected: [UInt8], header: [UInt8]) throws(SealbakError) {
        let old = try get(url)
        guard old.starts(with: expected) else { throw SealbakError(.io, "\(url) changed") }
        objects.withLock { $0[url] = header + old.dropFirst(expected.count) }
    }
}

private final class MemorySource: RemoteSource {
    let name: String
    let bytes: [UInt8]
    var size: UInt64 { UInt64(bytes.count) }
    var bytesFetched: UInt64 = 0

    init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    func read(at offset: UInt64, count: Int) throws(SealbakError) -> [UInt8] {
        let lo = Int(min(offset, size))
        let hi = min(bytes.count, lo + count)
        bytesFetched += UInt64(hi - lo)
        return Array(bytes[lo..<hi])
    }

    func readSequential(at offset: UInt64, into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        let chunk = try read(at: offset, count: out.freeCapacity)
        out.appendPrefix(of: chunk.span)
    }

    func willRead(_ range: Range<UInt64>) {}
}

private final class MemoryUpload: ArchiveOutput {
    let path: String
    private var bytes: [UInt8] = []
    private let complete: ([UInt8]) -> Void

    init(_ path: String, complete: @escaping ([UInt8]) -> Void) {
        self.path = path
        self.complete = complete
    }

    var bytesWritten: UInt64 { UInt64(bytes.count) }
    func write(_ b: RawSpan) throws(SealbakError) { b.withUnsafeBytes { bytes += $0 } }
    func commit() throws(SealbakError) { complete(bytes) }
    func abandon() { bytes = [] }
    func readBack() throws(SealbakError) -> InputFile { InputFile(bytes: bytes, name: path, seekable: true) }
}
