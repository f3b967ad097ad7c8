import ArgumentParser
import Foundation
import SealbakFormat
import SealbakIO
import SealbakS3
import SealbakSync

/// Object-storage settings, shared by every command that takes an archive name (docs/s3.md). Each flag falls
/// back to the standard AWS variables; credentials come only from the environment or a credentials file.
/// The options of writing to object storage (pack, key changes, rekey, run): shown only on those commands.
struct S3UploadOptions: ParsableArguments {
    @Option(
        name: .customLong("s3-part-size"),
        help: ArgumentHelp(
            "Upload part size, at least 5M (default 16M; parts double every 1,000).",
            valueName: "SIZE",
            visibility: .hidden
        )
    )
    var partSize: String?

    @Option(
        name: .customLong("s3-parallel"),
        help: ArgumentHelp(
            "Parts uploaded at once (default 4); memory is about (N + 1) x part size.",
            valueName: "N",
            visibility: .hidden
        )
    )
    var parallel: Int?

    @Flag(
        name: .customLong("s3-no-server-copy"),
        help: ArgumentHelp(
            "Key changes and rekey stream unchanged bytes through sealbak instead of letting the store copy them "
                + "(UploadPartCopy).",
            visibility: .hidden
        )
    )
    var noServerCopy = false

    @Flag(
        name: .customLong("s3-uniform-parts"),
        help: ArgumentHelp(
            "Every upload part but the last of the part size (for stores that require it; automatic for Cloudflare "
                + "R2).",
            visibility: .hidden
        )
    )
    var uniformParts = false

    @Option(
        name: .customLong("s3-object-lock"),
        help: ArgumentHelp(
            "Lock archives with S3 Object Lock for MODE:AGE (compliance:30d); the bucket needs Object Lock.",
            valueName: "MODE:AGE"
        )
    )
    var objectLock: String?

    /// `compliance:30d` or `governance:7d`.
    static func parseObjectLock(_ text: String) -> S3Settings.ObjectLock? {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let mode = S3Settings.ObjectLock.Mode(rawValue: parts[0].uppercased()),
            let period = IncompleteUploads.parseAge(parts[1]), period >= 86400
        else { return nil }
        return S3Settings.ObjectLock(mode: mode, period: period)
    }

    func validate() throws {
        if let objectLock, S3UploadOptions.parseObjectLock(objectLock) == nil {
            throw ValidationError(
                "--s3-object-lock takes MODE:AGE with MODE governance or compliance and AGE at least 1d (e.g. "
                    + "compliance:30d), not \(objectLock)"
            )
        }
        if let partSize {
            guard let n = parseSize(partSize), n >= 5 << 20, n <= 5 << 30 else {
                throw ValidationError("--s3-part-size must be 5M ... 5120M")
            }
        }
        if let parallel, !(1...64).contains(parallel) { throw ValidationError("--s3-parallel must be 1 ... 64") }
    }
}

struct S3Options: ParsableArguments {
    @Option(
        name: .customLong("s3-endpoint"),
        help: ArgumentHelp(
            "S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS S3 in the region).",
            valueName: "URL"
        )
    )
    var endpoint: String?

    @Option(
        name: .customLong("s3-region"),
        help: ArgumentHelp("Region for signing (default: AWS_REGION, else us-east-1).", valueName: "REGION")
    )
    var region: String?

    @Option(
        name: .customLong("s3-addressing"),
        help: ArgumentHelp(
            "path (ENDPOINT/BUCKET/KEY) or virtual (BUCKET.HOST/KEY); default: path for a custom endpoint, virtual "
                + "for AWS.",
            valueName: "STYLE",
            visibility: .hidden
        )
    )
    var addressing: String?

    @Option(
        name: .customLong("s3-credentials-file"),
        help: ArgumentHelp("Read the AWS_* credentials from FILE (KEY=VALUE lines).", valueName: "FILE")
    )
    var credentialsFile: String?

    @Option(
        name: .customLong("s3-max-attempts"),
        help: ArgumentHelp("Attempts per request before giving up (default 8).", valueName: "N", visibility: .hidden)
    )
    var maxAttempts: Int?

    @Option(
        name: .customLong("s3-max-retry-time"),
        help: ArgumentHelp(
            "Stop retrying a request after this many seconds (default 120).",
            valueName: "SECONDS",
            visibility: .hidden
        )
    )
    var maxRetryTime: Double?

