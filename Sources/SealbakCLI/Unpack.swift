import ArgumentParser
import Foundation
import SealbakComponents
import SealbakFormat
import SealbakIO
import SealbakS3

struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify and extract an archive into a directory.",
        discussion: """
            Nothing is placed in DIR until every selected entry has been authenticated and checked against its \
            SHA-256 (and, when reading the whole archive, the trailer and footer). On any error DIR is left as it was.

            Examples:
              sealbak unpack backup.sbk --to ./restored
              sealbak unpack backup.sbk --to ./restored --only docs --only 'config/*.env'
              ssh backup-host cat backup.sbk | sealbak unpack - --to ./restored
            """
    )

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @Option(name: .long, help: ArgumentHelp("Target directory (created if missing).", valueName: "DIR"))
    var to: String

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Extract only NAME (an entry or a directory, or a pattern with * ? [ ] where * also matches /); "
                + "repeatable.",
            valueName: "NAME"
        )
    )
    var only: [String] = []

    @Flag(name: .long, help: "Replace existing files in DIR.")
    var force = false

    @Flag(name: [.short, .long], help: "No progress or summary on stderr.")
    var quiet = false

    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func run() throws {
        try reportingErrors(json: output.json ? "unpack" : nil) {
            if to == "-" {
                throw SealbakError(
                    .usage,
                    "--to - would create a folder named \"-\"; to write an entry to standard output use sealbak cat "
                        + "ARCHIVE ENTRY (or --to ./- for that folder)"
                )
            }
            // First finish or remove what killed unpacks into DIR left (docs/usage.md "Unpack safety").
            if FileManager.default.fileExists(atPath: to) {
                for line in try Extractor.recoverInterrupted(in: to) { printError("sealbak: \(line)") }
            }
            let reader = try openArchive(archive, in: reading.locations, password: password, reading: reading)
            let entries = reader.manifest.entries
            var selected = Set(entries.indices)
            if !only.isEmpty {
                selected = []
                for name in only {
                    let matches = EntrySelection.matching(name, in: entries.map(\.name))
                    if matches.isEmpty {
                        throw SealbakError(
                            .notFound,
                            "\(archive): no entry named \(displayName(name)); see sealbak list"
                        )
                    }
                    selected.formUnion(matches)
                }
                // Parent directories of selected entries come along so modes and times are restored too.
                // Names are compared as bytes: String == would match an NFC folder for an NFD name.
                var directories: [[UInt8]: Int] = [:]
                for (j, e) in entries.enumerated() where e.kind == .directory { directories[Array(e.name.utf8)] = j }
                for i in Array(selected) {
                    var parts = entries[i].name.utf8.split(separator: UInt8(ascii: "/")).map { Array($0) }.dropLast()
                    while !parts.isEmpty {
                        if let j = directories[Array(parts.joined(separator: [UInt8(ascii: "/")]))] {
                            selected.insert(j)
                        }
                        parts = parts.dropLast()
                    }
                }
            }
            let extractor = try Extractor(root: to, manifest: reader.manifest, selected: selected, force: force)
            let total =
                reader.input.isSeekable
                ? (try? reader.contentView(reader.loadIndex())).map { t in
                    selected.reduce(UInt64(0)) { $0 + t.entries[$1].size }
                } : nil
            let started = Date()
            let progress = Progress(label: "unpacking", total: total, quiet: quiet, json: output.named("unpack"))
            let tap = ProgressTap(extractor, manifest: reader.manifest, progress: progress)
            defer { progress.finish() }
            do {
                if !only.isEmpty && reader.input.isSeekable {
                    for i in selected.sorted() { try reader.readEntry(i, into: tap) }
                } else {
                    try reader.readAll(into: tap)
                }
                progress.finish()
                try extractor.commit()
            } catch {
                extractor.abort()
                throw error
            }
            for s in extractor.skippedSymlinks {
                printError("sealbak: warning: skipped symlink \(displayName(s)): its target leaves \(displayName(to))")
            }
            if output.json {
                JSONOutput.emit(
                    "unpack",
                    [
                        "archive": archiveJSON(archive, header: reader.header, manifest: reader.manifest), "to": to,
                        "entries": selected.count, "bytes": extractor.bytesWritten,
                        "skipped_symlinks": extractor.skippedSymlinks,
                        "duration_seconds": (Date().timeIntervalSince(started) * 1000).rounded() / 1000,
                    ]
                )
            } else if !quiet {
                printError(
                    "sealbak: unpacked \(selected.count) entries, \(formatBytes(extractor.bytesWritten)) into "
                        + "\(displayName(to)) in \(formatDuration(Date().timeIntervalSince(started))); every entry "
                        + "verified"
                )
            }
            if !quiet, let r = S3Options.fetchReport(reader.input) { printError("sealbak: \(r)") }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Check every tag, checksum and structure of an archive, or of every archive in a folder or under an "
            + "s3:// prefix; writes nothing.",
        discussion: """
            Given a folder or s3://BUCKET/PREFIX/ (ending in /), every sealbak archive there is verified and a summary \
            printed; the exit code is the worst result (0 all intact, 15 some incomplete, else the first failure's \
            code). With --plan, the plan's password-file/identity open the archives, each result is recorded in the \
            plan's run history, and --not-verified-since skips archives verified (by verify or by run) since then.

            Examples:
              sealbak verify backup.sbk
              sealbak verify s3://backups/app/2026-11-30T02:00:00.000Z.sbk --identity ~/.sealbak/id
              sealbak verify /srv/backups/app/ --plan /etc/sealbak/app.yaml --not-verified-since 2026-11-01
            """
    )

    @Argument(
        help: ArgumentHelp(
            "The archive (- for standard input), or a folder or s3://BUCKET/PREFIX/ to verify every archive in.",
            valueName: "ARCHIVE"
        )
    )
    var archive: String

    @Flag(
        name: [.short, .long],
        help: "Print nothing on success (a bulk verification still prints failures and its summary)."
    )
    var quiet = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Open the archives with this plan's password-file/identity and record the results in its history.",
            valueName: "FILE"
        )
    )
    var plan: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Bulk only: skip archives the plan's history records as verified since TIME (2026-11-01 or "
                + "2026-11-01T02:00:00Z).",
            valueName: "TIME"
        )
    )
    var notVerifiedSince: String?

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "An incremental archive: also verify every archive of its chain completely, each as a file (not only the "
                + "ranges this one refers to)."
        )
    )
    var chain = false

    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func validate() throws {
        if notVerifiedSince != nil && plan == nil {
            throw ValidationError("--not-verified-since reads the plan's run history: give --plan FILE")
        }
        if let t = notVerifiedSince, RunClock.parse(t) == nil {
            throw ValidationError(
                "--not-verified-since \(t): give a UTC date or time such as 2026-11-01 or 2026-11-01T02:00:00Z"
            )
        }
    }

    func run() throws {
        try reportingErrors(json: output.json ? "verify" : nil) {
            let bp = try plan.map { try BackupPlan.load($0) }
            let secret = try password.orPlan(bp)
            if isBulk {
                throw ExitCode(try bulk(bp, secret))
            }
            let result = try verifyArchive(
                archive,
                in: reading.locations,
                password: secret,
                reading: reading,
                quiet: quiet,
                output: output.named("verify"),
                wholeChain: chain
            )
            if output.json { JSONOutput.emit("verify", result.json) }
            if let bp { try? record(bp, archive, nil) }
            if !result.incomplete.isEmpty {
                printError("sealbak: \(archive) is intact but INCOMPLETE: \(result.incomplete.joined(separator: "; "))")
                throw ExitCode(ExitStatus.skippedComponents)
            }
        }
    }

    private var isBulk: Bool {
        if ArchiveLocations.isRemote(archive) { return archive.hasSuffix("/") }
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: archive, isDirectory: &isDir) && isDir.boolValue
    }

    private func bulk(_ bp: BackupPlan?, _ secret: PasswordOptions) throws -> Int32 {
        // Absolute, so that the history names each archive as sealbak run recorded it.
        let location =
            ArchiveLocations.isRemote(archive) ? archive : URL(fileURLWithPath: archive).standardizedFileURL.path
        let storage = reading.s3.connection()
        let items = try Catalog.list(location, client: try storage.client(for: location))
            .filter { $0.header != nil }
            .sorted { ($0.time?.unix ?? 0, $0.name) < ($1.time?.unix ?? 0, $1.name) }
        var skip = Set<String>()
        if let bp, let since = notVerifiedSince.flatMap(RunClock.parse) {
            let records = try RunHistory(stateDir: bp.operations.stateDir).read().records
            for r in records where (r.end ?? 0) >= since && r.archive != nil {
                if (r.kind == .verify && (r.status == .ok || r.status == .warnings))
                    || (r.kind == .run && r.verified == true)
                {
                    skip.insert(r.archive!)
                }
            }
        }
        var ok = 0
        var incomplete = 0
        var failed = 0
        var skipped = 0
        var worst: Int32 = 0
        var docs: [[String: Any]] = []
        let text = !output.json
        for item in items {
            var doc: [String: Any] = ["name": item.name, "location": item.location]
            if skip.contains(item.location) {
                skipped += 1
                doc["status"] = "skipped"
                docs.append(doc)
                continue
            }
            do {
                let r = try verifyArchive(
                    item.location,
                    in: storage.locations,
                    password: secret,
                    reading: reading,
                    quiet: true
                )
                doc["entries"] = r.entries
                doc["bytes"] = r.bytes
                if r.incomplete.isEmpty {
                    ok += 1
                    doc["status"] = "ok"
                    if text && !quiet {
                        print("ok          \(item.name)  \(r.entries) entries, \(formatBytes(r.bytes))")
                    }
                } else {
                    incomplete += 1
                    doc["status"] = "incomplete"
                    doc["incomplete"] = r.incomplete
                    if text { print("INCOMPLETE  \(item.name): \(r.incomplete.joined(separator: "; "))") }
                    if worst == 0 { worst = ExitStatus.skippedComponents }
                }
                if let bp { try record(bp, item.location, r.incomplete.isEmpty ? nil : r.incomplete) }
            } catch let e as SealbakError {
                failed += 1
                doc["status"] = "failed"
                doc["error"] = ["exit_code": Int(e.code.exitStatus), "message": displayMessage(e.message)]
                if text { print("FAILED      \(item.name): \(displayMessage(e.message))") }
                if worst == 0 || worst == ExitStatus.skippedComponents { worst = e.code.exitStatus }
                if let bp { try? record(bp, item.location, nil, error: e) }
            }
            docs.append(doc)
        }
        if output.json {
            JSONOutput.emit(
                "verify",
                [
                    "location": archive, "archives": docs,
                    "summary": ["intact": ok, "incomplete": incomplete, "failed": failed, "skipped": skipped],
                ]
            )
        } else {
            let since = notVerifiedSince.map { "; \(skipped) skipped (verified since \($0))" } ?? ""
            print(
                "verified \(ok + incomplete + failed) archive(s) in \(archive): \(ok) intact, \(incomplete) "
                    + "incomplete, \(failed) FAILED\(since)"
            )
        }
        return worst
    }

    /// One verification in the plan's run history.
    private func record(
        _ bp: BackupPlan,
        _ location: String,
        _ incomplete: [String]?,
        error: SealbakError? = nil
    ) throws {
        try StateDir.create(bp.operations.stateDir)
        var r = RunRecord(kind: .verify, plan: bp.operations.planName, start: Date().timeIntervalSince1970)
        r.archive = location
        r.end = Date().timeIntervalSince1970
        r.status = error != nil ? .failed : (incomplete == nil ? .ok : .warnings)
        r.warnings = incomplete
        r.error = error?.message
        r.exitCode = error?.code.exitStatus ?? (incomplete == nil ? 0 : ExitStatus.skippedComponents)
        try RunHistory(stateDir: bp.operations.stateDir).append(r)
    }
}

