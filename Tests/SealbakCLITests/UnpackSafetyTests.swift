import Foundation
import SealbakTestSupport
import Testing

/// Unpack is all-or-nothing (docs/usage.md "Unpack safety"): killed (SIGKILL), failed (EIO) or interrupted
/// (SIGTERM) at every fault point of the move phase, the target ends exactly old or exactly new, after the next
/// sealbak command finished the recovery it announces. Fault injection, not timing.
@Suite(.serialized) struct UnpackSafetyTests {
    static let password = "unpack-safety-\(UUID().uuidString)"

    static func run(_ args: [String], env: [String: String] = [:]) throws -> Proc.Result {
        try Proc.sealbak(args, env: ["SEALBAK_PASSWORD": password].merging(env) { $1 })
    }

    /// Files (content), symlinks ("link:" + target) and directories ("dir") below `path`, staging dirs excluded.
    static func tree(_ path: String) throws -> [String: String] {
        var out: [String: String] = [:]
        let fm = FileManager.default
        for rel in fm.subpaths(atPath: path) ?? [] where !rel.hasPrefix(".sealbak-unpack-") {
            let full = path + "/" + rel
            let type = try fm.attributesOfItem(atPath: full)[.type] as? FileAttributeType
            if type == .typeSymbolicLink {
                out[rel] = "link:" + (try fm.destinationOfSymbolicLink(atPath: full))
            } else if type == .typeRegular {
                out[rel] = try String(contentsOfFile: full, encoding: .utf8)
            } else {
                out[rel] = "dir"
            }
        }
        return out
    }

