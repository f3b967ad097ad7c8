import Foundation
import SealbakIO

#if canImport(Glibc)
import Glibc
#endif

/// One index that `pg_restore` rebuilds, with what sealbak expects its build to need.
package struct IndexBuild: Sendable, Equatable {
    package var display: String
    package var method: String
    package var rows: Int64
    /// The vector dimension and ef_construction of an HNSW build (0 otherwise).
    package var dimensions: Int = 0
    package var efConstruction: Int = 0
    /// Memory the build needs to run without spilling (bytes): the whole graph for HNSW, the sort for btree.
    package var memory: Int64
    /// Estimated seconds to build it, at the chosen memory and parallel workers.
    package var seconds: Double
    /// Guessed from the vector columns (the archive records no indexes: written by an older sealbak).
    package var assumed: Bool
}

/// What sealbak knows about the memory and cores of the server's host.
package struct HostResources: Sendable, Equatable {
    package var totalMemory: Int64
    package var availableMemory: Int64
    package var cpus: Int?
    /// Where the figures came from, for the plan and the log.
    package var source: String

    /// Parses /proc/meminfo (`MemTotal:  24684532 kB`, `MemAvailable: …`).
    package static func meminfo(_ text: String, cpus: Int?, source: String) -> HostResources? {
        var total: Int64?
        var available: Int64?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kb = Int64(parts[1]) else { continue }
            if parts[0] == "MemTotal:" { total = kb * 1024 }
            if parts[0] == "MemAvailable:" { available = kb * 1024 }
        }
        guard let total, total > 0 else { return nil }
        return HostResources(totalMemory: total, availableMemory: available ?? total / 2, cpus: cpus, source: source)
    }

    /// The most a restore's index builds may use: a quarter of the host's memory, and no more than half of
    /// what is available now (the server's shared buffers and other sessions keep the rest).
    package var safeShare: Int64 { min(totalMemory / 4, availableMemory / 2) }
}

/// The server's limits on the settings a restore raises (from `pg_settings`).
package struct ServerLimits: Sendable, Equatable {
    /// The server's current `maintenance_work_mem` (bytes) and its allowed maximum.
    package var maintenanceWorkMem: Int64
    package var maintenanceWorkMemMax: Int64
    package var maxParallelMaintenanceWorkers: Int
    /// `max_parallel_workers` and `max_worker_processes`: a session cannot get more workers than these.
    package var maxParallelWorkers: Int
    package var maxWorkerProcesses: Int

    package init(
        maintenanceWorkMem: Int64,
        maintenanceWorkMemMax: Int64,
        maxParallelMaintenanceWorkers: Int,
        maxParallelWorkers: Int,
        maxWorkerProcesses: Int
    ) {
        self.maintenanceWorkMem = maintenanceWorkMem
        self.maintenanceWorkMemMax = maintenanceWorkMemMax
        self.maxParallelMaintenanceWorkers = maxParallelMaintenanceWorkers
        self.maxParallelWorkers = maxParallelWorkers
        self.maxWorkerProcesses = maxWorkerProcesses
    }

    static func read(_ c: Connection) throws(SealbakError) -> ServerLimits {
        var v: [String: (String, String)] = [:]
        for r in try c.query(
            """
            SELECT name, setting, coalesce(max_val, '') FROM pg_settings
            WHERE name IN ('maintenance_work_mem', 'max_parallel_maintenance_workers', 'max_parallel_workers',
                           'max_worker_processes')
            """
        ) { v[r[0] ?? ""] = (r[1] ?? "", r[2] ?? "") }
        func int(_ k: String) -> Int64 { Int64(v[k]?.0 ?? "") ?? 0 }
        return ServerLimits(
            maintenanceWorkMem: int("maintenance_work_mem") * 1024,
            maintenanceWorkMemMax: (Int64(v["maintenance_work_mem"]?.1 ?? "") ?? 2_147_483_647) * 1024,
            maxParallelMaintenanceWorkers: Int(int("max_parallel_maintenance_workers")),
            maxParallelWorkers: Int(int("max_parallel_workers")),
            maxWorkerProcesses: Int(int("max_worker_processes"))
        )
    }
}

