import Foundation

/// Runs the built `sealbak` (or any program) for end-to-end tests, reading its output without deadlocks.
package enum Proc {
    package struct Result: Sendable {
        /// The exit status, or 128 + N for a program killed by signal N (see `signaled`).
        package var status: Int32
        /// Ended by a signal rather than by exiting (tells a death by SIGTERM from an exit with 143).
        package var signaled: Bool
        package var stdout: String
        package var stderr: String
        package var all: String { stdout + stderr }
    }

    /// The repository root (this file is Sources/SealbakTestSupport/Processes.swift).
    package static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    package static let sealbakBinary =
        ProcessInfo.processInfo.environment["SEALBAK_BIN"] ?? root + "/.build/debug/sealbak"

    /// `env` entries override the inherited environment (or, with `inherit: false`, are the whole environment, as
    /// cron gives it); an empty value removes the variable. `stdin` is written to the program's standard input, which
    /// is then closed (default: /dev/null). A program killed by signal N has status 128 + N, as a shell reports it.
    /// Standard input is written and both output pipes are read concurrently, so no pipe can fill up and block.
    package static func run(
        _ exe: String,
        _ args: [String],
        env: [String: String] = [:],
        inherit: Bool = true,
        cwd: String? = nil,
        stdin: Data? = nil
    ) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var e = inherit ? ProcessInfo.processInfo.environment : [:]
        for (k, v) in env { if v.isEmpty { e.removeValue(forKey: k) } else { e[k] = v } }
        p.environment = e
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe()
        let err = Pipe()
        let inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = stdin == nil ? FileHandle.nullDevice : inp
        try p.run()
        let group = DispatchGroup()
        if let stdin {
            // A program that writes much before it has read all of its input would block on a full stdout pipe
            // while this thread blocks on its full stdin pipe: write on another thread.
            group.enter()
            DispatchQueue.global().async {
                try? inp.fileHandleForWriting.write(contentsOf: stdin)
                try? inp.fileHandleForWriting.close()
                group.leave()
            }
        }
        // Read both pipes concurrently so that a full stderr pipe cannot block the child.
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        let signaled = p.terminationReason == .uncaughtSignal
        return Result(
            status: signaled ? 128 + p.terminationStatus : p.terminationStatus,
            signaled: signaled,
            stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }

    /// Runs the built sealbak (`env` over the inherited environment, as for `run`). Fails the test, by throwing,
    /// if any of `secrets` (passwords, keys given to it) appears in its output.
    @discardableResult
    package static func sealbak(
        _ args: [String],
        env: [String: String] = [:],
        secrets: [String] = [],
        cwd: String? = nil,
        stdin: Data? = nil
    ) throws -> Result {
        let r = try run(sealbakBinary, args, env: env, cwd: cwd, stdin: stdin)
        if secrets.contains(where: { !$0.isEmpty && (r.stdout.contains($0) || r.stderr.contains($0)) }) {
            throw TestFailure("a secret leaked into the output of sealbak \(args.first ?? ""): \(r.all)")
        }
        return r
    }

    /// A new, empty folder under the temporary directory; the test removes it.
    package static func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "sealbak-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

package struct TestFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ d: String) { description = d }
}

/// A client that commits one statement after another until stopped: `yes STATEMENT | client`. The test, not the
/// writer, decides when writing ends, so "the database was written during the pack" does not depend on how fast
/// this machine (or a sanitizer build) happens to be.
package final class StatementStream {
    private let feeder = Process(), client = Process()

    /// `client` reads SQL from standard input and commits each statement (psql, mariadb in batch mode).
    package init(statement: String, client exe: String, _ args: [String], env: [String: String] = [:]) throws {
        let pipe = Pipe()
        feeder.executableURL = URL(fileURLWithPath: "/usr/bin/yes")
        feeder.arguments = [statement]
        feeder.standardOutput = pipe
        feeder.standardError = FileHandle.nullDevice
        client.executableURL = URL(fileURLWithPath: exe)
        client.arguments = args
        client.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        client.standardInput = pipe
        client.standardOutput = FileHandle.nullDevice
        client.standardError = FileHandle.nullDevice
        try client.run()
        try feeder.run()
    }

    /// SIGKILL, not SIGTERM: children of the test process inherit its blocked signal mask and would ignore SIGTERM.
    package func stop() {
        for p in [client, feeder] where p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
    }

    deinit { stop() }
}

/// Asks `condition` every 50 ms until it holds or `seconds` pass; returns whether it held.
package func eventually(within seconds: Double = 120, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return try condition()
}
