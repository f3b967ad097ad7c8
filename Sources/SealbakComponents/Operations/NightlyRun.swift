import Foundation
import SealbakFormat
import SealbakIO
import SealbakS3
import SealbakSync

/// What a pack inside a run produced.
package struct RunPackResult: Sendable {
    package var location: String
    package var size: UInt64
    package var entries: Int
    package var outcome: CaptureOutcome
    /// Per component: its entries and the counts its kind records (tables, rows), from the manifest.
    package var counts: [String: [String: UInt64]] = [:]

    package init(location: String, size: UInt64, entries: Int, outcome: CaptureOutcome) {
        (self.location, self.size, self.entries, self.outcome) = (location, size, entries, outcome)
    }

    /// The counts of every component in `manifest` (entries, and tables/rows where the kind records them).
    package static func counts(_ manifest: Manifest) -> [String: [String: UInt64]] {
        let keys = [
            ComponentKeys.pgTables: "tables", ComponentKeys.pgRows: "rows", "mysql.tables": "tables",
            "sqlite.tables": "tables", "sqlite.rows": "rows",
        ]
        var out: [String: [String: UInt64]] = [:]
        // A component's first entry carries its name; the entries below it (ROOT/…) belong to it.
        var current: (name: String, root: String)?
        for e in manifest.entries {
            if let name = e.metadata[ComponentKeys.name] {
                current = (name, e.name)
            } else if let c = current, e.name.hasPrefix(c.root + "/") {
                out[c.name, default: [:]]["entries", default: 0] += 1
                continue
            } else {
                current = nil
                continue
            }
            guard let name = current?.name else { continue }
            out[name, default: [:]]["entries", default: 0] += 1
            for (key, label) in keys {
                if let v = e.metadata[key].flatMap({ UInt64($0) }) { out[name, default: [:]][label, default: 0] += v }
            }
        }
        return out
    }
}