struct VerifyResult {
    var entries: Int
    var bytes: UInt64
    /// Components that are skipped or failed in the archive (it is intact, but not complete).
    var incomplete: [String]
    /// The `verify --json` document's body (docs/json.md).
    var json: [String: Any]
}

/// Verifies one archive (in `locations`) completely (every frame, every entry's SHA-256, the component records);
/// prints the report unless `quiet`. Throws what is wrong.
func verifyArchive(
    _ archive: String,
    in locations: ArchiveLocations,
    password: PasswordOptions,
    reading: ReadingOptions,
    quiet: Bool,
    output: OutputOptions? = nil,
    wholeChain: Bool = false
) throws -> VerifyResult {
    let reader = try openArchive(archive, in: locations, password: password, reading: reading)
    let sink = DiscardSink()
    sink.captureHeads = ComponentVerifier.headsNeeded(reader.manifest)
    let total =
        reader.input.isSeekable
        ? (try? reader.contentView(reader.loadIndex())).map { $0.entries.reduce(UInt64(0)) { $0 + $1.size } } : nil
    let started = Date()
    let progress = Progress(label: "verifying", total: total, quiet: quiet, json: output)
    defer { progress.finish() }
    let tap = OutcomeTap(ProgressTap(sink, manifest: reader.manifest, progress: progress), manifest: reader.manifest)
    let trailer = try reader.readAll(into: tap)
    progress.finish()
    // Each component's record must agree with the entries (counts, sizes, a dump's magic).
    let results = ComponentVerifier.check(
        reader.manifest,
        sizes: try reader.contentView(trailer).entries.map(\.size),
        heads: sink.heads,
        outcome: try tap.outcome()
    )
    let bad = results.filter { !$0.ok }
    if !bad.isEmpty {
        throw SealbakError(
            .corrupt,
            "\(archive): every byte verified, but component records disagree with the entries: "
                + bad.map { "\($0.kind) \(displayName($0.name)): \($0.detail)" }.joined(separator: "; ")
        )
    }
    // `verify --chain`: every link as a file (Spec §9.2: every frame, trailer and index stream of each base).
    var links: [[String: Any]] = []
    if wholeChain, let chain = reader.chain {
        for (name, base) in chain.bases {
            try base.verifyStored()
            links.append([
                "archive": name, "id": hex(base.header.archiveID), "depth": Int(base.header.base?.depth ?? 0),
            ])
        }
    }
    let duration = Date().timeIntervalSince(started)
    if !quiet && output?.json != true {
        let app = [ComponentKeys.appName, ComponentKeys.appVersion, ComponentKeys.appDescription].compactMap {
            reader.manifest.metadata[$0]
        }
        if !app.isEmpty { print("application: " + app.joined(separator: ", ")) }
        print(
            "OK: \(archive == "-" ? "standard input" : archive): \(sink.entries) entries, \(formatBytes(sink.bytes)) "
                + "verified in \(formatDuration(duration)) (header MAC, every frame tag, SHA-256 of every entry, "
                + "trailer and footer)"
        )
        for r in results { print("  \(r.kind) \(displayName(r.name)): \(r.complete ? "ok, " : "")\(r.detail)") }
        if let chain = reader.chain, !chain.bases.isEmpty {
            print(
                wholeChain
                    ? "  chain: \(chain.bases.count) base archive(s) verified completely: "
                        + "\(chain.bases.map(\.name).joined(separator: ", "))"
                    : "  chain: \(chain.bases.count) base archive(s) checked (trailer hashes), the ranges referred "
                        + "to verified; --chain verifies them completely"
            )
        }
    }
    if !quiet, let r = S3Options.fetchReport(reader.input) { printError("sealbak: \(r)") }
    var json: [String: Any] = [
        "archive": archiveJSON(archive, header: reader.header, manifest: reader.manifest), "ok": true,
        "complete": results.allSatisfy(\.complete), "entries": sink.entries, "bytes": sink.bytes,
        "duration_seconds": (duration * 1000).rounded() / 1000,
        "components": results.map {
            ["kind": $0.kind, "name": $0.name, "ok": $0.ok, "complete": $0.complete, "detail": $0.detail]
        },
    ]
    if let c = reader.chain {
        json["chain"] =
            ["bases": c.bases.map(\.name), "verified_completely": wholeChain, "links": links] as [String: Any]
    }
    return VerifyResult(
        entries: sink.entries,
        bytes: sink.bytes,
        incomplete: results.filter { !$0.complete }.map { "\(displayName($0.name)) \($0.detail)" },
        json: json
    )
}