    static func leftovers(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".sealbak-unpack-") }
    }

    /// Version 1 and version 2 of a tree: v2 changes every file, adds files and a folder, replaces a symlink.
    static func makeTrees(in dir: String) throws -> (v1: String, v2: String) {
        let fm = FileManager.default
        for (version, root) in [(1, dir + "/v1/app"), (2, dir + "/v2/app")] {
            try fm.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
            for i in 0..<8 {
                try "v\(version) file \(i)\n".write(toFile: root + "/f\(i).txt", atomically: false, encoding: .utf8)
            }
            for i in 0..<4 {
                try "v\(version) sub \(i)\n".write(toFile: root + "/sub/s\(i).txt", atomically: false, encoding: .utf8)
            }
            try fm.createSymbolicLink(atPath: root + "/latest", withDestinationPath: version == 1 ? "f0.txt" : "f1.txt")
            if version == 2 {
                try fm.createDirectory(atPath: root + "/new/deeper", withIntermediateDirectories: true)
                try "only in v2\n".write(toFile: root + "/new/deeper/n.txt", atomically: false, encoding: .utf8)
                try "only in v2\n".write(toFile: root + "/new/m.txt", atomically: false, encoding: .utf8)
                try "only in v2\n".write(toFile: root + "/zz.txt", atomically: false, encoding: .utf8)
            }
        }
        return (dir + "/v1/app", dir + "/v2/app")
    }

    /// Fresh target: a copy of v1 (`force`) or an empty folder.
    static func freshTarget(_ target: String, v1: String, withOld: Bool) throws {
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        if withOld { try FileManager.default.copyItem(atPath: v1, toPath: target + "/app") }
    }

    @Test func aKillAtAnyPointOfTheMoveLeavesOldOrNewAfterTheNextRun() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (v1, v2) = try Self.makeTrees(in: dir)
        let archive = dir + "/v2.sbk"
        #expect(try Self.run(["pack", archive, v2, "--insecure-test-kdf", "--quiet"]).status == 0)
        let old = try Self.tree(v1)
        let new = try Self.tree(v2)
        var kills = 0
        var oldOutcomes = 0
        var newOutcomes = 0
        var finishedByNextRun = 0
        var pointsNamed: Set<String> = []
        for withOld in [true, false] {
            let target = dir + "/target"
            var n = 1
            while n < 200 {
                try Self.freshTarget(target, v1: v1, withOld: withOld)
                let r = try Self.run(
                    ["unpack", archive, "--to", target, "--quiet"] + (withOld ? ["--force"] : []),
                    env: [
                        "SEALBAK_TEST_CRASH_AT": "\(n)", "SEALBAK_TEST_CRASH_SIGNAL": "KILL",
                        "SEALBAK_TEST_CRASH_VERBOSE": "1",
                    ]
                )
                if r.status == 0 { break }  // fewer than n fault points: the unpack simply finished
                #expect(r.signaled && r.status == 128 + SIGKILL, "point \(n): \(r.stderr)")
                if let name = r.stderr.split(separator: "(").last { pointsNamed.insert(String(name.dropLast(2))) }
                kills += 1
                // The next sealbak command in the target finishes (or removes) what the killed one left, and says so.
                let next = try Self.run(["unpack", dir + "/no-such.sbk", "--to", target])
                #expect(next.status == 9)
                #expect(
                    next.stderr.contains("finished an unpack") || next.stderr.contains("removed"),
                    "point \(n): \(next.stderr)"
                )
                if next.stderr.contains("finished an unpack") { finishedByNextRun += 1 }
                #expect(try Self.leftovers(target).isEmpty, "point \(n) left a staging directory after recovery")
                let now = try Self.tree(target + "/app")
                if now == new {
                    newOutcomes += 1
                } else if now == (withOld ? old : [:]) {
                    oldOutcomes += 1
                } else {
                    Issue.record(
                        """
                        killed at point \(n) (force: \(withOld)): the target is neither old nor new: \
                        \(now.keys.sorted())
                        """
                    )
                }
                n += 1
            }
        }
        print(
            "unpack kill test: \(kills) SIGKILLs at \(pointsNamed.count) distinct fault points; all old: "
                + "\(oldOutcomes), all new: \(newOutcomes) (of which the next run finished \(finishedByNextRun)), "
                + "mixed: \(kills - oldOutcomes - newOutcomes)"
        )
        // Every step of the move phase is a kill point: 20+ moves for the v2 tree, in both scenarios.
        #expect(kills >= 40)
        #expect(oldOutcomes + newOutcomes == kills)
        #expect(finishedByNextRun > 0 && oldOutcomes > 0)
    }

    @Test func aMoveStepThatFailsIsUndoneAndNothingIsLeft() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (v1, v2) = try Self.makeTrees(in: dir)
        let archive = dir + "/v2.sbk"
        #expect(try Self.run(["pack", archive, v2, "--insecure-test-kdf", "--quiet"]).status == 0)
        let old = try Self.tree(v1)
        let new = try Self.tree(v2)
        let target = dir + "/target"
        var failures = 0
        for n in 1..<200 {
            try Self.freshTarget(target, v1: v1, withOld: true)
            let r = try Self.run(
                ["unpack", archive, "--to", target, "--force", "--quiet"],
                env: ["SEALBAK_TEST_FAIL_AT": "\(n)", "SEALBAK_TEST_CRASH_VERBOSE": "1"]
            )
            #expect(try Self.leftovers(target).isEmpty)
            if r.stderr.contains("(unpack: move ") {
                // A failed rename (EIO, EACCES, ENOSPC alike): everything moved before it is moved back.
                #expect(r.status == 8, "\(r.stderr)")
                #expect(try Self.tree(target + "/app") == old, "failure at point \(n) left a mixed target")
                failures += 1
            } else {
                #expect(r.status == 0, "\(r.stderr)")
                #expect(try Self.tree(target + "/app") == new)
                if !r.stderr.contains("test failure") { break }  // no fault point n any more
            }
        }
        print("unpack failure test: \(failures) failed move steps, each undone")
        #expect(failures >= 18)  // every step of the v2 tree over v1: 13 exchanges, 5 new names
    }

    @Test func aSignalDuringTheMoveUndoesItAndLeavesNothing() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (v1, v2) = try Self.makeTrees(in: dir)
        let archive = dir + "/v2.sbk"
        #expect(try Self.run(["pack", archive, v2, "--insecure-test-kdf", "--quiet"]).status == 0)
        let old = try Self.tree(v1)
        let new = try Self.tree(v2)
        let target = dir + "/target"
        var undone = 0
        for n in 1..<200 {
            try Self.freshTarget(target, v1: v1, withOld: true)
            let r = try Self.run(
                ["unpack", archive, "--to", target, "--force", "--quiet"],
                env: ["SEALBAK_TEST_SIGNAL_AT": "\(n)", "SEALBAK_TEST_CRASH_VERBOSE": "1"]
            )
            #expect(try Self.leftovers(target).isEmpty, "SIGTERM at point \(n) left a staging directory")
            if r.status == 0 { break }  // no fault point n: not interrupted at all
            #expect(r.status == 143 && !r.signaled, "\(r.stderr)")
            let now = try Self.tree(target + "/app")
            #expect(now == old || now == new, "SIGTERM at point \(n) left a mixed target")
            if now == old { undone += 1 }
        }
        print("unpack SIGTERM test: \(undone) interrupts undone")
        #expect(undone >= 19)
    }

    @Test func theNextUnpackRemovesWhatAKilledOneLeftAndSaysSo() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (_, v2) = try Self.makeTrees(in: dir)
        let archive = dir + "/v2.sbk"
        #expect(try Self.run(["pack", archive, v2, "--insecure-test-kdf", "--quiet"]).status == 0)
        let target = dir + "/target"
        try FileManager.default.createDirectory(
            atPath: target + "/.sealbak-unpack-2147483646-AbCdEf",
            withIntermediateDirectories: true
        )
        try "partial".write(toFile: target + "/.sealbak-unpack-2147483646-AbCdEf/3", atomically: false, encoding: .utf8)
        let r = try Self.run(["unpack", archive, "--to", target])
        #expect(r.status == 0)
        #expect(r.stderr.contains("removed \(target)/.sealbak-unpack-2147483646-AbCdEf"), "\(r.stderr)")
        #expect(try Self.leftovers(target).isEmpty)
        #expect(try Self.tree(target + "/app") == Self.tree(v2))
    }

    @Test func conflictsWithTheTargetAreFoundBeforeAnythingIsWritten() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (v1, v2) = try Self.makeTrees(in: dir)
        let archive = dir + "/v2.sbk"
        #expect(try Self.run(["pack", archive, v2, "--insecure-test-kdf", "--quiet"]).status == 0)
        let target = dir + "/target"
        // "new" is a file in the target where the archive has a folder; "f0.txt"..."f7.txt" and "latest" sort
        // before it and would have been moved first by a check-as-you-go unpack.
        try Self.freshTarget(target, v1: v1, withOld: true)
        try "in the way\n".write(toFile: target + "/app/new", atomically: false, encoding: .utf8)
        let before = try Self.tree(target)
        let r = try Self.run(["unpack", archive, "--to", target, "--force"])
        #expect(
            r.status == 7 && r.stderr.contains("app/new") && r.stderr.contains("Nothing was written"),
            "\(r.stderr)"
        )
        #expect(try Self.tree(target) == before)
        #expect(try Self.leftovers(target).isEmpty)
        // A symlink on the way is never followed, not even to a folder inside the target.
        try Self.freshTarget(target, v1: v1, withOld: true)
        try FileManager.default.moveItem(atPath: target + "/app/sub", toPath: target + "/app/real")
        try FileManager.default.createSymbolicLink(atPath: target + "/app/sub", withDestinationPath: "real")
        let before2 = try Self.tree(target)
        let s = try Self.run(["unpack", archive, "--to", target, "--force"])
        #expect(s.status == 7 && s.stderr.contains("a symlink"), "\(s.stderr)")
        #expect(try Self.tree(target) == before2)
    }
}