    func validate() throws {
        if let addressing, addressing != "path" && addressing != "virtual" {
            throw ValidationError("--s3-addressing must be path or virtual")
        }
        if let maxAttempts, !(1...100).contains(maxAttempts) {
            throw ValidationError("--s3-max-attempts must be 1 ... 100")
        }
    }

    /// Settings from the flags (`upload`: those of a command that writes), the plan file's `s3:` section and the
    /// environment, in that order.
    func settings(upload: S3UploadOptions? = nil, plan: [String: String] = [:]) throws(SealbakError) -> S3Settings {
        var env = ProcessInfo.processInfo.environment
        if let credentialsFile {
            guard let text = try? String(contentsOfFile: credentialsFile, encoding: .utf8) else {
                throw SealbakError(.notFound, "cannot read the S3 credentials file \(credentialsFile)")
            }
            for line in text.split(whereSeparator: \.isNewline) {
                let t = line.trimmingCharacters(in: .whitespaces)
                guard !t.hasPrefix("#"), let eq = t.firstIndex(of: "=") else { continue }
                var key = String(t[..<eq]).trimmingCharacters(in: .whitespaces)
                if key.hasPrefix("export ") { key = String(key.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
                let value = String(t[t.index(after: eq)...]).trimmingCharacters(in: .whitespaces).trimmingCharacters(
                    in: CharacterSet(charactersIn: "\"'")
                )
                if ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].contains(key) {
                    env[key] = value
                }
            }
        }
        var s = S3Settings.fromEnvironment(env)
        if let e = endpoint ?? plan["endpoint"] { s.endpoint = e }
        if let r = region ?? plan["region"] { s.region = r }
        if let a = addressing ?? plan["addressing"] { s.pathStyle = a == "path" }
        if let text = upload?.partSize ?? plan["part-size"] {
            guard let p = parseSize(text), p >= 5 << 20, p <= 5 << 30 else {
                throw SealbakError(.usage, "the S3 part size must be 5M ... 5120M, not \(text)")
            }
            s.partSize = p
        }
        if let p = upload?.parallel ?? plan["parallel"].flatMap({ Int($0) }) { s.parallelParts = p }
        if let text = upload?.objectLock ?? plan["object-lock"] {
            guard let lock = S3UploadOptions.parseObjectLock(text) else {
                throw SealbakError(
                    .usage,
                    "the S3 object lock must be MODE:AGE with MODE governance or compliance and AGE at least 1d "
                        + "(e.g. compliance:30d), not \(text)"
                )
            }
            s.objectLock = lock
        }
        if upload?.noServerCopy == true || plan["server-copy"] == "false" { s.serverCopy = false }
        if upload?.uniformParts == true || plan["uniform-parts"] == "true" { s.uniformParts = true }
        if let m = maxAttempts { s.maxAttempts = m }
        if let m = maxRetryTime { s.maxRetrySeconds = m }
        if let m = ProcessInfo.processInfo.environment["SEALBAK_S3_BACKOFF_BASE"].flatMap(Double.init) {
            s.backoffBase = m
        }
        return s
    }

    /// The object storage of a command, with these flags (and `upload`'s, on commands that write); connected on
    /// first use, so commands on local archives never need S3 settings.
    func connection(upload: S3UploadOptions? = nil) -> S3Connection {
        S3Connection(options: self, upload: upload, plan: [:], quiet: false)
    }

    /// The object storage of a command whose archive is `destination` (pack's output, a plan's destination). For an
    /// `s3://` URL the plan's `s3:` section applies too (flags still win), `quiet` silences the upload reports, and
    /// the storage connects now, so that bad settings fail before any work is done.
    func connection(
        for destination: String?,
        upload: S3UploadOptions? = nil,
        plan: [String: String],
        quiet: Bool
    ) throws(SealbakError) -> S3Connection {
        guard let destination, ArchiveLocations.isRemote(destination) else { return connection(upload: upload) }
        let connection = S3Connection(options: self, upload: upload, plan: plan, quiet: quiet)
        _ = try connection.storage()
        return connection
    }
}

/// The object storage of one command: its S3 flags (and a plan's `s3:` section), connected on first use and then
/// shared by everything the command does. Each command builds its own and passes it on (`locations` to what
/// opens archives by name, `client(for:)` to listings); nothing is installed globally.
final class S3Connection: RemoteStorageHandler {
    private let options: S3Options
    private let upload: S3UploadOptions?
    private let plan: [String: String]
    private let quiet: Bool
    private let connected = Locked<S3Storage?>(nil)

