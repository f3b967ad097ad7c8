import Foundation
import SealbakTestSupport
import Testing

/// A file that changes between being listed and being read is named, recorded in the archive's outcome record and
/// makes the pack exit 16 (tar's "file changed as we read it"), unless --accept-changes. No timing: a command
/// component packed first changes a file of the docs component packed after it.
@Suite struct PackChangeCLITests {
    @Test func aFileThatChangesWhileThePackRunsIsNamedRecordedAndExits16() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kb = dir + "/kb"
        try FileManager.default.createDirectory(atPath: kb, withIntermediateDirectories: true)
        try "before\n".write(toFile: kb + "/grows.md", atomically: true, encoding: .utf8)
        try "steady\n".write(toFile: kb + "/steady.md", atomically: true, encoding: .utf8)
        let plan = dir + "/plan.yaml"
        try """
        components:
          - name: mutator
            kind: command
            dump: "echo appended >> '\(kb)/grows.md'; echo state"
            restore: "cat > /dev/null"
          - name: kb
            kind: docs
            path: \(kb)
        """.write(toFile: plan, atomically: true, encoding: .utf8)
        let packed = try CLITests.run(["pack", dir + "/a.sbk", "--plan", plan, "--insecure-test-kdf"])
        #expect(packed.status == 16, "\(packed.stderr)")
        #expect(
            packed.stderr.contains("docs/kb/grows.md") && packed.stderr.contains("changed while they were read"),
            "\(packed.stderr)"
        )
        #expect(!packed.stderr.contains("steady.md"))
        // The archive exists, verifies, and records which file changed.
        #expect(try CLITests.run(["verify", dir + "/a.sbk"]).status == 0)
        let json = try CLITests.run(["list", dir + "/a.sbk", "--json"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let warnings = try #require((doc["outcome"] as? [String: Any])?["warnings"] as? [[String: Any]])
        #expect(warnings.count == 1 && warnings.first?["entry"] as? String == "docs/kb/grows.md", "\(warnings)")
        // --accept-changes: still named and recorded, exit 0.
        let accepted = try CLITests.run([
            "pack", dir + "/b.sbk", "--plan", plan, "--insecure-test-kdf", "--accept-changes",
        ])
        #expect(accepted.status == 0 && accepted.stderr.contains("grows.md"), "\(accepted.stderr)")
        // Nothing changes: exit 0 and no warning.
        let quiet = try CLITests.run(["pack", dir + "/c.sbk", "--docs", kb, "--insecure-test-kdf"])
        #expect(quiet.status == 0 && !quiet.stderr.contains("changed"), "\(quiet.stderr)")
    }
}
