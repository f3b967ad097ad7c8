import Foundation
import SealbakArchive
import SealbakCompression
import SealbakFormat
import SealbakIO

/// What became of every component of a pack, written as the archive's last entry (Spec/COMPONENTS.md
/// "Capture outcome"). The manifest is written before any data, so a capture that fails half way can only be
/// recorded here; a restorer reads this record before it commits anything.
package struct CaptureOutcome: Codable, Sendable, Equatable {
    package struct Component: Codable, Sendable, Equatable {
        package var kind: String
        package var name: String
        package var status: CaptureStatus
        package var reason: String?
        /// Bytes captured (for a failed component: the partial bytes stored, never restored).
        package var bytes: UInt64
    }

    /// A note about one entry (a file that changed while it was read).
    package struct Warning: Codable, Sendable, Equatable {
        package var entry: String
        package var warning: String
    }

    package var version = 1
    package var components: [Component] = []
    package var warnings: [Warning] = []
    /// Files and folders left out because they could not be read (`--skip-unreadable`), by the entry name they would
    /// have had; absent when there were none (the record of a pack without them is unchanged).
    package var unreadable: [Warning]?

    /// The outcome entry's name in archives sealbak writes.
    package static let entryName = ".sealbak-outcome.json"

    package init() {}

    /// The index of the outcome entry named by the archive metadata, if the archive has one.
    package static func index(in manifest: Manifest) -> Int? {
        guard let name = manifest.metadata[ComponentKeys.outcomeEntry] else { return nil }
        return manifest.entries.firstIndex { Array($0.name.utf8) == Array(name.utf8) && $0.kind == .stream }
    }

    package static func decode(_ bytes: [UInt8]) throws(SealbakError) -> CaptureOutcome {
        do { return try JSONDecoder().decode(CaptureOutcome.self, from: Data(bytes)) } catch {
            throw SealbakError(
                .corrupt,
                "the archive's outcome record (\(entryName)) cannot be read: \(error); it was not written by a "
                    + "compatible sealbak"
            )
        }
    }

    package func encoded() -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return [UInt8]((try? e.encode(self)) ?? Data("{}".utf8))
    }

    package var incomplete: [Component] { components.filter { $0.status != .ok } }
}

