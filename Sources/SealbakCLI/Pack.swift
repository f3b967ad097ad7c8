import ArgumentParser
import Foundation
import SealbakArchive
import SealbakComponents
import SealbakCompression
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakMySQL
import SealbakPostgres
import SealbakS3
import SealbakSync

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pack files and directory trees into a new encrypted archive.",
        discussion: """
            OUT may be - to write the archive to standard output. Each PATH is stored under its last path component.

            Examples:
              sealbak pack backup.sbk ./docs ./config                   # asks for a password twice
              sealbak pack backup.sbk --plan sealbak.yaml --password-file /etc/sealbak/pw
              sealbak pack 's3://backups/app/{now}.sbk' --plan sealbak.yaml --recipient sbkpk1...   # write-only server
              pg_dump -Fc app | sealbak pack app.sbk --stdin-name app.dump   # prefer kind: postgres in a plan

            sealbak pack --help-hidden also shows the tuning options (compression level, frame size, threads, S3 part
            size and retries, test-only KDF settings).
            """
    )

    @Argument(
        help: ArgumentHelp(
            "The archive to create: a file, s3://BUCKET/PATH/NAME.sbk, or - for standard output. {now} in the name "
                + "becomes the UTC time (NAME-2026-11-21T030000.123Z.sbk, to the millisecond), which sealbak prune "
                + "reads.",
            valueName: "OUT"
        ),
        transform: { RetentionPolicy.expandName($0) }
    )
    var output: String

    @Argument(help: ArgumentHelp("Files and directories to pack.", valueName: "PATH"))
    var paths: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Take the components and pack options from this backup plan (sealbak.yaml); flags given here are added "
                + "or win.",
            valueName: "FILE"
        )
    )
    var plan: String?

    @Flag(name: .long, help: "Replace OUT if it exists.")
    var force = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Pack incrementally: store only what PREVIOUS (a file or s3:// object of the same chain) and its bases "
                + "do not hold, and refer to the rest (Spec §14). PREVIOUS opens with the same password "
                + "(or --identity).",
            valueName: "PREVIOUS"
        )
    )
    var base: String?

    @Flag(
        name: .long,
        help: "Start a chain: a full archive that later `pack --base` runs can build on (implied by --base)."
    )
    var chained = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Keep what the next `pack --base` needs in FILE (mode 0600; no data key) and use it when it is for "
                + "PREVIOUS: then PREVIOUS need not be opened, so a writer that packs for recipients only can pack "
                + "incrementally (Spec §14.8).",
            valueName: "FILE"
        )
    )
    var chainState: String?

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Read every file, also those the chain state records as unchanged since PREVIOUS (same size, "
                + "modification and change times, inode); without it they are referred to without being read."
        )
    )
    var reread = false

    /// `sealbak run`: when the base cannot be used (no secret opens it, or it fails), start a new chain instead.
    @Flag(name: .long, help: ArgumentHelp("", visibility: .private))
    var baseOrRoot = false

    @Flag(name: [.short, .long], help: "No progress or summary on stderr.")
    var quiet = false

    @OptionGroup(title: "Output") var report: OutputOptions

    @OptionGroup(title: "What to pack") var components: PackComponentOptions
    @OptionGroup(title: "Rules") var rules: PackRuleOptions
    @OptionGroup(title: "Archive format") var format: PackFormatOptions
    @OptionGroup(title: "Keys") var keys: PackKeyOptions

    // The grouped options under their old names (help shows them by group; the code reads them as before).
    var stdinName: String? { components.stdinName }
    var postgres: [String] { components.postgres }
    var postgresPasswordFile: String? { components.postgresPasswordFile }
    var mysql: [String] { components.mysql }
    var mysqlPasswordFile: String? { components.mysqlPasswordFile }
    var mysqlBin: [String] { components.mysqlBin }
    var docs: [String] { components.docs }
    var config: [String] { components.config }
    var vectors: [String] { components.vectors }
    var chroma: [String] { components.chroma }
    var qdrant: [String] { components.qdrant }
    var sqlite: [String] { components.sqlite }
    var pgBin: [String] { components.pgBin }
    var allowEmpty: Bool { components.allowEmpty }
    var redactSecrets: Bool { rules.redactSecrets }
    var exclude: [String] { rules.exclude }
    var include: [String] { rules.include }
    var noDefaultExcludes: Bool { rules.noDefaultExcludes }
    var allowMissing: [String] { rules.allowMissing }
    var acceptChanges: Bool { rules.acceptChanges }
    var skipUnreadable: Bool { rules.skipUnreadable }
    var cipher: CipherChoice? { format.cipher }
    var compression: CompressionChoice? { format.compression }
    var level: Int32? { format.level }
    var frameSize: String? { format.frameSize }
    var noShuffle: Bool { format.noShuffle }
    var noDictionary: Bool { format.noDictionary }
    var threads: Int? { format.threads }
    var kdfMemory: UInt32? { keys.kdfMemory }
    var kdfPasses: UInt32? { keys.kdfPasses }
    var insecureTestKdf: Bool { keys.insecureTestKdf }
    var allowExpensiveKdf: Bool { keys.allowExpensiveKdf }
    var recipient: [String] { keys.recipient }
    var label: String { keys.label }

    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup(title: "Object storage") var s3: S3Options
    @OptionGroup(title: "Object storage uploads") var s3Upload: S3UploadOptions

    func validate() throws {
        if plan == nil && paths.isEmpty && stdinName == nil && postgres.isEmpty && mysql.isEmpty && docs.isEmpty
            && config.isEmpty && vectors.isEmpty && chroma.isEmpty && qdrant.isEmpty && sqlite.isEmpty
        {
            throw ValidationError(
                "nothing to pack: give --plan FILE, PATHs, --docs DIR, --config PATH, --vectors PATH, --postgres "
                    + "URL, --mysql URL, --sqlite PATH or --stdin-name NAME"
            )
        }
        if redactSecrets && config.isEmpty && plan == nil {
            throw ValidationError("--redact-secrets applies to --config files; give --config PATH")
        }
        if docs.isEmpty && plan == nil && (!exclude.isEmpty || !include.isEmpty || noDefaultExcludes) {
            throw ValidationError(
                "--exclude, --include and --no-default-excludes apply to --docs trees; give --docs DIR"
            )
        }
        if label.utf8.count > FormatV1.maxLabelByteCount { throw ValidationError("--label is limited to 64 bytes") }
    }

    /// Checks the pack options once the plan's are merged in (flags win).
    func writeOptions(_ bp: BackupPlan?) throws -> (WriteOptions, Int) {
        let compression =
            try self.compression ?? bp?.compression.map { c throws -> CompressionChoice in
                guard let v = CompressionChoice(rawValue: c) else {
                    throw SealbakError(.usage, "compression \(c) is unknown")
                }
                return v
            } ?? .zstd
        let cipher = self.cipher ?? (bp?.cipher == "aes-256-gcm" ? .aes256gcm : .xchacha20poly1305)
        let level = self.level ?? bp?.level.map(Int32.init)
        if let level {
            switch compression {
            case .zstd:
                if !CompressionAlgorithm.zstdLevels.contains(level) {
                    throw SealbakError(.usage, "zstd level must be 1...19")
                }
            case .zlib:
                if !CompressionAlgorithm.zlibLevels.contains(level) {
                    throw SealbakError(.usage, "zlib level must be 1...9")
                }
            case .none: throw SealbakError(.usage, "a compression level makes no sense with compression none")
            }
        }
        let frameSize = self.frameSize ?? bp?.frameSize ?? "1M"
        guard let fs = parseSize(frameSize), fs > 0, fs & (fs - 1) == 0, fs >= 4096, fs <= 16 << 20 else {
            throw SealbakError(.usage, "the frame size must be a power of two from 4K to 16M, e.g. 64K or 1M")
        }
        let kdfMemory = self.kdfMemory ?? bp?.kdfMemory.map(UInt32.init) ?? 256
        let kdfPasses = self.kdfPasses ?? bp?.kdfPasses.map(UInt32.init) ?? 3
        if !insecureTestKdf && (kdfMemory < 8 || kdfPasses < 1) {
            throw SealbakError(.usage, "--kdf-memory must be at least 8 MiB and --kdf-passes at least 1")
        }
        if kdfMemory > 1 << 20 {
            throw SealbakError(
                .usage,
                "--kdf-memory is limited to 1048576 MiB (1 TiB); readers refuse more than 4096 MiB by default"
            )
        }
        if let problem = KDFOptions.aboveReadCaps(memoryMiB: kdfMemory, passes: kdfPasses), !allowExpensiveKdf,
            !insecureTestKdf
        {
            throw SealbakError(.usage, problem)
        }
        var options = WriteOptions()
        options.suite = cipher == .aes256gcm ? .aes256gcm : .xchacha20poly1305
        switch compression {
        case .zstd: options.compression = .zstd(level: level ?? 3)
        case .zlib: options.compression = .zlib(level: level ?? 6)
        case .none: options.compression = .stored
        }
        // Vector files go through the shuffle codec (format version 2, Spec §3.4) unless told not to.
        options.shuffle = noShuffle || bp?.shuffle == false ? .off : .vectorFiles
        options.frameSizeLog2 = UInt8(fs.trailingZeroBitCount)
        options.kdf =
            insecureTestKdf
            ? KDFParameters(opsLimit: 1, memLimitKiB: 8)
            : KDFParameters(opsLimit: kdfPasses, memLimitKiB: kdfMemory * 1024)
        if let threads { options.threads = max(1, threads) }
        return (options, fs)
    }

    func run() throws {
        try reportingErrors(json: report.json ? "pack" : nil) {
            if report.json && output == "-" {
                throw SealbakError(
                    .usage,
                    "--json prints on standard output, where pack - writes the archive; give the archive a file name"
                )
            }
            if base == nil {
                try password.refuseIdentity(
                    "an identity opens archives (with --base, the previous archive); to pack for its owner, give its "
                        + "public key with --recipient"
                )
            }
            if output == "-" && isatty(1) == 1 {
                throw SealbakError(
                    .usage,
                    "refusing to write a binary archive to the terminal; redirect standard output (> FILE, | ssh …) "
                        + "or give a file name"
                )
            }
            let bp = try plan.map { try BackupPlan.load($0) }
            let started = Date()
            let (summary, outcome, _) = try perform(bp, log: engineLog(quiet: quiet))
            if report.json {
                JSONOutput.emit(
                    "pack",
                    [
                        "archive": ["path": output, "id": hex(summary.archiveID)], "entries": summary.entries,
                        "bytes_in": summary.plaintextBytes, "bytes_out": summary.archiveBytes,
                        "duration_seconds": (Date().timeIntervalSince(started) * 1000).rounded() / 1000,
                        "complete": outcome.incomplete.isEmpty, "outcome": outcomeJSON(outcome),
                    ].merging(
                        summary.chainIndex == nil
                            ? [:]
                            : [
                                "incremental": [
                                    "referenced_bytes": summary.referencedBytes, "literal_bytes": summary.literalBytes,
                                    "unchanged_files": summary.unchangedFiles,
                                ]
                            ],
                        uniquingKeysWith: { a, _ in a }
                    )
                )
            } else if !quiet {
                // A ratio says something only once the data outweighs the header and key slots (a few KiB).
                let ratio =
                    summary.plaintextBytes >= 1 << 16
                    ? String(
                        format: " (%.1f%% of the input)",
                        Double(summary.archiveBytes) * 100 / Double(summary.plaintextBytes)
                    ) : ""
                printError(
                    "sealbak: packed \(summary.entries) entries, \(formatBytes(summary.plaintextBytes)) into "
                        + "\(output == "-" ? "standard output" : output): \(formatBytes(summary.archiveBytes))\(ratio) "
                        + "in \(formatDuration(Date().timeIntervalSince(started)))"
                )
                if summary.chainIndex != nil && base != nil {
                    printError(
                        "sealbak: incremental: \(formatBytes(summary.referencedBytes)) referred to in the chain, "
                            + "\(formatBytes(summary.literalBytes)) new; \(summary.unchangedFiles) file(s) unchanged "
                            + "since the base were not read"
                    )
                }
            }
            let incomplete = outcome.incomplete
            if !incomplete.isEmpty {
                let listed = incomplete.map { "\($0.name) \($0.status.rawValue) (\($0.reason ?? ""))" }
                printError("sealbak: the archive is INCOMPLETE: \(listed.joined(separator: "; "))")
                throw ExitCode(ExitStatus.skippedComponents)
            }
            if let unreadable = outcome.unreadable, !unreadable.isEmpty {
                printError(
                    "sealbak: \(unreadable.count) file(s) or folder(s) could not be read and are NOT in the archive "
                        + "(named above, recorded in it); fix their permissions or run sealbak as a user that may read "
                        + "them"
                )
                throw ExitCode(ExitStatus.completedWithWarnings)
            }
            if !outcome.warnings.isEmpty && !acceptChanges {
                printError(
                    "sealbak: \(outcome.warnings.count) file(s) changed while they were read (named above, recorded "
                        + "in the archive); pack again when the application is quiet, or give --accept-changes"
                )
                throw ExitCode(ExitStatus.completedWithWarnings)
            }
        }
    }

    /// The pack itself (also `sealbak run`'s): writes and commits the archive; the caller reports the outcome.
    /// - Parameter storage: the object storage to write an `s3://` archive to; nil: this command's own (its flags
    ///   and the plan's `s3:` section).
    func perform(
        _ bp: BackupPlan?,
        log: EngineLog,
        storage: S3Connection? = nil
    ) throws -> (WriteSummary, CaptureOutcome, Manifest) {
        var (options, fs) = try writeOptions(bp)
        if options.suite == .aes256gcm {
            _ = try FrameCodec(
                suite: .aes256gcm,
                archiveID: [UInt8](repeating: 0, count: 16),
                frameSize: fs,
                features: []
            )
        }
        if let stdinName, password.passwordFd == 0 {
            throw SealbakError(
                .usage,
                "--stdin-name \(stdinName) reads standard input, so the password cannot come from descriptor 0"
            )
        }
        let sources = try captureSources(bp)
        for name in allowMissing where !sources.contains(where: { $0.name == name }) {
            throw SealbakError(
                .usage,
                "--allow-missing \(name): no component has that name (components: "
                    + "\(sources.map(\.name).joined(separator: ", ")))"
            )
        }
        var jobOptions = PackJob.Options()
        jobOptions.paths = paths
        jobOptions.stdinName = stdinName
        jobOptions.allowEmptyStdin = allowEmpty
        jobOptions.skipUnreadable = skipUnreadable
        jobOptions.trainDictionary = !noDictionary && bp?.dictionary != false
        let current = Locked<Progress?>(nil)
        jobOptions.onEntry = { name in current.withLock { $0 }?.item(name) }
        var metadata = Metadata(["created-by": "sealbak \(sealbakVersion)", "host": ProcessInfo.processInfo.hostName])
        if let bp {
            metadata["plan"] = bp.recorded
            if let v = bp.app["name"] { metadata[ComponentKeys.appName] = v }
            if let v = bp.app["description"] { metadata[ComponentKeys.appDescription] = v }
            if let v = bp.app["version"] { metadata[ComponentKeys.appVersion] = v }
        }
        jobOptions.metadata = metadata
        let job = PackJob(sources: sources, options: jobOptions)
        let recipients = try (recipient + (bp?.recipients ?? [])).map { try Recipients.decode(publicKey: $0) }
        // Refuse an existing target before asking for a password.
        let storage = try storage ?? s3.connection(for: output, upload: s3Upload, plan: bp?.s3 ?? [:], quiet: quiet)
        let out = try storage.locations.output(output, overwrite: force)
        // An incremental pack opens its base first (with the password the new archive gets, or an identity).
        var basePassphrase: Passphrase?
        if let base {
            do {
                if let path = chainState, let state = try ChainState.load(path: path),
                    let context = try ChainWriteContext.continuing(from: state, base: storage.locations.input(base))
                {
                    options.chain = context
                    if reread { options.chain?.files = .empty }
                } else {
                    let reader = try password.withSecret(limits: KDFLimits.default) { secret in
                        if case .password(let p) = secret { basePassphrase = p }
                        return try ArchiveReader(input: try storage.locations.input(base), secret: secret)
                    }
                    options.chain = try ChainWriteContext.continuing(from: reader)
                }
            } catch let e as SealbakError where baseOrRoot && e.code != .interrupted {
                log.warning("\(base) cannot be built on (\(e.message)); this archive starts a new chain")
                basePassphrase = nil
                options.chain = .root(random: options.random)
            } catch {
                out.abandon()
                throw error
            }
        } else if chained {
            options.chain = .root(random: options.random)
        }
        var progress: Progress?
        defer { progress?.finish() }
        let (summary, outcome) = try job.run(
            to: out,
            passwords: {
                if let basePassphrase { return [PasswordSlotSpec(passphrase: basePassphrase, label: label)] }
                guard recipients.isEmpty || password.explicitPassword else { return [] }
                return [
                    PasswordSlotSpec(
                        passphrase: try PasswordReader.read(try password.source(confirm: true)),
                        label: label
                    )
                ]
            },
            recipients: recipients,
            options: options,
            hooks: bp?.hooks ?? BackupPlan.Hooks(),
            progress: { total in
                let p = Progress(label: "packing", total: total, quiet: quiet, json: report.named("pack"))
                progress = p
                current.withLock { $0 = p }
                return { p.add($0) }
            },
            log: log
        )
        progress?.finish()
        progress = nil
        if let path = chainState, let chain = options.chain, let index = summary.chainIndex {
            let state = ChainState(
                archiveID: summary.archiveID,
                trailerSHA256: summary.trailerSHA256,
                depth: chain.base.depth,
                chunkKey: chain.chunkKey,
                parameters: chain.parameters,
                index: index,
                files: summary.chainFiles
            )
            do { try state.save(path: path) } catch {
                log.warning(
                    "the chain state \(path) could not be written "
                        + "(\((error as? SealbakError)?.message ?? "\(error)")); the next incremental pack opens its "
                        + "base instead"
                )
            }
        }
        return (summary, outcome, job.manifest)
    }

    /// The components to capture: the plan's (with the flags that modify them), then those given as flags.
    private func captureSources(_ bp: BackupPlan?) throws -> [any CaptureSource] {
        let allowed = Set(allowMissing)
        var flags = PlanOverrides()
        flags.exclude = exclude
        flags.include = include
        flags.noDefaultExcludes = noDefaultExcludes
        flags.redactSecrets = redactSecrets
        flags.postgresPasswordFile = postgresPasswordFile
        flags.allowMissing = allowed
        flags.pgBin = pgBin
        flags.mysqlPasswordFile = mysqlPasswordFile
        flags.mysqlBin = mysqlBin
        var out = try bp?.captureSources(flags) ?? []
        let finder = ToolFinder(extra: pgBin + (bp?.pgBin ?? []))
        for d in docs {
            var spec = try DocsSpec(argument: d)
            spec.excludes = exclude
            spec.includes = include
            spec.defaultExcludes = !noDefaultExcludes
            out.append(FolderSource.docs(spec, allowMissing: allowed.contains(spec.name)))
        }
        for c in config {
            var spec = try ConfigSpec(argument: c)
            spec.redactSecrets = redactSecrets
            out.append(FolderSource.config(spec, allowMissing: allowed.contains(spec.name)))
        }
        for v in vectors {
            let (name, path) = try Component.argument(v, flag: "--vectors") { ($0 as NSString).deletingPathExtension }
            out.append(FolderSource.vectors(name: name, path: path, allowMissing: allowed.contains(name)))
        }
        for c in chroma {
            let (name, path) = try Component.argument(c, flag: "--chroma")
            out.append(FolderSource.chroma(name: name, path: path, allowMissing: allowed.contains(name)))
        }
        for q in qdrant {
            let (name, path) = try Component.argument(q, flag: "--qdrant") { ($0 as NSString).deletingPathExtension }
            out.append(FolderSource.qdrant(name: name, path: path, allowMissing: allowed.contains(name)))
        }
        for s in sqlite { out.append(try SQLiteSource(argument: s, allowMissing: allowed.contains)) }
        for p in postgres {
            let spec = try PostgresSourceSpec(argument: p, passwordFile: postgresPasswordFile)
            out.append(PostgresSource(spec, finder: finder, allowMissing: allowed.contains(spec.name)))
        }
        for m in mysql {
            let spec = try MySQLSourceSpec(argument: m, passwordFile: mysqlPasswordFile)
            out.append(
                MySQLSource(spec, finder: MySQLToolFinder(extra: mysqlBin), allowMissing: allowed.contains(spec.name))
            )
        }
        return out
    }
}