/// The settings a restore's sessions get, and why: chosen from the archive's facts (row counts, vector
/// dimensions, index definitions), bounded by the server's limits, the host's memory and `--restore-memory`.
package struct SessionSizing: Sendable, Equatable {
    package var builds: [IndexBuild]
    /// `maintenance_work_mem` for each restore session, bytes (nil: the server's own is enough).
    package var maintenanceWorkMem: Int64?
    /// `max_parallel_maintenance_workers` for each restore session (nil: leave the server's).
    package var parallelWorkers: Int?
    /// Restore sessions that may build indexes at the same time (pg_restore -j).
    package var jobs: Int
    /// The memory all sessions together may use, and where that limit came from.
    package var budget: Int64
    package var budgetSource: String
    package var server: ServerLimits
    /// Estimated restore time: the data, then the index builds (seconds).
    package var dataSeconds: Double
    package var notes: [String]

    /// Floor of every memory figure sealbak sets (the server's own minimum is 64 kB; below 1 MB is never useful).
    static let minimumMemory: Int64 = 1 << 20
    /// When the server's host memory cannot be read: what sealbak dares to ask for without being told more.
    package static let unknownHostBudget: Int64 = 512 << 20

    /// The server host's cores as the estimate counts them (2 when they cannot be read).
    package var cpus = 2
    /// How much faster one build runs with its parallel workers than alone (the model's `parallel` factor).
    package var buildSpeedup = 1.0

    /// The estimated wall time of the whole restore: the data, then the index builds at `jobs` at a time, and never
    /// faster than the cores allow: builds that run side by side share them (each one's parallel workers included),
    /// so on 2 cores two builds with 2 workers each take as long as one after the other.
    package var estimatedSeconds: Double {
        let indexes = builds.map(\.seconds).reduce(0, +)
        let longest = builds.map(\.seconds).max() ?? 0
        // A build's single-process seconds are its seconds × its speed-up; the host delivers at most the speed-up
        // of one build using every core.
        let capacity = SessionSizing.speedup(workers: max(0, cpus - 1), cpus: cpus)
        let coreBound = indexes * buildSpeedup / capacity
        return dataSeconds + max(longest, indexes / Double(max(1, jobs)), coreBound)
    }

    /// The model's speed-up of one build with `workers` parallel maintenance workers on `cpus` cores.
    static func speedup(workers: Int, cpus: Int) -> Double { 1 + 0.8 * Double(max(0, min(workers, cpus - 1))) }

    /// `-c NAME=VALUE` pairs for the sessions, in the order they are applied.
    package var settings: [(name: String, value: String)] {
        var out: [(String, String)] = []
        if let m = maintenanceWorkMem { out.append(("maintenance_work_mem", "\(m / 1024)kB")) }
        if let w = parallelWorkers { out.append(("max_parallel_maintenance_workers", String(w))) }
        return out
    }

    /// Chooses the settings.
    ///
    /// - Parameters:
    ///   - facts: what the archive recorded.
    ///   - server: the target server's settings and limits.
    ///   - host: the server host's memory and cores, when sealbak can tell.
    ///   - userLimit: `--restore-memory` (bytes), the most all restore sessions together may use.
    ///   - jobs: how many sessions restore at once.
    package static func choose(
        facts: DatabaseFacts,
        server: ServerLimits,
        host: HostResources?,
        userLimit: Int64?,
        jobs: Int
    ) -> SessionSizing {
        var notes: [String] = []
        var budget: Int64
        var source: String
        if let host {
            budget = host.safeShare
            source =
                "a quarter of the server host's memory, at most half of what is free (\(host.source): "
                + "\(formatBytes(UInt64(host.totalMemory))) total, \(formatBytes(UInt64(host.availableMemory))) "
                + "available)"
        } else {
            budget = unknownHostBudget
            source = "sealbak's default: the server's host memory cannot be read (give --restore-memory to allow more)"
        }
        if let userLimit {
            if host == nil || userLimit <= budget {
                budget = userLimit
                source = "--restore-memory"
            } else {
                notes.append(
                    "--restore-memory \(formatBytes(UInt64(userLimit))) is more than a safe share of the server "
                        + "host's memory; using \(formatBytes(UInt64(budget)))"
                )
            }
        }
        let jobs = max(1, jobs)
        let cpus = host?.cpus ?? 2
        // Workers per session: one per core (pgvector's HNSW build and btree sorts scale to about that), within the
        // server's limits. Not divided among the jobs: the largest build usually runs alone at the end, and the
        // server hands out workers from one pool (max_parallel_workers) anyway.
        let workers = max(0, min(cpus, server.maxParallelWorkers, max(0, server.maxWorkerProcesses - 1), 8))
        var builds = estimates(facts)
        let need = builds.map(\.memory).max() ?? 0
        let perSession = max(minimumMemory, min(budget / Int64(jobs), server.maintenanceWorkMemMax))
        var mwm: Int64? = nil
        if need > server.maintenanceWorkMem {
            // 10% headroom over the estimate: a graph that misses by a few tuples goes to disk for the rest.
            mwm = min(perSession, roundUp(need + need / 10))
            if need > perSession {
                notes.append(
                    "the largest index build needs about \(formatBytes(UInt64(need))) but each of \(jobs) session(s) "
                        + "may use \(formatBytes(UInt64(perSession))); it will spill and take longer"
                )
            }
        }
        if userLimit != nil, server.maintenanceWorkMem > perSession {
            // The user's limit is below what the server would use on its own: honour it.
            mwm = perSession
        }
        let effective = mwm ?? server.maintenanceWorkMem
        let setWorkers: Int? = builds.isEmpty || workers == server.maxParallelMaintenanceWorkers ? nil : workers
        let usedWorkers = setWorkers ?? server.maxParallelMaintenanceWorkers
        for i in builds.indices {
            builds[i].seconds = buildSeconds(builds[i], memory: effective, workers: usedWorkers, cpus: cpus)
        }
        // The data: tables load side by side with several jobs, so the largest table bounds it.
        var heaps: [String: Int64] = [:]
        for t in facts.tables { heaps[t.schema + "\u{0}" + t.name] = t.bytes }
        for i in facts.indexes ?? [] { heaps[i.schema + "\u{0}" + i.table, default: 0] -= i.bytes }
        let heap = heaps.values.reduce(0) { $0 + max(0, $1) }
        let largest = heaps.values.map { max(0, $0) }.max() ?? 0
        let dataBytes = max(Double(largest), Double(heap) / Double(jobs))
        if facts.indexes == nil, !builds.isEmpty {
            notes.append(
                "this archive records no indexes (written by an older sealbak); sizing assumes an HNSW index (m=16) "
                    + "on every vector column"
            )
        }
        var sizing = SessionSizing(
            builds: builds,
            maintenanceWorkMem: mwm,
            parallelWorkers: setWorkers,
            jobs: jobs,
            budget: budget,
            budgetSource: source,
            server: server,
            dataSeconds: dataBytes / copyBytesPerSecond,
            notes: notes
        )
        sizing.cpus = cpus
        sizing.buildSpeedup = speedup(workers: usedWorkers, cpus: cpus)
        return sizing
    }

    /// Rounds up to a whole MiB (plus one), so that a setting is not cut below the estimate.
    static func roundUp(_ n: Int64) -> Int64 { (n / (1 << 20) + 1) << 20 }

    // MARK: the model
    //
    // Memory: pgvector keeps the whole HNSW graph in maintenance_work_mem while building: per element the vector
    // (4 bytes per dimension for vector, 2 for halfvec), 2·m neighbour slots of 16 bytes on level 0 and about 300
    // bytes of element and upper-level bookkeeping. Checked against pgvector 0.8's own notice ("hnsw graph no
    // longer fits into maintenance_work_mem after N tuples"): 465 tuples of vector(384) at 1 MB = 2,255 bytes
    // each, 28,370 at 64 MB = 2,365; the model says 2,376, and the setting adds 10%. A btree build sorts its
    // keys: about twice the finished index.
    //
    // Time: calibrated on bench/pg-restore's machine (2 cores, PostgreSQL 18, pgvector 0.8); a rough guide, not
    // a promise: ±50%.

    static let copyBytesPerSecond = 60.0 * 1024 * 1024
    /// Writing the dump's temporary copy for pg_restore -j (decrypting and writing a local file).
    static let temporaryCopyBytesPerSecond = 200.0 * 1024 * 1024
    /// Seconds per (row × dimension × ef_construction) of an HNSW build in one process whose graph fits.
    static let hnswSecondsPerUnit = 3.0e-8
    /// How much slower a build gets once its graph no longer fits (pgvector then inserts into the on-disk graph).
    static let spillFactor = 4.8
    static let btreeSecondsPerRow = 1.5e-6

    /// The memory each recorded index build needs (or, without index facts, an HNSW index on each vector column).
    package static func estimates(_ facts: DatabaseFacts) -> [IndexBuild] {
        var rows: [String: Int64] = [:]
        for t in facts.tables { rows[t.schema + "\u{0}" + t.name] = t.rows }
        func vector(_ schema: String, _ table: String, _ column: String) -> DatabaseFacts.VectorColumn? {
            facts.vectorColumns.first { $0.schema == schema && $0.table == table && $0.column == column }
        }
        guard let indexes = facts.indexes else {
            return facts.vectorColumns.compactMap { v in
                guard let d = v.dimensions else { return nil }
                let n = max(0, rows[v.schema + "\u{0}" + v.table] ?? 0)
                return IndexBuild(
                    display: "\(v.schema).\(v.table)(\(v.column))",
                    method: "hnsw",
                    rows: n,
                    dimensions: d,
                    efConstruction: 64,
                    memory: hnswMemory(rows: n, vectorBytes: vectorBytes(v.type, d), m: 16),
                    seconds: 0,
                    assumed: true
                )
            }
        }
        return indexes.map { i in
            let n = max(0, rows[i.schema + "\u{0}" + i.table] ?? 0)
            var memory = i.bytes * 2
            var dims = 0
            if i.method == "hnsw", let c = i.columns.first, let v = vector(i.schema, i.table, c), let d = v.dimensions,
                v.type != "sparsevec"
            {
                memory = hnswMemory(rows: n, vectorBytes: vectorBytes(v.type, d), m: i.option("m") ?? 16)
                dims = d
            } else if i.method != "btree" {
                memory = i.bytes
            }
            return IndexBuild(
                display: i.display,
                method: i.method,
                rows: n,
                dimensions: dims,
                efConstruction: i.option("ef_construction") ?? 64,
                memory: max(0, memory),
                seconds: 0,
                assumed: false
            )
        }
    }

    static func vectorBytes(_ type: String, _ dimensions: Int) -> Int64 {
        switch type {
        case "halfvec": Int64(dimensions) * 2 + 8
        case "bit": Int64(dimensions + 7) / 8 + 8
        default: Int64(dimensions) * 4 + 8
        }
    }

    static func hnswMemory(rows: Int64, vectorBytes: Int64, m: Int) -> Int64 {
        rows * (vectorBytes + Int64(2 * m) * 16 + 320)
    }

    static func buildSeconds(_ b: IndexBuild, memory: Int64, workers: Int, cpus: Int) -> Double {
        let parallel = speedup(workers: workers, cpus: cpus)
        switch b.method {
        case "hnsw":
            let base =
                Double(b.rows) * Double(max(1, b.dimensions)) * Double(max(1, b.efConstruction)) * hnswSecondsPerUnit
                / parallel
            return memory >= b.memory ? base : base * spillFactor
        case "btree":
            return Double(b.rows) * btreeSecondsPerRow / parallel
        default:
            return Double(b.rows) * btreeSecondsPerRow * 4
        }
    }

    /// Lines for the plan (`--dry-run`) and `sealbak list`.
    package var planLines: [String] {
        var lines: [String] = []
        let set = settings.map { "\($0.name)=\($0.value)" }.joined(separator: ", ")
        let workers = parallelWorkers.map(String.init) ?? "\(server.maxParallelMaintenanceWorkers) (the server's)"
        lines.append(
            "session sizing: " + (set.isEmpty ? "the server's settings suffice" : "sets " + set)
                + " (maintenance memory \(formatBytes(UInt64(maintenanceWorkMem ?? server.maintenanceWorkMem))) per "
                + "session,"
                + " the server's \(formatBytes(UInt64(server.maintenanceWorkMem)))), parallel maintenance workers "
                + "\(workers), \(jobs) restore job(s)"
        )
        lines.append("  memory limit \(formatBytes(UInt64(budget))) for all sessions: \(budgetSource)")
        lines.append(contentsOf: Self.estimateLines(builds: builds, dataSeconds: dataSeconds, total: estimatedSeconds))
        for n in notes { lines.append("  note: \(n)") }
        return lines
    }

    /// Index lines and the restore-time estimate (shared with `sealbak list`, which knows no server).
    package static func estimateLines(builds: [IndexBuild], dataSeconds: Double, total: Double) -> [String] {
        var lines: [String] = []
        for b in builds {
            lines.append(
                "  rebuilds index \(b.display) (\(b.method)\(b.assumed ? ", assumed" : ""), \(b.rows) rows): needs "
                    + "about \(formatBytes(UInt64(b.memory))), about \(formatSeconds(b.seconds))"
            )
        }
        lines.append(
            "  estimated restore time: about \(formatSeconds(total)) (data \(formatSeconds(dataSeconds)), "
                + "\(builds.count) index build(s); a rough model, ±50%)"
        )
        return lines
    }

    /// The estimate for an archive alone (`sealbak list`): the server's defaults assumed (64 MB, 2 workers, 2 cores)
    /// and sealbak's own sizing within its default memory limit.
    package static func offline(_ facts: DatabaseFacts) -> SessionSizing {
        let server = ServerLimits(
            maintenanceWorkMem: 64 << 20,
            maintenanceWorkMemMax: 2_147_483_647 * 1024,
            maxParallelMaintenanceWorkers: 2,
            maxParallelWorkers: 8,
            maxWorkerProcesses: 8
        )
        return choose(facts: facts, server: server, host: nil, userLimit: nil, jobs: 1)
    }
}

