import Foundation
import SealbakIO
import SealbakS3

/// One line of a plan's run history (`STATE-DIR/history.jsonl`): a run, a verification or a drill. A run writes
/// a `running` line when it starts and its full record when it ends; a `running` line without an end whose
/// run no longer holds the plan's lock is an interrupted run (killed, or the machine stopped).
package struct RunRecord: Codable, Sendable, Equatable {
    package enum Kind: String, Codable, Sendable { case run, verify, drill }
    package enum Status: String, Codable, Sendable {
        /// Started, not ended (yet).
        case running
        case ok
        /// Written, but with skipped components (exit 15) or changed files (exit 16).
        case warnings
        case failed
        /// Killed or stopped before it ended (found by a later run).
        case interrupted
        /// Not started: another run of the plan held the lock.
        case busy
    }

    package struct ComponentRecord: Codable, Sendable, Equatable {
        package var name: String
        package var kind: String
        package var status: String
        package var bytes: UInt64
        package var reason: String?
        /// Entries, and tables/rows where the kind records them.
        package var counts: [String: UInt64]?
        package init(name: String, kind: String, status: String, bytes: UInt64, reason: String? = nil) {
            (self.name, self.kind, self.status, self.bytes, self.reason) = (name, kind, status, bytes, reason)
        }
    }

    package var id: String
    package var kind: Kind
    package var plan: String
    package var host: String
    package var pid: Int32
    package var status: Status
    /// Seconds since 1970 (UTC), with milliseconds.
    package var start: Double
    package var end: Double?
    package var exitCode: Int32?
    /// The archive's path or URL.
    package var archive: String?
    package var size: UInt64?
    package var entries: Int?
    package var components: [ComponentRecord]?
    package var warnings: [String]?
    package var error: String?
    /// A run: whether the archive was verified after it was written.
    package var verified: Bool?
    /// A run: archives retention deleted.
    package var deleted: [String]?
    /// A drill: what was restored where and compared.
    package var details: [String]?

    package init(id: String = RunRecord.newID(), kind: Kind, plan: String, start: Double) {
        self.id = id
        self.kind = kind
        self.plan = plan
        host = ProcessInfo.processInfo.hostName
        pid = getpid()
        status = .running
        self.start = start
    }

    package var duration: Double? { end.map { $0 - start } }

    package static func newID() -> String {
        let bytes = (0..<6).map { _ in UInt8.random(in: 0...255) }
        return hex(bytes)
    }

    package func jsonLine() -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8]((try? e.encode(self)) ?? Data("{}".utf8)) + [0x0A]
    }
}

/// The history file of one plan: JSON lines, appended with one `write(2)` per record under `O_APPEND` and
/// fsynced. A torn last line (killed mid-write, disk full) is skipped by readers and closed by the next append.
/// JSON lines rather than SQLite: nothing to recover after a kill, readable with `jq`/`grep` on a machine
/// whose backups failed, and a year of nightly runs is a few hundred KiB.
package struct RunHistory: Sendable {
    package let path: String

    package init(stateDir: String) {
        path = stateDir + "/history.jsonl"
    }

    /// Appends one record.
    package func append(_ r: RunRecord) throws(SealbakError) {
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)  // read: the last byte
        guard fd >= 0 else { throw SealbakError.io("cannot open the run history", path: path, errno: errno) }
        defer { close(fd) }
        var line = r.jsonLine()
        // A line torn by a kill or a full disk must not swallow this record.
        var st = stat()
        if fstat(fd, &st) == 0, st.st_size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, st.st_size - 1) == 1, last != 0x0A { line.insert(0x0A, at: 0) }
        }
        let n = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n != line.count {
            let e = n < 0 ? errno : ENOSPC
            // Cut back what was written, so the file ends with a whole line.
            if n > 0 && fstat(fd, &st) == 0 { _ = ftruncate(fd, st.st_size - off_t(n)) }
            throw SealbakError.io("cannot append to the run history", path: path, errno: e)
        }
        guard fsync(fd) == 0 else { throw SealbakError.io("cannot write the run history", path: path, errno: errno) }
    }

    /// Every run, oldest first, one record per id (its last line); `unreadable` counts lines that are not records.
    package func read() throws(SealbakError) -> (records: [RunRecord], unreadable: Int) {
        guard let data = FileManager.default.contents(atPath: path) else {
            if access(path, F_OK) != 0 && errno == ENOENT { return ([], 0) }
            throw SealbakError.io("cannot read the run history", path: path, errno: errno)
        }
        var byID: [String: Int] = [:]
        var out: [RunRecord] = []
        var bad = 0
        let decoder = JSONDecoder()
        for line in data.split(separator: 0x0A) where !line.isEmpty {
            guard let r = try? decoder.decode(RunRecord.self, from: Data(line)) else {
                bad += 1
                continue
            }
            if let i = byID[r.id] {
                out[i] = r
            } else {
                byID[r.id] = out.count
                out.append(r)
            }
        }
        return (out, bad)
    }

    /// Records `interrupted` for every run still `running` that is not `current` (call with the plan's lock held:
    /// no other run of the plan can be alive). Returns them.
    @discardableResult
    package func closeInterrupted(
        except current: String?,
        foundBy: String,
        now: Double
    ) throws(SealbakError) -> [RunRecord] {
        var closed: [RunRecord] = []
        for var r in try read().records where r.status == .running && r.id != current {
            r.status = .interrupted
            r.end = nil
            r.error =
                "the \(r.kind.rawValue) (pid \(r.pid) on \(r.host)) was killed or its machine stopped before it "
                + "ended (found by \(foundBy))"
                + (r.archive.map { "; the archive \($0) may have been written but was not verified or recorded" } ?? "")
            try append(r)
            closed.append(r)
        }
        return closed
    }
}