struct PackComponentOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also pack standard input as entry NAME (a command component, kind: command, also checks the command's "
                + "exit status).",
            valueName: "NAME"
        )
    )
    var stdinName: String?

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Dump this PostgreSQL database (postgresql://USER@HOST:PORT/DB or NAME=URL); repeatable. Credentials "
                + "from the URL, PGPASSWORD, ~/.pgpass or --postgres-password-file; never stored.",
            valueName: "URL"
        )
    )
    var postgres: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Read the PostgreSQL password from the first line of FILE (for URLs without one).",
            valueName: "FILE"
        )
    )
    var postgresPasswordFile: String?

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Dump this MySQL/MariaDB database (mysql://USER@HOST:PORT/DB or NAME=URL) in one transaction; "
                + "repeatable. Credentials as the mysql client finds them; never stored.",
            valueName: "URL"
        )
    )
    var mysql: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Read the MySQL password from the first line of FILE (for URLs without one).",
            valueName: "FILE"
        )
    )
    var mysqlPasswordFile: String?

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Look for mariadb-dump/mysqldump in DIR first; repeatable (also SEALBAK_MYSQL_BIN).",
            valueName: "DIR"
        )
    )
    var mysqlBin: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Pack a documentation tree (or any folder) as component NAME (default: the folder's name), honouring "
                + ".sealbakignore files, --exclude and --include; repeatable.",
            valueName: "[NAME=]DIR"
        )
    )
    var docs: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Pack a config file or folder (.env, YAML, JSON, TOML) as component NAME: each is parsed (broken ones "
                + "are packed and flagged) and secret-looking key names are recorded; repeatable.",
            valueName: "[NAME=]PATH"
        )
    )
    var config: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Pack embedding files (.npy, .fvecs, .ivecs, .bvecs; a file or a folder) as component NAME, recording "
                + "dtype, shape and count; repeatable.",
            valueName: "[NAME=]PATH"
        )
    )
    var vectors: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Pack a ChromaDB persist directory (consistent while the store is open); repeatable.",
            valueName: "[NAME=]DIR"
        )
    )
    var chroma: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Pack Qdrant storage (Qdrant stopped) or *.snapshot files; repeatable.",
            valueName: "[NAME=]PATH"
        )
    )
    var qdrant: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Pack an SQLite database through its online backup (consistent while written), integrity-checked; "
                + "repeatable.",
            valueName: "[NAME=]PATH"
        )
    )
    var sqlite: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp("Look for pg_dump in DIR first; repeatable (also SEALBAK_PG_BIN).", valueName: "DIR")
    )
    var pgBin: [String] = []

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Accept an empty standard input for --stdin-name (refused by default: the command feeding the pipe "
                + "probably failed).",
            visibility: .hidden
        )
    )
    var allowEmpty = false
}