func formatSeconds(_ s: Double) -> String {
    if s < 1 { return "<1 s" }
    if s < 120 { return "\(Int(s.rounded())) s" }
    if s < 7200 { return "\(Int((s / 60).rounded())) min" }
    return String(format: "%.1f h", s / 3600)
}

/// Parses a memory size: `512MB`, `2GB`, `1GiB`, `65536kB` or plain bytes. Units are powers of 1024, as PostgreSQL's.
package func parseMemorySize(_ text: String) -> Int64? {
    let s = text.trimmingCharacters(in: .whitespaces)
    let digits = s.prefix { $0.isNumber }
    guard let n = Int64(digits), n > 0 else { return nil }
    let unit = s.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
    let shift: Int64
    switch unit {
    case "", "b": shift = 0
    case "k", "kb", "kib": shift = 10
    case "m", "mb", "mib": shift = 20
    case "g", "gb", "gib": shift = 30
    case "t", "tb", "tib": shift = 40
    default: return nil
    }
    guard n <= (Int64.max >> shift) else { return nil }
    return n << shift
}

/// Whether a libpq host names this machine: a Unix socket directory, localhost or a loopback address.
package func isLocalHost(_ params: ConnectionParameters) -> Bool {
    let host = params["host"] ?? params["hostaddr"] ?? ProcessInfo.processInfo.environment["PGHOST"] ?? ""
    if host.isEmpty || host.hasPrefix("/") || host.hasPrefix("@") { return true }
    return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
}