/// The plan's lock (`STATE-DIR/lock`): `flock(2)`, so the kernel releases it when its run dies however it dies,
/// and the next run takes it over. The file says who holds it (pid, host, start) for the message a second run
/// gets.
package final class PlanLock {
    private let fd: Int32
    package let path: String
    /// What the file said when the lock was taken: a killed run's pid, or nil when it was free and clean.
    package let previousHolder: String?

    /// Another run of the plan holds the lock (exit 17).
    package struct Busy: Error, Sendable {
        package var message: String
    }

    /// Takes the lock or throws `Busy` at once (no waiting: a nightly job that overlaps the last one is a problem
    /// to report, not to queue).
    package init(stateDir: String) throws {
        path = stateDir + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SealbakError.io("cannot open the plan lock", path: path, errno: errno) }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &buf, buf.count, 0)
        let holder =
            n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            close(fd)
            guard e == EWOULDBLOCK else { throw SealbakError.io("cannot lock", path: path, errno: e) }
            throw Busy(
                message:
                    "another run of this plan is in progress (\(holder.isEmpty ? "holder unknown" : holder)); it "
                    + "holds \(path). Nothing was done; if runs overlap every night, schedule them further apart"
            )
        }
        self.fd = fd
        previousHolder = holder.isEmpty ? nil : holder
        let me =
            "pid \(getpid()) on \(ProcessInfo.processInfo.hostName) since "
            + "\(RunClock.iso(Date().timeIntervalSince1970))\n"
        _ = ftruncate(fd, 0)
        _ = me.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    /// Whether a run of the plan holds the lock now (the file is left as it is).
    package static func isHeld(stateDir: String) -> Bool {
        let fd = open(stateDir + "/lock", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) != 0 { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }

    /// Empties the file (a clean end) and releases the lock.
    package func release() {
        _ = ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Times as the history and logs write them.
package enum RunClock {
    /// `2026-11-30T02:00:00.123Z`.
    package static func iso(_ t: Double) -> String {
        let ms = Int64((t * 1000).rounded(.down))
        var s = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&s, &tm)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
            Int(ms % 1000)
        )
    }

    /// Reads `2026-11-30T02:00:00Z`, `2026-11-30T02:00:00.123Z`, `2026-11-30T020000Z`, `2026-11-30` (UTC).
    package static func parse(_ text: String) -> Double? {
        guard let t = RetentionPolicy.timestamp(inName: text) else { return nil }
        var frac = 0.0
        if let dot = text.firstIndex(of: "."),
            let f = Double("0" + text[dot...].prefix(while: { $0 == "." || $0.isNumber }))
        {
            frac = f
        }
        return Double(t) + frac
    }
}