struct PackRuleOptions: ParsableArguments {
    @Flag(name: .long, help: "In --config files, pack secret values as a placeholder instead of the value.")
    var redactSecrets = false

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Leave out what matches this gitignore-style pattern in --docs trees; repeatable.",
            valueName: "GLOB"
        )
    )
    var exclude: [String] = []

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "In --docs trees, pack only files matching one of these patterns; repeatable.",
            valueName: "GLOB"
        )
    )
    var include: [String] = []

    @Flag(
        name: .long,
        help: "Do not leave out .git, node_modules, __pycache__, .venv, venv, *.pyc and the like in --docs trees."
    )
    var noDefaultExcludes = false

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "If component NAME cannot be reached or fails while it is captured, record it as skipped or failed (with "
                + "the reason; its partial data is never restored) and go on; the pack then exits 15. Any kind; "
                + "repeatable.",
            valueName: "NAME"
        )
    )
    var allowMissing: [String] = []

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Exit 0 even if files changed while they were read (they are still named and recorded in the archive; "
                + "without this flag the pack exits 16)."
        )
    )
    var acceptChanges = false

    @Flag(name: .long, help: "Leave out files sealbak may not read (named, recorded, exit 16) instead of failing.")
    var skipUnreadable = false
}

struct PackFormatOptions: ParsableArguments {
    @Option(name: .long, help: "Cipher suite (default xchacha20-poly1305).")
    var cipher: CipherChoice?

