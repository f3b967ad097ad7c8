import Foundation
import SealbakTestSupport
import Testing

/// `pack` trains a zstd dictionary on the small files when they hold enough bytes (Spec §6.2 codec 4, §7.4):
/// format version 2 with the feature `dictionary`, a smaller archive, the same files restored; `--no-dictionary` and
/// a plan's `dictionary: false` write version 1.
@Suite struct DictionaryCLITests {
    /// 700 notes of 5,000-8,000 bytes of words (4.5 MiB): enough small-file bytes for a dictionary.
    private static func writeNotes(to docs: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: docs, withIntermediateDirectories: true)
        let words = [
            "retrieval", "augmented", "generation", "embedding", "vector", "chunk", "document", "the", "of", "and",
            "query", "answer", "context", "window", "token", "model", "index", "similarity", "cosine", "search",
        ]
        var state: UInt64 = 42
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        var total = 0
        for i in 0..<700 {
            var text = "# Note \(i)\n\n"
            let size = 5000 + next() % 3000
            while text.utf8.count < size { text += words[next() % words.count] + " " }
            try text.write(toFile: docs + "/note-\(i).md", atomically: false, encoding: .utf8)
            total += text.utf8.count
        }
        return total
    }

    @Test func smallFilesShareADictionaryUnlessTurnedOff() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let docs = dir + "/docs"
        #expect(try Self.writeNotes(to: docs) > 4 << 20)

        let with = dir + "/with.sbk"
        let without = dir + "/without.sbk"
        let packed = try CLITests.run(["pack", with, docs, "--insecure-test-kdf"])
        #expect(packed.status == 0, "\(packed.stderr)")
        #expect(packed.stderr.contains("compressing small files with a 64 KiB dictionary"), "\(packed.stderr)")
        #expect(try CLITests.run(["pack", without, docs, "--no-dictionary", "--insecure-test-kdf"]).status == 0)
        #expect(try CLITests.formatVersion(with) == (2, ["dictionary"]))
        #expect(try CLITests.formatVersion(without) == (1, []))
        #expect(try CLITests.run(["inspect", with]).stdout.contains("format version 2 (features: dictionary)"))
        let sizes = try [with, without].map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as! Int }
        #expect(Double(sizes[0]) < 0.9 * Double(sizes[1]), "with \(sizes[0]) bytes, without \(sizes[1])")
        // The dictionary is secret like the rest of the manifest: `list` does not show it.
        let list = try CLITests.run(["list", with, "--json"])
        #expect(list.status == 0 && !list.stdout.contains("sealbak.zstd-dictionary"))
        #expect(try CLITests.run(["verify", with]).status == 0)
        #expect(try CLITests.run(["unpack", with, "--to", dir + "/out"]).status == 0)
        for i in [0, 1, 350, 699] {
            #expect(
                FileManager.default.contents(atPath: dir + "/out/docs/note-\(i).md")
                    == FileManager.default.contents(atPath: docs + "/note-\(i).md")
            )
        }

        // Too few small-file bytes (below 4 MiB) to be worth a dictionary: version 1.
        let few = dir + "/few"
        try FileManager.default.createDirectory(atPath: few, withIntermediateDirectories: true)
        for i in 0..<10 {
            try FileManager.default.copyItem(atPath: docs + "/note-\(i).md", toPath: few + "/note-\(i).md")
        }
        let small = dir + "/small.sbk"
        #expect(try CLITests.run(["pack", small, few, "--insecure-test-kdf"]).status == 0)
        #expect(try CLITests.formatVersion(small) == (1, []))

        let plan = dir + "/sealbak.yaml"
        let yaml =
            "version: 1\ncomponents:\n  - {name: docs, kind: docs, path: \(docs)}\n"
            + "pack: {dictionary: false, kdf-memory: 8, kdf-passes: 1}\n"
        try yaml.write(toFile: plan, atomically: true, encoding: .utf8)
        let planned = dir + "/plan.sbk"
        let r = try CLITests.run(["pack", planned, "--plan", plan])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try CLITests.formatVersion(planned) == (1, []))
    }

    /// A chained pack leaves the files it refers to (unchanged since the chain recorded them) out of the dictionary's
    /// training: with every note unchanged there is nothing to train on, and the incremental archive has no
    /// dictionary, while its root has one; both restore the notes.
    @Test func anIncrementalPackTrainsOnlyOnChangedFiles() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let docs = dir + "/docs"
        #expect(try Self.writeNotes(to: docs) > 4 << 20)
        // Files changed less than a second before a pack are never recorded as unchanged.
        Thread.sleep(forTimeInterval: 1.2)
        let state = dir + "/chain-state"
        var r = try CLITests.run(
            ["pack", dir + "/n1.sbk", docs, "--chained", "--chain-state", state, "--insecure-test-kdf"]
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try CLITests.formatVersion(dir + "/n1.sbk").1.contains("dictionary"))
        r = try CLITests.run(
            ["pack", dir + "/n2.sbk", docs, "--base", dir + "/n1.sbk", "--chain-state", state, "--insecure-test-kdf"]
        )
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("dictionary"), "\(r.stderr)")
        #expect(!(try CLITests.formatVersion(dir + "/n2.sbk").1.contains("dictionary")))
        r = try CLITests.run(["unpack", dir + "/n2.sbk", "--to", dir + "/out", "--chain-from", dir])
        #expect(r.status == 0, "\(r.stderr)")
        for i in [0, 699] {
            #expect(
                FileManager.default.contents(atPath: dir + "/out/docs/note-\(i).md")
                    == FileManager.default.contents(atPath: docs + "/note-\(i).md")
            )
        }
    }
}