/// Packs components and loose paths into one archive under the engine's failure rules: a source that cannot be
/// reached or fails mid-capture fails the pack (naming the component and the cause), unless it is allowed to be
/// missing; then it is recorded as skipped or failed and its partial bytes are never restored.
package final class PackJob {
    package struct Options: Sendable {
        /// Files and folders given as PATH arguments (stored under their last component).
        package var paths: [String] = []
        /// `--stdin-name`: standard input as one entry.
        package var stdinName: String?
        /// Accept an empty standard input (refused by default: the command feeding it probably failed).
        package var allowEmptyStdin = false
        /// The archive's metadata (created-by, host, plan, app).
        package var metadata = Metadata()
        /// Leave out (and record) files and folders that cannot be read instead of failing.
        package var skipUnreadable = false
        /// Told the name of each entry as its data starts (progress displays).
        package var onEntry: (@Sendable (String) -> Void)?
        /// Train a zstd dictionary on samples of the plan's small files when they hold enough bytes
        /// (`WriteOptions.dictionary`); `pack --no-dictionary` turns it off.
        package var trainDictionary = false
        package init() {}
    }

    package let sources: [any CaptureSource]
    private let options: Options
    package private(set) var plan = PackPlan()
    /// Entry index → index of the source that owns it.
    private var owner: [Int: Int] = [:]
    private var lastEntry: [Int: Int] = [:]
    private var outcome = CaptureOutcome()
    private var outcomeIndex = -1
    private var stdinIndex: Int?

    package init(sources: [any CaptureSource], options: Options) {
        self.sources = sources
        self.options = options
    }

    /// Probes every source and lists every entry; a source that cannot be reached is skipped (allow-missing)
    /// or fails the job.
    package func prepare(log: EngineLog) throws {
        var names = Set<[UInt8]>()
        for s in sources
        where !names.insert(Array(s.name.utf8)).inserted
            || !names.insert(Array((s.kind + "\u{0}" + s.name).utf8)).inserted
        {
            throw SealbakError(
                .usage,
                "two components are named \(s.name); give each its own name (NAME=PATH or name: in the plan)"
            )
        }
        let now = Int64(Date().timeIntervalSince1970)
        plan.skipUnreadable = options.skipUnreadable
        for (si, s) in sources.enumerated() {
            let first = plan.entries.count
            let saved = plan
            var status = CaptureStatus.ok
            var reason: String?
            do {
                let line = try s.prepare(into: &plan, log: log)
                for (k, l) in line.split(separator: "\n").enumerated() {
                    k == 0
                        ? log.info("\(s.name): \(l)")
                        : log.warning(String(l.hasPrefix("warning: ") ? l.dropFirst(9) : l[...]))
                }
            } catch let e as SealbakError where s.allowMissing && e.code != .interrupted {
                plan = saved
                log.warning("\(s.name) is skipped (allow-missing): \(e.message)")
                try plan.add(entry: s.skippedEntry(reason: e.message, mtime: now))
                status = .skipped
                reason = e.message
            } catch let e as SealbakError {
                throw SealbakError(e.code, "\(s.kind) component \(s.name): \(e.message)")
            }
            for i in first..<plan.entries.count { owner[i] = si }
            if plan.entries.count > first { lastEntry[si] = plan.entries.count - 1 }
            outcome.components.append(.init(kind: s.kind, name: s.name, status: status, reason: reason, bytes: 0))
        }
        for p in options.paths { try plan.add(path: p) }
        if let name = options.stdinName {
            try plan.addStandardInput(name: name)
            stdinIndex = plan.entries.count - 1
        }
        if !plan.unreadable.isEmpty {
            outcome.unreadable = plan.unreadable.map { .init(entry: $0.name, warning: $0.reason) }
            for u in plan.unreadable {
                log.warning(
                    "\(displayName(u.path)) is left out: \(u.reason) (--skip-unreadable; recorded in the archive)"
                )
            }
        }
        try plan.add(
            entry: ManifestEntry(
                kind: .stream,
                name: CaptureOutcome.entryName,
                mode: 0o600,
                mtimeSeconds: now,
                metadata: Metadata([ComponentKeys.outcomeMarker: "1"])
            )
        )
        outcomeIndex = plan.entries.count - 1
        try plan.checkUnique()
    }

    /// The manifest to write (after `prepare`).
    package var manifest: Manifest {
        var m = options.metadata
        m[ComponentKeys.outcomeEntry] = CaptureOutcome.entryName
        return Manifest(metadata: m, entries: plan.entries)
    }

    /// The bytes to pack, when known in advance (files only: the size of a dump or of standard input is not).
    package var knownBytes: UInt64? {
        // (A source that makes its own stream — a redacted config, an SQLite copy — may differ a little from what was
        // listed; the progress display drops a total that turns out too small.)
        let streams = plan.sources.enumerated().contains { i, s in
            if case .standardInput = s { return true }
            return owner[i].map {
                ["postgres", "mysql", "command"].contains(sources[$0].kind) && outcome.components[$0].status == .ok
            } ?? false
        }
        return streams ? nil : plan.fileBytes
    }

    /// The whole pack: before-pack hooks, `prepare`, the archive written to `out` and committed, after-pack hooks.
    /// `passwords` is asked for once the output is known to be writable and before any source is touched.
    /// On any failure the output is abandoned (no archive, no temporary file) and the error says which part failed.
    package func run(
        to out: any ArchiveOutput,
        passwords: () throws -> [PasswordSlotSpec],
        recipients: [[UInt8]],
        options: WriteOptions,
        hooks: BackupPlan.Hooks,
        progress: @escaping (UInt64?) -> (Int) -> Void,
        log: EngineLog
    ) throws -> (WriteSummary, CaptureOutcome) {
        let writer: ArchiveWriter
        let add: (Int) -> Void
        do {
            let slots = try passwords()
            do {
                for h in hooks.beforePack { try Hook.run(h, "before-pack", log: log) }
            } catch let e as SealbakError {
                throw SealbakError(e.code, e.message + "; nothing was written")
            }
            // Probes and snapshots: databases are counted in the snapshot their dump will use.
            try prepare(log: log)
            add = progress(knownBytes)
            var options = options
            if self.options.trainDictionary && options.dictionary == nil {
                options.dictionary = dictionary(for: options)
                if let d = options.dictionary {
                    log.info("compressing small files with a \(d.count / 1024) KiB dictionary trained on them")
                }
            }
            writer = try ArchiveWriter(manifest: manifest, passwords: slots, recipients: recipients, options: options) {
                bytes in
                try out.write(bytes)
            }
        } catch {
            for s in sources { s.close() }
            out.abandon()
            throw error
        }
        let summary: WriteSummary
        let outcome: CaptureOutcome
        do {
            outcome = try write(to: writer, progress: add, log: log)
            summary = try writer.finish()
            try out.commit()
        } catch {
            writer.abandon()
            out.abandon()
            throw error
        }
        do {
            for h in hooks.afterPack { try Hook.run(h, "after-pack", log: log) }
        } catch let e as SealbakError {
            throw SealbakError(e.code, e.message + "; the archive was written (\(out.path))")
        }
        return (summary, outcome)
    }

    /// Writes every entry's data, then the outcome record, into `writer` (which must have `manifest`).
    package func write(
        to writer: ArchiveWriter,
        progress: @escaping (Int) -> Void,
        log: EngineLog
    ) throws -> CaptureOutcome {
        defer { for s in sources { s.close() } }
        for i in plan.entries.indices {
            if i != outcomeIndex && plan.entries[i].kind != .directory && plan.entries[i].kind != .symlink {
                options.onEntry?(plan.entries[i].name)
            }
            if i == outcomeIndex {
                try writer.writeEntry(bytes: outcome.encoded())
                continue
            }
            guard let si = owner[i] else {
                try writeLoose(i, to: writer, progress: progress, log: log)
                continue
            }
            let s = sources[si]
            defer { if lastEntry[si] == i { s.close() } }
            guard outcome.components[si].status == .ok else {
                try writer.writeEntry(bytes: [])
                continue
            }
            let stream: any CaptureStream
            var fileReader: SourceReader?
            do {
                if let own = try s.stream(for: i) {
                    stream = own
                } else {
                    if let size = try writeUnchanged(i, to: writer) {
                        outcome.components[si].bytes += size
                        progress(Int(size))
                        continue
                    }
                    let r = try SourceReader(plan.sources[i], listed: plan.listed[i])
                    stream = ClosureStream { out in
                        try r.read(into: &out)
                    } onEnd: { [weak self] in
                        self?.noteChange(i, r.changed, log: log)
                    }
                    fileReader = r
                }
            } catch {
                try failed(si, error, log: log)
                try writer.writeEntry(bytes: [])
                continue
            }
            try writer.writeEntry { out in
                do {
                    let before = out.count
                    try stream.read(into: &out)
                    let n = out.count - before
                    outcome.components[si].bytes += UInt64(n)
                    progress(n)
                } catch {
                    // The entry ends with what was read; the outcome record marks it failed (never restored).
                    try failed(si, error, log: log)
                }
            }
            if let state = fileReader?.unchangedState { writer.noteFileState(state) }
        }
        return outcome
    }

    /// Small files (smaller than a frame) hold at least this many bytes before a dictionary is trained: below it, the
    /// dictionary (64 KiB, stored in the archive) would cost about what it saves.
    static let dictionaryMinimumBytes: UInt64 = 4 << 20

    /// A dictionary trained on the plan's small regular files that zstd compresses (not those of the shuffle codec),
    /// or nil when they are too few or hold too few bytes (`dictionaryMinimumBytes`). In a chained pack, files still
    /// in the state the chain recorded are left out: they are written as references and never compressed, so a night
    /// in which few small files changed trains no dictionary (that took 0.13 s of an incremental pack of 8,000 files
    /// on the benchmark's machine, before any data was read).
    private func dictionary(for options: WriteOptions) -> [UInt8]? {
        guard case .zstd = options.compression else { return nil }
        let frameSize = UInt64(1) << UInt64(options.frameSizeLog2)
        let entries = manifest.entries
        var paths: [String] = []
        var bytes: UInt64 = 0
        for (i, source) in plan.sources.enumerated() {
            guard case .file(let path) = source, let state = plan.listed[i], state.size > 0, state.size < frameSize,
                i < entries.count, entries[i].kind == .file, !options.shuffle.selects(entries[i])
            else { continue }
            if let files = options.chain?.files, !files.isEmpty,
                (try? files.record(named: entries[i].name))?.state == state
            {
                continue
            }
            paths.append(path)
            bytes += state.size
        }
        guard bytes >= Self.dictionaryMinimumBytes else { return nil }
        let samples = ArchiveDictionary.samples(of: paths)
        return ZstdDictionary.train(joined: samples.joined, sizes: samples.sizes)
    }

    private func failed(_ si: Int, _ error: any Error, log: EngineLog) throws {
        let s = sources[si]
        let message = (error as? SealbakError)?.message ?? "\(error)"
        let code = (error as? SealbakError)?.code ?? .internalError
        guard s.allowMissing, code != .interrupted else {
            throw SealbakError(
                code,
                "\(s.kind) component \(s.name) failed while it was captured: \(message). The archive was not written"
            )
        }
        log.warning(
            "\(s.name) FAILED while it was captured and is recorded as failed (allow-missing); its partial data will "
                + "never be restored: \(message)"
        )
        outcome.components[si].status = .failed
        outcome.components[si].reason = message
    }

    /// A file that changed while it was read: warned about by name and recorded in the outcome record.
    private func noteChange(_ i: Int, _ change: String?, log: EngineLog) {
        guard let change else { return }
        log.warning("\(displayName(plan.entries[i].name)) \(change); the archive holds what was read")
        outcome.warnings.append(.init(entry: plan.entries[i].name, warning: change))
    }

    /// A chained archive's file entry that is still in the state its base read it in (and still as listed): written
    /// as references without being read. Returns its size, or nil when the file must be read.
    private func writeUnchanged(_ i: Int, to writer: ArchiveWriter) throws -> UInt64? {
        guard case .file(let path) = plan.sources[i], let listed = plan.listed[i], FileState.current(path) == listed,
            try writer.writeUnchangedEntry(listed)
        else { return nil }
        return listed.size
    }

    private func writeLoose(
        _ i: Int,
        to writer: ArchiveWriter,
        progress: @escaping (Int) -> Void,
        log: EngineLog
    ) throws {
        if let size = try writeUnchanged(i, to: writer) {
            progress(Int(size))
            return
        }
        let reader = try SourceReader(plan.sources[i], listed: plan.listed[i])
        defer { noteChange(i, reader.changed, log: log) }
        var total = 0
        try writer.writeEntry { out in
            let before = out.count
            try reader.read(into: &out)
            total += out.count - before
            progress(out.count - before)
        }
        if let state = reader.unchangedState { writer.noteFileState(state) }
        if i == stdinIndex && total == 0 && !options.allowEmptyStdin {
            throw SealbakError(
                .toolFailed,
                "standard input was empty, so \(options.stdinName ?? "the entry") would be stored as 0 bytes; "
                    + "nothing was written. The command feeding sealbak probably failed (a pipe hides its exit status: "
                    + "use a command component in the plan so sealbak checks it), or give --allow-empty if empty "
                    + "is right"
            )
        }
    }
}