    @Option(name: .long, help: "Frame compression (default zstd).")
    var compression: CompressionChoice?

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Do not shuffle vector files (*.npy, *.fvecs, data_level0.bin, …) before zstd: a version-1 archive, for "
                + "sealbak older than format version 2."
        )
    )
    var noShuffle = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Do not train a zstd dictionary on the small files: each small file is then compressed alone (larger "
                + "archives of document trees), and the archive does not need format feature bit 2 (dictionary)."
        )
    )
    var noDictionary = false

    @Option(
        name: .long,
        help: ArgumentHelp("Compression level (zstd 1-19, default 3; zlib 1-9, default 6).", visibility: .hidden)
    )
    var level: Int32?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Frame size, a power of two from 4K to 16M (default 1M).",
            valueName: "SIZE",
            visibility: .hidden
        )
    )
    var frameSize: String?

    @Option(name: .long, help: ArgumentHelp("Worker threads (default: all cores).", visibility: .hidden))
    var threads: Int?
}

struct PackKeyOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Argon2id memory for the password slot (default 256).", valueName: "MIB"))
    var kdfMemory: UInt32?

    @Option(name: .long, help: ArgumentHelp("Argon2id passes for the password slot (default 3).", valueName: "N"))
    var kdfPasses: UInt32?

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "TEST ONLY: the cheapest Argon2id setting (1 pass, 8 KiB). Anyone can brute-force such an archive.",
            visibility: .hidden
        )
    )
    var insecureTestKdf = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Allow --kdf-memory above 4096 MiB or --kdf-passes above 10 (readers then need "
                + "--max-kdf-memory/--max-kdf-passes).",
            visibility: .hidden
        )
    )
    var allowExpensiveKdf = false

    @Option(
        name: .long,
        parsing: .singleValue,
        help: ArgumentHelp(
            "Also let the holder of this public key (sealbak keygen) open the archive; repeatable.",
            valueName: "PUBKEY"
        )
    )
    var recipient: [String] = []

    @Option(name: .long, help: ArgumentHelp("A label for the password slot (shown by inspect).", visibility: .hidden))
    var label: String = "password"
}
