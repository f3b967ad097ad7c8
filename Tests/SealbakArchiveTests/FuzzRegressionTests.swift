import Foundation
import SealbakTestSupport
import Testing

/// Every input the fuzzers ever crashed on is saved in fuzz/regressions/TARGET/ and replayed here through the
/// same code the fuzz target runs, so a fixed crash stays fixed (fuzz/README.md). The seed corpus is replayed
/// too, through every target, as a smoke test of the invariants.
@Suite struct FuzzRegressionTests {
    static let fuzzDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("fuzz")

    static func inputs(_ sub: String) -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        for target in FuzzTargets.all {
            let dir = fuzzDir.appendingPathComponent("\(sub)/\(target)")
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.sorted() ?? []
            where !name.hasPrefix(".") {
                if let data = try? Data(contentsOf: dir.appendingPathComponent(name)) {
                    out.append((target, [UInt8](data)))
                }
            }
        }
        return out
    }

    @Test func savedCrashInputsNoLongerCrash() {
        for (target, bytes) in Self.inputs("regressions") { FuzzTargets.run(target, bytes) }
    }

    @Test func seedCorpusPassesEveryTarget() {
        let seeds = Self.inputs("corpus") + Self.inputs("corpus-found")
        #expect(!seeds.isEmpty, "fuzz/corpus is empty: run swift run SealbakVectorGen --fuzz-seeds fuzz/corpus")
        for (_, bytes) in seeds { for t in FuzzTargets.all { FuzzTargets.run(t, bytes) } }
    }
}