/// Passes every entry to `inner` and also keeps the outcome entry's bytes (verify and list read it on the way).
package final class OutcomeTap: EntrySink {
    private let inner: any EntrySink
    private let index: Int?
    private var bytes: [UInt8] = []

    package init(_ inner: any EntrySink, manifest: Manifest) {
        self.inner = inner
        index = CaptureOutcome.index(in: manifest)
    }

    package func wants(_ i: Int) -> Bool { i == index || inner.wants(i) }
    package func begin(_ i: Int) throws { if inner.wants(i) { try inner.begin(i) } }
    package func write(_ i: Int, _ b: [UInt8]) throws {
        if i == index && bytes.count < 16 << 20 { bytes += b }
        if inner.wants(i) { try inner.write(i, b) }
    }
    package func end(_ i: Int, size: UInt64, sha256: [UInt8]) throws {
        if inner.wants(i) { try inner.end(i, size: size, sha256: sha256) }
    }

    /// The outcome record, when the archive has one (after the reader went past it).
    package func outcome() throws(SealbakError) -> CaptureOutcome? {
        guard index != nil else { return nil }
        return try CaptureOutcome.decode(bytes)
    }

    /// Reads the outcome entry alone (seekable archives).
    package static func read(_ reader: ArchiveReader) throws -> CaptureOutcome? {
        guard let i = CaptureOutcome.index(in: reader.manifest) else { return nil }
        let s = CaptureSink(index: i)
        try reader.readEntry(i, into: s)
        return try CaptureOutcome.decode(s.bytes)
    }
}

/// Plan hooks: a failure stops the command with the hook's own message.
package enum Hook {
    package static func run(_ h: CommandSpec, _ when: String, log: EngineLog) throws {
        log.info("\(when) hook: \(h.display)")
        let r = try h.run(input: nil, what: "the \(when) hook")
        guard r.status.succeeded else {
            let reason = r.timedOut ? "timed out after \(Int(h.timeoutSeconds)) s" : "\(r.status)"
            let detail = r.errorText.isEmpty ? "" : ": " + r.errorText
            throw SealbakError(
                .toolFailed,
                "the \(when) hook \(h.display) failed (\(reason))\(detail)"
            )
        }
    }
}
