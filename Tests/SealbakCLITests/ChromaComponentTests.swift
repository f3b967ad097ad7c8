import Foundation
import SealbakTestSupport
import Testing

/// A real ChromaDB store (PyPI chromadb, explicit embeddings): packed while a process holds it open, restored
/// elsewhere, segment files byte-identical, the same query results. scripts/test installs chromadb and sets
/// SEALBAK_TEST_CHROMA_PYTHON; SEALBAK_REQUIRE_CHROMA=1 turns a missing installation into a failure.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["SEALBAK_TEST_CHROMA_PYTHON"] != nil
            || ProcessInfo.processInfo.environment["SEALBAK_REQUIRE_CHROMA"] == "1",
        "chromadb is not installed (scripts/test installs it)"
    )
)
struct ChromaComponentTests {
    static let script = Proc.root + "/scripts/chroma-store.py"

    func python() throws -> String {
        guard let p = ProcessInfo.processInfo.environment["SEALBAK_TEST_CHROMA_PYTHON"] else {
            throw TestFailure("SEALBAK_REQUIRE_CHROMA=1 but SEALBAK_TEST_CHROMA_PYTHON is not set")
        }
        return p
    }

    func chroma(_ args: [String]) throws -> String {
        let r = try Proc.run(try python(), [Self.script] + args)
        guard r.status == 0 else { throw TestFailure("chroma-store.py \(args) failed: \(r.stderr)") }
        return r.stdout
    }

    @Test func aLiveStoreIsPackedConsistentlyAndRestoresWithTheSameAnswers() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = dir + "/store"
        _ = try chroma(["make", store])
        let before = try chroma(["query", store])
        // A process keeps the store open, as the application would.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: try python())
        holder.arguments = [Self.script, "hold", store]
        let ready = Pipe()
        holder.standardOutput = ready
        holder.standardError = FileHandle.nullDevice
        try holder.run()
        // SIGKILL: chromadb's runtime may keep a process alive on SIGTERM.
        defer {
            if holder.isRunning {
                kill(holder.processIdentifier, SIGKILL)
                holder.waitUntilExit()
            }
        }
        _ = ready.fileHandleForReading.availableData  // "holding N" once the store is open
        let segments = try FileManager.default.contentsOfDirectory(atPath: store).filter { $0 != "chroma.sqlite3" }
            .sorted()
        let segmentFiles = try Dictionary(
            uniqueKeysWithValues: segments.map { ($0, try CLITests.tree(store + "/" + $0)) }
        )

        let packed = try CLITests.run(["pack", dir + "/a.sbk", "--chroma", "vectors=" + store, "--insecure-test-kdf"])
        #expect(packed.status == 0, "\(packed.stderr)")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter {
                $0.hasPrefix("sealbak-chroma-")
            }.isEmpty,
            "the chroma.sqlite3 snapshot is removed after packing"
        )
        let listed = try CLITests.run(["list", dir + "/a.sbk"])
        #expect(listed.stdout.contains("chroma vectors: ok, 2 collection(s), 165 embeddings"), "\(listed.stdout)")
        #expect(
            listed.stdout.contains("docs: 120 embeddings, dimension 16")
                && listed.stdout.contains("chat: 45 embeddings, dimension 8")
        )

        let restored = try CLITests.run(["restore", dir + "/a.sbk", "--target", "vectors=" + dir + "/elsewhere/store"])
        #expect(restored.status == 0, "\(restored.stderr)")
        // Byte equality of the HNSW segments, checked before anything opens the restored store.
        for s in segments {
            #expect(try CLITests.tree(dir + "/elsewhere/store/" + s) == segmentFiles[s]!, "segment \(s)")
        }
        #expect(try chroma(["query", dir + "/elsewhere/store"]) == before)
    }

    @Test func aFolderWithoutChromaSqliteIsRefused() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/not-a-store", withIntermediateDirectories: true)
        let r = try CLITests.run(["pack", dir + "/a.sbk", "--chroma", dir + "/not-a-store", "--insecure-test-kdf"])
        #expect(r.status == 64 && r.stderr.contains("not a Chroma persist directory"))
        try Data("not sqlite".utf8).write(to: URL(fileURLWithPath: dir + "/not-a-store/chroma.sqlite3"))
        let r2 = try CLITests.run(["pack", dir + "/a.sbk", "--chroma", dir + "/not-a-store", "--insecure-test-kdf"])
        #expect(r2.status != 0 && r2.stderr.contains("chroma.sqlite3"), "\(r2.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/a.sbk"))
    }
}