/// The nightly job of one plan (`sealbak run`): lock, record the start, pack, verify what was written, apply
/// retention, record the end, write the Prometheus textfile, notify, unlock. The pack and the verification are
/// passed in (the CLI owns passwords and storage settings); everything else lives here.
///
/// Exit codes: 0 success; 15/16 the archive was written with skipped components or changed files; 17 another
/// run of the plan holds the lock; otherwise the failure's own code (docs/exit-codes.md).
package struct NightlyRun {
    package static let busyExitStatus: Int32 = 17

    package let plan: BackupPlan
    /// The run's clock: `{now}` in the name, the history times and the retention reference (a `--now` for
    /// drills and tests; real time otherwise).
    package let now: Date
    package let log: EngineLog
    package var catalogClient: S3Client?
    /// Writes a small JSON object next to the archives (s3:// destinations), so another machine sees the run.
    package var remoteRecord: ((RunRecord, String) throws -> Void)?

    package init(plan: BackupPlan, now: Date, log: EngineLog) {
        self.plan = plan
        self.now = now
        self.log = log
    }

    private var ops: Operations { plan.operations }

    /// Seconds since 1970 on the run's clock (`now` plus the real time elapsed since the run began).
    private func clock(_ began: Date) -> Double { now.timeIntervalSince1970 + Date().timeIntervalSince(began) }

    /// Runs the job; returns its record (already in the history) and the exit status.
    /// What a run's archive builds on (`destination.incremental`, Spec §14).
    package enum ChainChoice: Equatable, Sendable {
        /// A full archive that is not part of a chain.
        case full
        /// A full archive that starts a chain.
        case root
        /// An incremental archive on top of this one.
        case base(String)
    }

    package func perform(
        pack: (String, ChainChoice) throws -> RunPackResult,
        verify: ((String) throws -> Void)?
    ) -> (RunRecord, Int32) {
        let began = Date()
        var record = RunRecord(kind: .run, plan: ops.planName, start: now.timeIntervalSince1970)
        let history = RunHistory(stateDir: ops.stateDir)
        let lock: PlanLock
        do {
            guard ops.location != nil else {
                throw SealbakError(
                    .usage,
                    "\(plan.file): the plan has no destination: (a folder or s3://BUCKET/PREFIX/ for the archives)"
                )
            }
            try StateDir.create(ops.stateDir)
            lock = try PlanLock(stateDir: ops.stateDir)
        } catch let busy as PlanLock.Busy {
            record.status = .busy
            record.end = clock(began)
            record.error = busy.message
            record.exitCode = Self.busyExitStatus
            try? history.append(record)
            log.warning(busy.message)
            return (record, Self.busyExitStatus)
        } catch {
            return (finishEarly(record, error, began), (error as? SealbakError)?.code.exitStatus ?? 1)
        }
        defer { lock.release() }
        // Stopped by SIGINT/SIGTERM/SIGHUP (systemctl stop, Ctrl-C): the handler records the run as interrupted
        // before the process exits (a SIGKILL leaves that to the next run).
        let latest = Locked(record)
        // Whoever changes `latest` from running first records the end: this handler (interrupted) or the run itself.
        let token = Interrupts.register {
            let ended = latest.withLock { r -> RunRecord? in
                guard r.status == .running else { return nil }
                r.status = .interrupted
                r.end = Date().timeIntervalSince1970
                r.error =
                    NightlyRun.stoppedBySignal
                    + (r.archive.map { "; the archive \($0) was written but not verified or recorded" } ?? "")
                return r
            }
            if let ended { try? history.append(ended) }
        }
        defer { Interrupts.unregister(token) }
        var exit: Int32 = 0
        do {
            for r in try history.closeInterrupted(
                except: nil,
                foundBy: "the run of \(RunClock.iso(record.start))",
                now: record.start
            ) {
                log.warning(
                    "the run of \(RunClock.iso(r.start)) (pid \(r.pid)) was interrupted before it ended; recorded as "
                        + "interrupted"
                )
            }
            if let holder = lock.previousHolder {
                log.info("took over the lock left by a run that ended without releasing it (\(holder))")
            }
            abortStaleUploads()
            try history.append(record)
            latest.withLock { $0 = record }
            try Fault.point("run", "started, before the pack")
            let name = ops.archiveName(now: now)
            guard let location = ops.archiveLocation(name) else { throw SealbakError(.usage, "no destination") }
            if let dest = ops.location, !ArchiveLocations.isRemote(dest) {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: dest, isDirectory: &isDir), isDir.boolValue else {
                    throw SealbakError(
                        .notFound,
                        "the destination folder \(dest) does not exist; create it (sealbak does not, so that a "
                            + "backup disk that is not mounted is never replaced by a folder on the system disk)"
                    )
                }
            }
            let chain = try chainChoice(history: history)
            switch chain {
            case .full: break
            case .root: log.info("incremental: this run writes a full archive that starts a chain")
            case .base(let b): log.info("incremental: this run builds on \(b)")
            }
            let result = try pack(location, chain)
            record.archive = location
            record.size = result.size
            record.entries = result.entries
            record.components = result.outcome.components.map {
                var c = RunRecord.ComponentRecord(
                    name: $0.name,
                    kind: $0.kind,
                    status: $0.status.rawValue,
                    bytes: $0.bytes,
                    reason: $0.reason
                )
                c.counts = result.counts[$0.name]
                return c
            }
            record.warnings = result.outcome.warnings.map { "\($0.entry): \($0.warning)" }
            if !result.outcome.incomplete.isEmpty {
                exit = 15
                record.warnings =
                    (record.warnings ?? [])
                    + result.outcome.incomplete.map { "\($0.name) \($0.status.rawValue): \($0.reason ?? "")" }
            } else if !result.outcome.warnings.isEmpty {
                exit = 16
            }
            // Still running, but a kill from here on leaves the archive's name in the history.
            try history.append(record)
            latest.withLock { $0 = record }
            try Fault.point("run", "archive written, before the verification")
            if let verify, ops.verify {
                do { try verify(location) } catch let e as SealbakError {
                    throw SealbakError(e.code, "the archive \(location) was written but does not verify: \(e.message)")
                }
                record.verified = true
                log.info("verified \(location)")
            }
            try Fault.point("run", "before retention")
            if let policy = ops.retention {
                record.deleted = try applyRetention(
                    policy,
                    history: history,
                    newest: location,
                    newestIsSuccess: exit == 0
                )
            }
            try Fault.point("run", "before the end of the run is recorded")
            record.status = exit == 0 ? .ok : .warnings
        } catch {
            let e = error as? SealbakError ?? SealbakError(.internalError, "\(error)")
            record.status = .failed
            record.error = e.message
            exit = e.code.exitStatus
            // A failure caused by a signal (its cleanup killed the hook or the dump) is an interrupted run.
            if Interrupts.pending {
                record.status = .interrupted
                record.error = NightlyRun.stoppedBySignal + " (\(e.message))"
            }
        }
        record.exitCode = exit
        record.end = clock(began)
        let mine = latest.withLock { r -> Bool in
            guard r.status == .running else { return false }
            r = record
            return true
        }
        guard mine else { return (latest.withLock { $0 }, exit) }  // the signal handler recorded it
        do { try history.append(record) } catch {
            log.warning("the run's record could not be written to the history: \(error.message)")
            if exit == 0 { exit = error.code.exitStatus }
        }
        finishOutputs(record)
        return (record, exit)
    }

    static let stoppedBySignal =
        "stopped by a signal (SIGINT, SIGTERM or SIGHUP: systemctl stop, Ctrl-C, a closed terminal) before it ended"

    /// A run that failed before it held the lock: recorded if the history can be written at all.
    private func finishEarly(_ r: RunRecord, _ error: any Error, _ began: Date) -> RunRecord {
        var r = r
        r.status = .failed
        r.error = (error as? SealbakError)?.message ?? "\(error)"
        r.exitCode = (error as? SealbakError)?.code.exitStatus ?? 1
        r.end = clock(began)
        try? RunHistory(stateDir: ops.stateDir).append(r)
        _ = ops.sendNotifications(r, log: log)
        return r
    }

    /// The Prometheus textfile, the record next to the archives, the notifications: each failure is a warning.
    private func finishOutputs(_ r: RunRecord) {
        if let path = ops.prometheus {
            do {
                let records = try RunHistory(stateDir: ops.stateDir).read().records
                try HealthReport.evaluate(
                    plan: ops.planName,
                    records: records,
                    now: r.end ?? r.start,
                    maxAge: ops.maxAge,
                    sizeChange: ops.sizeChange
                )
                .writePrometheus(to: path)
            } catch { log.warning("the Prometheus textfile \(path) could not be written: \(error.message)") }
        }
        if let remoteRecord, let location = ops.location {
            do { try remoteRecord(r, location) } catch {
                log.warning(
                    "the run record could not be stored next to the archives: "
                        + "\((error as? SealbakError)?.message ?? "\(error)")"
                )
            }
        }
        _ = ops.sendNotifications(r, log: log)
    }

    /// Multipart uploads of this plan's archive names that a killed run left under an s3:// destination (they cost
    /// storage until aborted). Only the plan's own names, and only with the lock held: no live run of the plan is
    /// uploading. A failure here is a warning.
    private func abortStaleUploads() {
        guard let client = catalogClient, let location = ops.location, ArchiveLocations.isRemote(location),
            let base = try? S3Location(url: location, allowEmptyKey: true)
        else { return }
        do {
            for u in try client.listMultipartUploads(bucket: base.bucket, prefix: base.key) {
                let name = String(u.key.dropFirst(base.key.count))
                let stem = name.range(of: ".sealbak-tmp-").map { String(name[..<$0.lowerBound]) } ?? name
                guard !name.contains("/"), ops.matches(stem) else { continue }
                try client.abortMultipartUpload(S3Location(bucket: base.bucket, key: u.key), uploadID: u.uploadID)
                log.warning("aborted the unfinished upload of \(name), left by a run that was killed")
            }
        } catch {
            log.warning("could not look for uploads left by killed runs: \(error.message)")
        }
    }

    /// Deletes the plan's archives that `policy` does not keep; never the newest archive, never the newest
    /// archive of a successful run, never a file that is not a sealbak archive or not named by this plan.
    /// With `destination.incremental`: the newest chained archive of this plan that no run recorded as failed,
    /// unless its chain already holds `full-every` archives (then a new chain starts).
    private func chainChoice(history: RunHistory) throws -> ChainChoice {
        guard ops.incremental, let location = ops.location else { return .full }
        let failed = Set(
            try history.read().records.filter { $0.status == .failed || $0.status == .interrupted }.compactMap(
                \.archive
            )
        )
        let candidates = try Catalog.list(location, client: catalogClient).filter {
            $0.header?.base != nil && ops.matches($0.name) && !failed.contains($0.location) && $0.time != nil
        }
        guard let newest = candidates.max(by: { $0.time!.unix < $1.time!.unix }), let depth = newest.header?.base?.depth
        else { return .root }
        if Int(depth) + 1 >= ops.fullEvery {
            log.info(
                "incremental: \(newest.name) is archive \(depth + 1) of its chain (full-every: \(ops.fullEvery)); "
                    + "starting a new chain"
            )
            return .root
        }
        return .base(newest.location)
    }

    private func applyRetention(
        _ policy: RetentionPolicy,
        history: RunHistory,
        newest: String,
        newestIsSuccess: Bool
    ) throws -> [String] {
        guard let location = ops.location else { return [] }
        let items = try Catalog.list(location, client: catalogClient).filter {
            $0.header != nil && ops.matches($0.name)
        }
        var protect: [String: String] = [newest: "written by this run"]
        let okRuns = try history.read().records.filter { $0.kind == .run && $0.status == .ok && $0.archive != nil }
        if !newestIsSuccess,
            let lastOK = okRuns.last(where: { a in items.contains { $0.location == a.archive } })?.archive,
            protect[lastOK] == nil
        {
            protect[lastOK] = "the newest successful run's archive"
        }
        let decisions = policy.apply(
            items.map { RetentionPolicy.Candidate(name: $0.location, time: $0.time!.unix) },
            protect: protect,
            bases: Catalog.bases(items)
        )
        var deleted: [String] = []
        for d in decisions where !d.keep {
            guard let item = items.first(where: { $0.location == d.candidate.name }) else { continue }
            try Fault.point("run", "retention deletes \(item.name)")
            try Catalog.delete(item, client: catalogClient)
            log.info("retention deleted \(item.name)")
            deleted.append(item.location)
        }
        return deleted
    }
}

/// The plan's state folder: created (with parents) private to its owner.
package enum StateDir {
    package static func create(_ path: String) throws(SealbakError) {
        do {
            try FileManager.default.createDirectory(
                atPath: path,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw SealbakError(
                .io,
                "cannot create the state folder \(path): \(error.localizedDescription); set state-dir: in the plan "
                    + "to a writable folder"
            )
        }
    }
}
