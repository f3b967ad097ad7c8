import Foundation
import SealbakFormat
import SealbakIO

/// The `command` kind: a source whose backup is a command's standard output (`neo4j-admin database dump
/// --to-stdout`, `redis-cli --rdb -`, `mongodump --archive`), restored by a command fed the entry on standard
/// input. sealbak runs the commands itself, checks their exit status, applies a timeout, keeps their standard
/// error (the last 64 KiB) as the component's log, and refuses an empty output unless `allow-empty`.
package enum CommandKeys {
    package static let dump = "command.dump"
    /// JSON array: the restore command's argument vector, as the plan gave it (the plan's own wins on restore).
    package static let restore = "command.restore"
    package static let check = "command.check"
    package static let timeout = "command.restore-timeout"
}

package final class CommandSource: CaptureSource {
    package let name: String
    package let dump: CommandSpec
    package let restore: CommandSpec?
    package let check: CommandSpec?
    package let allowMissing: Bool
    package let allowEmpty: Bool
    package var kind: String { "command" }
    package var sourceDescription: String { dump.display }
    /// Where the dump command's standard error goes when it succeeded (set by `prepare`).
    private var engineLog: EngineLog = .silent

    package init(
        name: String,
        dump: CommandSpec,
        restore: CommandSpec?,
        check: CommandSpec?,
        allowEmpty: Bool,
        allowMissing: Bool
    ) {
        self.name = name
        self.dump = dump
        self.restore = restore
        self.check = check
        self.allowEmpty = allowEmpty
        self.allowMissing = allowMissing
    }

    static func entryName(_ name: String) -> String { "command/\(name)" }

    package func prepare(into plan: inout PackPlan, log: EngineLog) throws -> String {
        engineLog = log
        _ = try dump.executable()
        var m = Component.metadata(kind: kind, name: name, source: sourceDescription)
        m[CommandKeys.dump] = json(dump.argv)
        if let restore {
            m[CommandKeys.restore] = json(restore.argv)
            m[CommandKeys.timeout] = String(Int(restore.timeoutSeconds))
        }
        if let check { m[CommandKeys.check] = json(check.argv) }
        try plan.add(
            entry: ManifestEntry(
                kind: .stream,
                name: Self.entryName(name),
                mode: 0o600,
                mtimeSeconds: Int64(Date().timeIntervalSince1970),
                metadata: m
            )
        )
        return "the output of \(dump.display) (timeout \(Int(dump.timeoutSeconds)) s)"
    }

    package func stream(for index: Int) throws -> (any CaptureStream)? {
        let running = try dump.start(stdin: .null, stdout: .pipe)
        var total: UInt64 = 0
        return ClosureStream { [self] out in
            let n: Int
            do { n = try running.process.readOutput(into: &out) } catch {
                running.kill()
                _ = running.finish()
                throw error
            }
            if n > 0 {
                total += UInt64(n)
                return
            }
            let r = running.finish()
            if r.timedOut {
                throw SealbakError(
                    .toolFailed,
                    "\(dump.display) did not finish within \(Int(dump.timeoutSeconds)) s and was "
                        + "stopped\(r.errorText.isEmpty ? "" : "; it said: " + r.errorText)"
                )
            }
            guard r.status.succeeded else {
                throw SealbakError(
                    .toolFailed,
                    "\(dump.display) failed (\(r.status)) after \(total) "
                        + "bytes\(r.errorText.isEmpty ? "" : ": " + r.errorText)"
                )
            }
            if total == 0 && !allowEmpty {
                throw SealbakError(
                    .toolFailed,
                    "\(dump.display) exited 0 but printed "
                        + "nothing\(r.errorText.isEmpty ? "" : " (it said: " + r.errorText + ")"); give allow-empty: "
                        + "true if an empty backup is right"
                )
            }
            // What the command said on success is its log (bounded to the last 64 KiB), like pg_dump's.
            if !r.errorText.isEmpty { self.engineLog.info("\(self.name): \(self.dump.argv[0]) said: \(r.errorText)") }
        }
    }

    package func skippedEntry(reason: String, mtime: Int64) -> ManifestEntry {
        var m = Component.metadata(kind: kind, name: name, source: sourceDescription)
        m[ComponentKeys.status] = "skipped"
        m[ComponentKeys.reason] = reason
        return ManifestEntry(kind: .stream, name: Self.entryName(name), mode: 0o600, mtimeSeconds: mtime, metadata: m)
    }

    private func json(_ argv: [String]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: argv)) ?? Data("[]".utf8), as: UTF8.self)
    }
}

/// A `command` component as recorded in a manifest.
package struct CommandComponent: Sendable {
    package var entryIndex: Int
    package var name: String
    package var source: String
    package var skippedReason: String?
    package var restore: [String]?
    package var restoreTimeout: Double
    package var check: [String]?

    package static func all(in manifest: Manifest) -> [CommandComponent] {
        manifest.entries.enumerated().compactMap { i, e in
            guard e.metadata[ComponentKeys.kind] == "command" else { return nil }
            func argv(_ k: String) -> [String]? {
                e.metadata[k].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] }
            }
            return CommandComponent(
                entryIndex: i,
                name: e.metadata[ComponentKeys.name] ?? e.name,
                source: e.metadata[ComponentKeys.source] ?? "",
                skippedReason: e.metadata[ComponentKeys.status] == "skipped"
                    ? (e.metadata[ComponentKeys.reason] ?? "") : nil,
                restore: argv(CommandKeys.restore),
                restoreTimeout: Double(e.metadata[CommandKeys.timeout] ?? "") ?? 600,
                check: argv(CommandKeys.check)
            )
        }
    }
}