    init(options: S3Options, upload: S3UploadOptions?, plan: [String: String], quiet: Bool) {
        self.options = options
        self.upload = upload
        self.plan = plan
        self.quiet = quiet
    }

    /// Local files, and `s3://` names through this connection.
    var locations: ArchiveLocations { ArchiveLocations(remote: self) }

    /// The storage, created from the settings on first use.
    func storage() throws(SealbakError) -> S3Storage {
        try connected.withLock { (storage: inout S3Storage?) throws(SealbakError) -> S3Storage in
            if let storage { return storage }
            var s = try options.settings(upload: upload, plan: plan)
            // Retries are warnings (shown even with --quiet): the store did not answer as it should.
            s.onRetry = { line in printError("sealbak: warning: " + line) }
            let client = try S3Client(settings: s)
            let quiet = self.quiet
            let created = S3Storage(client: client) { line in if !quiet { printError("sealbak: \(line)") } }
            storage = created
            return created
        }
    }

    /// The client for `location` when it is an `s3://` URL (`ls`, `prune`, `history`), nil for a folder.
    func client(for location: String) throws(SealbakError) -> S3Client? {
        ArchiveLocations.isRemote(location) ? try storage().client : nil
    }

    func openInput(_ url: String) throws(SealbakError) -> any RemoteSource { try storage().openInput(url) }

    func openOutput(_ url: String, overwrite: Bool, staged: Bool) throws(SealbakError) -> any ArchiveOutput {
        try storage().openOutput(url, overwrite: overwrite, staged: staged)
    }