/// Restores a `command` component: the entry is verified into a private temporary file while staging (so the
/// restore command never sees unverified bytes), then fed to the restore command at commit; the optional check
/// command runs after it. A command cannot be undone, so this unit commits after every reversible one.
package final class CommandUnit: RestoreUnit {
    package let component: CommandComponent
    private let restore: CommandSpec
    private let check: CommandSpec?
    private var dir: String?
    private var token: Int?
    package var kind: String { "command" }
    package var name: String { component.name }
    package var entries: [Int] { [component.entryIndex] }
    package var reversible: Bool { false }

    package init(_ c: CommandComponent, spec: BackupPlan.Component?) throws(SealbakError) {
        component = c
        if let r = spec?.restoreCommand {
            restore = r
        } else if let argv = c.restore, !argv.isEmpty {
            restore = CommandSpec(argv: argv, timeoutSeconds: c.restoreTimeout)
        } else {
            throw SealbakError(
                .usage,
                "command component \(c.name) has no restore command: give restore: for it in the plan (--plan FILE)"
            )
        }
        check = spec?.check ?? c.check.map { CommandSpec(argv: $0) }
    }

    deinit { abandon(log: .silent) }

    private var file: String { dir! + "/entry" }

    package func plan() throws -> [String] {
        _ = try restore.executable()
        var lines = [
            "component \(displayName(name)): command output from \(displayName(component.source))",
            "  restore: \(restore.display) < the entry (timeout \(Int(restore.timeoutSeconds)) s); cannot be undone, "
                + "runs after every other component is in place",
        ]
        if let check {
            _ = try check.executable()
            lines.append("  check: \(check.display)")
        }
        return lines
    }

    package func stage(feed: (any EntrySink) throws -> Void, log: EngineLog) throws {
        let base = NSTemporaryDirectory()
        for path in Leftovers.removeStale(prefix: "sealbak-restore-", in: base) {
            log.warning("removed \(path), left by a killed restore of a command component")
        }
        let d =
            base + (base.hasSuffix("/") ? "" : "/")
            + "sealbak-restore-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        if mkdir(d, 0o700) != 0 {
            throw SealbakError.io("cannot create a private temporary folder", path: d, errno: errno)
        }
        dir = d
        token = Interrupts.register { try? FileManager.default.removeItem(atPath: d) }
        let sink = FileSink(index: component.entryIndex, path: d + "/entry")
        try feed(sink)
        try sink.close()
    }

    package func check(log: EngineLog) throws {}

    package func commit(log: EngineLog) throws {
        log.info("\(name): running \(restore.display)")
        let running = try restore.start(stdin: .pipe, stdout: .null)
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SealbakError.io("cannot read", path: file, errno: errno) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var broken = false
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if try !running.process.writeInput(buf.span.bytes.extracting(0..<n)) {
                broken = true
                break
            }
        }
        running.process.closeStdin()
        let r = running.finish()
        guard r.status.succeeded, !r.timedOut, !broken else {
            let why =
                r.timedOut
                ? "did not finish within \(Int(restore.timeoutSeconds)) s"
                : broken && r.status.succeeded ? "stopped reading its input" : "failed (\(r.status))"
            throw SealbakError(
                .toolFailed,
                "the restore command of \(name), \(restore.display), "
                    + "\(why)\(r.errorText.isEmpty ? "" : ": " + r.errorText)"
            )
        }
        if !r.errorText.isEmpty { log.info("\(name): \(restore.argv[0]) said: \(r.errorText)") }
        if let check {
            let c = try check.run(input: nil, what: "the check of \(name)")
            guard c.status.succeeded else {
                let reason = c.timedOut ? "timed out" : "\(c.status)"
                let detail = c.errorText.isEmpty ? "" : ": " + c.errorText
                throw SealbakError(
                    .restoreMismatch,
                    "the check of \(name), \(check.display), failed (\(reason))\(detail); \(name) could not be undone "
                        + "(its restore command ran)"
                )
            }
            log.info("\(name): check \(check.display) passed")
        }
    }

    package func rollback(log: EngineLog) {}

    package func finalize(log: EngineLog) -> [String] {
        abandon(log: log)
        return [
            "restored \(displayName(name)) with \(restore.display)\(check.map { "; check \($0.display) passed" } ?? "")"
        ]
    }

    package func abandon(log: EngineLog) {
        if let token { Interrupts.unregister(token) }
        token = nil
        if let dir { try? FileManager.default.removeItem(atPath: dir) }
        dir = nil
    }
}

/// Writes one entry's verified plaintext to a new private file.
final class FileSink: EntrySink {
    let index: Int
    let path: String
    private var fd: Int32 = -1
    init(index: Int, path: String) {
        self.index = index
        self.path = path
    }
    func wants(_ i: Int) -> Bool { i == index }
    func begin(_ i: Int) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 { throw SealbakError.io("cannot create", path: path, errno: errno) }
    }
    func write(_ i: Int, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SealbakError.io("cannot write", path: path, errno: errno)
            }
            off += n
        }
    }
    func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws {}
    func close() throws {
        if fd >= 0 {
            let rc = Glibc.close(fd)
            fd = -1
            if rc != 0 { throw SealbakError.io("cannot write", path: path, errno: errno) }
        } else {
            // An empty entry never calls begin.
            let f = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            if f >= 0 { Glibc.close(f) }
        }
    }
}