    func replaceHeader(_ url: String, expected: [UInt8], header: [UInt8]) throws(SealbakError) {
        try storage().replaceHeader(url, expected: expected, header: header)
    }
}

extension S3Options {
    /// "fetched 1.2 MiB of 3.0 GiB (0.04%)" for a remote input, nil for a local one.
    static func fetchReport(_ input: InputFile) -> String? {
        guard let r = input.remote else { return nil }
        let pct = r.size > 0 ? Double(r.bytesFetched) * 100 / Double(r.size) : 0
        return
            "fetched \(formatBytes(r.bytesFetched)) of the archive's \(formatBytes(r.size)) "
            + "(\(String(format: pct < 1 ? "%.3f" : "%.1f", pct))%) from \(r.name)"
    }
}

struct Ls: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract:
            "List the archives in a folder or under s3://BUCKET/PREFIX with their creation time and size (from the "
            + "cleartext headers; no password).",
        discussion: """
            Also shows files that are not sealbak archives (never touched) and, under s3://, multipart uploads left by
            killed packs (sealbak prune --incomplete-uploads AGE aborts them).

            Examples:
              sealbak ls /srv/backups/app
              sealbak ls s3://backups/app/ --json | jq -r '.archives[0].location'
            """
    )

    @Argument(
        help: ArgumentHelp("A folder or s3://BUCKET/PREFIX (a prefix ending in / is a folder).", valueName: "WHERE")
    )
    var location: String

    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Object storage") var s3: S3Options

    func run() throws {
        try reportingErrors(json: output.json ? "ls" : nil) {
            let storage = s3.connection()
            let items = try Catalog.list(location, client: try storage.client(for: location))
                .sorted { ($0.time?.unix ?? 0, $0.name) > ($1.time?.unix ?? 0, $1.name) }
            if output.json {
                let archives: [[String: Any]] = items.filter { $0.header != nil }.map { i in
                    let h = i.header!
                    var row: [String: Any] = [
                        "name": i.name, "location": i.location, "size": i.size,
                        "created": JSONOutput.time(Int64(h.createdUnix)),
                        "id": hex(h.archiveID), "cipher": h.cipherSuite.name, "key_slots": h.slots.count,
                    ]
                    if let t = RetentionPolicy.timestamp(inName: i.name) { row["name_time"] = JSONOutput.time(t) }
                    return row
                }
                let others: [[String: Any]] = items.filter { $0.header == nil }.map {
                    ["name": $0.name, "location": $0.location, "size": $0.size, "problem": $0.problem ?? "unreadable"]
                }
                let uploads: [[String: Any]] =
                    ((try storage.client(for: location)).flatMap {
                        try? IncompleteUploads.list(location, client: $0).get()
                    } ?? []).map { u in
                        let bucket = (try? S3Location(url: location, allowEmptyKey: true))?.bucket ?? ""
                        var row: [String: Any] = [
                            "name": String(u.key.split(separator: "/").last ?? ""),
                            "location": "s3://\(bucket)/\(u.key)", "upload_id": u.uploadID,
                        ]
                        if let t = u.initiated { row["started"] = JSONOutput.time(t) }
                        if let size = u.size {
                            row["size"] = size
                            row["parts"] = u.parts ?? 0
                        }
                        return row
                    }
                JSONOutput.emit(
                    "ls",
                    ["location": location, "archives": archives, "not_archives": others, "incomplete_uploads": uploads]
                )
                return
            }
            let archives = items.filter { $0.header != nil }
            print("\(archives.count) archive(s) in \(location), \(formatBytes(archives.reduce(0) { $0 + $1.size })):")
            for i in archives {
                let h = i.header!
                print(
                    "  \(formatTime(Int64(h.createdUnix)))  "
                        + "\(formatBytes(i.size).padding(toLength: 10, withPad: " ", startingAt: 0))  \(h.slots.count) "
                        + "key slot(s)  \(i.name)"
                )
            }
            for i in items where i.header == nil {
                print("  not a sealbak archive, left alone: \(i.name) (\(i.problem ?? "unreadable"))")
            }
            if let client = try storage.client(for: location) {
                switch IncompleteUploads.list(location, client: client) {
                case .success(let uploads):
                    for u in uploads {
                        print(
                            "  incomplete upload (billed until aborted): \(IncompleteUploads.describe(u)); sealbak "
                                + "prune --incomplete-uploads AGE aborts it"
                        )
                    }
                case .failure(let e):
                    print("  (incomplete uploads not shown: \(e.message))")
                }
            }
        }
    }
}

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete the archives a retention policy does not keep, in a folder or under s3://BUCKET/PREFIX.",
        discussion: """
            Each archive's time is the timestamp in its name (e.g. app-2026-11-21T030000.123Z.sbk, as pack \
            NAME-{now}.sbk writes), else the creation time in its header. Kept: everything within --keep-within of the \
            newest archive (restic's rule), the N newest (--keep-last), and the newest archive of each of the last N \
            days, ISO weeks, months and years that have one. The newest archive is always kept, and so is an archive \
            under S3 Object Lock until its date; files that are not sealbak archives are never deleted. Prints only \
            what it deletes (nothing when nothing is deleted); --verbose or --dry-run print every decision with its \
            reasons.

            Examples:
              sealbak prune /srv/backups/app --keep-within 7d --keep-daily 14 --keep-monthly 12
              sealbak prune s3://backups/app/ --keep-last 3 --dry-run
              sealbak prune s3://backups/app/ --incomplete-uploads 24h     # uploads left by killed packs
            """
    )

    @Argument(help: ArgumentHelp("A folder or s3://BUCKET/PREFIX.", valueName: "WHERE"))
    var location: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Keep every archive younger than this, counted back from the newest archive (restic's --keep-within): "
                + "7d, 36h, 2w, 6mo, 1y6mo, 90min.",
            valueName: "DURATION"
        )
    )
    var keepWithin: String?
    @Option(name: .long, help: "Keep the N newest archives.") var keepLast = 0
    @Option(name: .long, help: "Keep the newest archive of each of the last N days that have one.") var keepDaily = 0
    @Option(name: .long, help: "Keep the newest archive of each of the last N ISO weeks that have one.")
    var keepWeekly = 0
    @Option(name: .long, help: "Keep the newest archive of each of the last N months that have one.") var keepMonthly =
        0
    @Option(name: .long, help: "Keep the newest archive of each of the last N years that have one.") var keepYearly = 0

    @Flag(name: .long, help: "Show what would be deleted; delete nothing.")
    var dryRun = false

    @Flag(name: [.short, .long], help: "Also print the archives kept, with the rules that keep them.")
    var verbose = false

    @OptionGroup(title: "Output") var output: OutputOptions

    @Option(
        name: .customLong("incomplete-uploads"),
        help: ArgumentHelp(
            "Abort the multipart uploads under s3://BUCKET/PREFIX begun more than AGE ago and never completed (a "
                + "killed pack), e.g. 90min, 24h, 7d; alone, only that is done.",
            valueName: "AGE"
        )
    )
    var incompleteUploads: String?

    @OptionGroup(title: "Object storage") var s3: S3Options

    private var keeps: Bool { keepLast + keepDaily + keepWeekly + keepMonthly + keepYearly > 0 || keepWithin != nil }

    func validate() throws {
        if [keepLast, keepDaily, keepWeekly, keepMonthly, keepYearly].contains(where: { $0 < 0 }) {
            throw ValidationError("--keep-* counts cannot be negative")
        }
        if let keepWithin, RetentionDuration(keepWithin) == nil {
            throw ValidationError("--keep-within must be \(RetentionDuration.help)")
        }
        if let incompleteUploads {
            guard IncompleteUploads.parseAge(incompleteUploads) != nil else {
                throw ValidationError(
                    "--incomplete-uploads takes an age such as 90min, 24h or 7d, not \(incompleteUploads)"
                )
            }
            guard ArchiveLocations.isRemote(location) else {
                throw ValidationError("--incomplete-uploads is for s3://BUCKET/PREFIX (a folder has no uploads)")
            }
        } else if !keeps {
            throw ValidationError(
                "give at least one of --keep-within, --keep-last, --keep-daily, --keep-weekly, --keep-monthly, "
                    + "--keep-yearly (prune never deletes everything), or --incomplete-uploads AGE"
            )
        }
    }

    func run() throws {
        try reportingErrors(json: output.json ? "prune" : nil) {
            // With --json, every decision goes into one document instead of lines.
            let talk = (verbose || dryRun) && !output.json
            let storage = s3.connection()
            func say(_ line: String) { if !output.json { print(line) } }
            var uploadDocs: [[String: Any]] = []
            var archiveDocs: [[String: Any]] = []
            var aborted = 0
            var deleted = 0
            var freed: UInt64 = 0
            func emit(_ archives: Int?) {
                guard output.json else { return }
                var doc: [String: Any] = [
                    "location": location, "dry_run": dryRun, "incomplete_uploads": uploadDocs, "aborted": aborted,
                ]
                if let archives {
                    doc["archives"] = archiveDocs
                    doc["deleted"] = deleted
                    doc["freed_bytes"] = freed
                    doc["kept"] = archives - deleted
                }
                JSONOutput.emit("prune", doc)
            }
            if let age = incompleteUploads.flatMap(IncompleteUploads.parseAge) {
                let client = try storage.client(for: location)!
                let uploads = try IncompleteUploads.list(location, client: client).get()
                for u in uploads {
                    let old = u.initiated.map { Date().timeIntervalSince($0) >= age } ?? false
                    var d: [String: Any] = [
                        "name": String(u.key.split(separator: "/").last ?? ""), "upload_id": u.uploadID,
                        "action": old ? "abort" : "keep",
                    ]
                    if let t = u.initiated { d["started"] = JSONOutput.time(t) }
                    uploadDocs.append(d)
                    if !old {
                        if talk {
                            say(
                                "keep    incomplete upload \(IncompleteUploads.describe(u)): younger than "
                                    + "\(incompleteUploads!)"
                            )
                        }
                        continue
                    }
                    say("\(dryRun ? "would abort" : "abort")  incomplete upload \(IncompleteUploads.describe(u))")
                    if !dryRun {
                        try client.abortMultipartUpload(
                            try S3Location(
                                url: "s3://\(try S3Location(url: location, allowEmptyKey: true).bucket)/\(u.key)"
                            ),
                            uploadID: u.uploadID
                        )
                    }
                    aborted += 1
                }
                if talk || aborted > 0 {
                    say("\(dryRun ? "would abort" : "aborted") \(aborted) of \(uploads.count) incomplete upload(s)")
                }
                if !keeps { return emit(nil) }
            }
            let client = try storage.client(for: location)
            let items = try Catalog.list(location, client: client)
            let archives = items.filter { $0.header != nil }
            var policy = RetentionPolicy(
                last: keepLast,
                daily: keepDaily,
                weekly: keepWeekly,
                monthly: keepMonthly,
                yearly: keepYearly
            )
            policy.within = keepWithin.flatMap(RetentionDuration.init)
            let byName = Dictionary(archives.map { ($0.location, $0) }, uniquingKeysWith: { a, _ in a })
            let decisions = policy.apply(
                archives.map { RetentionPolicy.Candidate(name: $0.location, time: $0.time!.unix) },
                bases: Catalog.bases(archives)
            )
            for d in decisions {
                let item = byName[d.candidate.name]!
                let when = "\(formatTime(d.candidate.time)) (from the \(item.time!.source))"
                var doc: [String: Any] = [
                    "name": item.name, "location": item.location, "time": JSONOutput.time(d.candidate.time),
                    "time_from": item.time!.source, "size": item.size, "reasons": d.reasons,
                ]
                defer { archiveDocs.append(doc) }
                if d.keep {
                    doc["action"] = "keep"
                    if talk {
                        say(
                            "keep    \(item.name)  \(when)  \(formatBytes(item.size)): "
                                + "\(d.reasons.joined(separator: ", "))"
                        )
                    }
                    continue
                }
                // An archive under S3 Object Lock cannot be deleted before its date: keep it and say until when.
                let state = try Catalog.state(item, client: client)
                if let state, state.isLocked() {
                    doc["action"] = "locked"
                    if let until = state.lockedUntil { doc["locked_until"] = JSONOutput.time(until) }
                    let until =
                        state.lockedUntil.map {
                            "\(state.lockMode ?? "") object lock until \(formatTime(Int64($0.timeIntervalSince1970)))"
                        } ?? ""
                    let reasons = [until, state.legalHold ? "legal hold" : ""].filter { !$0.isEmpty }
                    say(
                        "locked  \(item.name)  \(when)  \(formatBytes(item.size)): "
                            + "\(reasons.joined(separator: ", ")); kept"
                    )
                    continue
                }
                doc["action"] = "delete"
                say("\(dryRun ? "would delete" : "delete")  \(item.name)  \(when)  \(formatBytes(item.size))")
                if !dryRun { try Catalog.delete(item, client: client, state: state) }
                deleted += 1
                freed += item.size
            }
            if talk {
                for i in items where i.header == nil {
                    say("skip    \(i.name): not a sealbak archive (\(i.problem ?? "unreadable")), left alone")
                }
            }
            if talk || deleted > 0 {
                say(
                    "\(dryRun ? "would delete" : "deleted") \(deleted) of \(archives.count) archive(s), "
                        + "\(formatBytes(freed)); kept \(archives.count - deleted)"
                )
            }
            emit(archives.count)
        }
    }
}

/// Multipart uploads left under a prefix by packs that were killed (kill -9, OOM, a reboot): `ls` shows them,
/// `prune --incomplete-uploads AGE` aborts them.
enum IncompleteUploads {
    /// The uploads at the level `ls` lists (a prefix ending in `/` is a folder; deeper "folders" are left out).
    static func list(_ location: String, client: S3Client) -> Result<[S3Client.IncompleteUpload], SealbakError> {
        Result { () throws(SealbakError) in
            let loc = try S3Location(url: location, allowEmptyKey: true)
            return try client.incompleteUploads(bucket: loc.bucket, prefix: loc.key).filter {
                !$0.key.dropFirst(loc.key.count).contains("/")
            }
            .sorted { ($0.initiated ?? .distantPast) < ($1.initiated ?? .distantPast) }
        }
    }

    static func describe(_ u: S3Client.IncompleteUpload) -> String {
        let name = u.key.split(separator: "/").last.map(String.init) ?? u.key
        var text = name
        if let t = u.initiated {
            text += ", started \(formatTime(Int64(t.timeIntervalSince1970))) (\(age(Date().timeIntervalSince(t))) ago)"
        }
        if let size = u.size { text += ", \(formatBytes(size)) in \(u.parts ?? 0) part(s)" }
        return text
    }

    static func age(_ seconds: TimeInterval) -> String {
        let s = max(0, Int(seconds))
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h" }
        return "\(s / 86400) days"
    }

    /// An age in the duration grammar of --keep-within (`90min`, `24h`, `7d`, `2w`; not months or years), in seconds.
    static func parseAge(_ text: String) -> TimeInterval? {
        guard let d = RetentionDuration(text), d.years == 0, d.months == 0 else { return nil }
        return TimeInterval(d.seconds)
    }
}
