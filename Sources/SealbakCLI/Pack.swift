import ArgumentParser
import Foundation
import SealbakArchive
import SealbakComponents
import SealbakCompression
import SealbakFormat
import SealbakPostgres
import SealbakS3

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pack files and directory trees into a new encrypted archive.",
        discussion: "OUT may be - to write the archive to standard output. Each PATH is stored under its last path component."
    )

    @Argument(help: ArgumentHelp("The archive to create: a file, s3://BUCKET/PATH/NAME.sbk, or - for standard output. {now} in the name becomes the UTC time (NAME-2026-11-21T030000Z.sbk), which sealbak prune reads.", valueName: "OUT"), transform: { RetentionPolicy.expandName($0) })
    var output: String

    @Argument(help: ArgumentHelp("Files and directories to pack.", valueName: "PATH"))
    var paths: [String] = []

    @Option(name: .long, help: ArgumentHelp("Also pack standard input as an entry called NAME.", valueName: "NAME"))
    var stdinName: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Dump this PostgreSQL database into the archive (postgresql://USER@HOST:PORT/DB, or NAME=URL to name the component); repeatable. Credentials come from the URL, PGPASSWORD, ~/.pgpass or --postgres-password-file and are never stored.", valueName: "URL"))
    var postgres: [String] = []

    @Option(name: .long, help: ArgumentHelp("Read the PostgreSQL password from the first line of FILE (for URLs without one).", valueName: "FILE"))
    var postgresPasswordFile: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Pack a documentation tree (or any folder) as component NAME (default: the folder's name), honouring .sealbakignore files, --exclude and --include; repeatable.", valueName: "[NAME=]DIR"))
    var docs: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Pack a config file or folder (.env, YAML, JSON, TOML) as component NAME: each is parsed (broken ones are packed and flagged) and secret-looking key names are recorded; repeatable.", valueName: "[NAME=]PATH"))
    var config: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Pack embedding files (.npy, .fvecs, .ivecs, .bvecs; a file or a folder) as component NAME, recording dtype, shape and count; repeatable.", valueName: "[NAME=]PATH"))
    var vectors: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Pack a ChromaDB persist directory as component NAME: chroma.sqlite3 through SQLite's online backup (consistent even while the store is open), the HNSW segment folders, and the collections with their counts; repeatable.", valueName: "[NAME=]DIR"))
    var chroma: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Pack Qdrant data as component NAME: its storage folder (Qdrant stopped) or *.snapshot files taken through its API; collection names and sizes are recorded; repeatable.", valueName: "[NAME=]PATH"))
    var qdrant: [String] = []

    @Flag(name: .long, help: "In --config files, pack secret values as a placeholder instead of the value.")
    var redactSecrets = false

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Leave out what matches this gitignore-style pattern in --docs trees; repeatable.", valueName: "GLOB"))
    var exclude: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("In --docs trees, pack only files matching one of these patterns; repeatable.", valueName: "GLOB"))
    var include: [String] = []

    @Flag(name: .long, help: "Do not leave out .git, node_modules, __pycache__, .venv, venv, *.pyc and the like in --docs trees.")
    var noDefaultExcludes = false

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("If component NAME cannot be reached, record it as skipped (with the reason) and go on; repeatable.", valueName: "NAME"))
    var allowMissing: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Look for pg_dump in DIR first; repeatable (also SEALBAK_PG_BIN).", valueName: "DIR"))
    var pgBin: [String] = []

    @Option(name: .long, help: ArgumentHelp("Take the components and pack options from this backup plan (sealbak.yaml); flags given here are added or win.", valueName: "FILE"))
    var plan: String?

    @Option(name: .long, help: "Cipher suite (default xchacha20-poly1305).")
    var cipher: CipherChoice?

    @Option(name: .long, help: "Frame compression (default zstd).")
    var compression: CompressionChoice?

    @Option(name: .long, help: "Compression level (zstd 1-19, default 3; zlib 1-9, default 6).")
    var level: Int32?

    @Option(name: .long, help: ArgumentHelp("Frame size, a power of two from 4K to 16M (default 1M).", valueName: "SIZE"))
    var frameSize: String?

    @Option(name: .long, help: ArgumentHelp("Argon2id memory for the password slot (default 256).", valueName: "MIB"))
    var kdfMemory: UInt32?

    @Option(name: .long, help: ArgumentHelp("Argon2id passes for the password slot (default 3).", valueName: "N"))
    var kdfPasses: UInt32?

    @Flag(name: .long, help: "TEST ONLY: the cheapest Argon2id setting (1 pass, 8 KiB). Anyone can brute-force such an archive.")
    var insecureTestKdf = false

    @Flag(name: .long, help: "Allow --kdf-memory above 4096 MiB or --kdf-passes above 10 (readers then need --max-kdf-memory/--max-kdf-passes).")
    var allowExpensiveKdf = false

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Also let the holder of this public key (sealbak keygen) open the archive; repeatable. With recipients, no password is asked unless one is given explicitly.", valueName: "PUBKEY"))
    var recipient: [String] = []

    @Option(name: .long, help: "A label for the password slot (shown by inspect).")
    var label: String = "password"

    @Flag(name: .long, help: "Replace OUT if it exists.")
    var force = false

    @Flag(name: [.short, .long], help: "No progress or summary on stderr.")
    var quiet = false

    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int?

    @OptionGroup var password: PasswordOptions
    @OptionGroup var s3: S3Options

    func validate() throws {
        if plan == nil && paths.isEmpty && stdinName == nil && postgres.isEmpty && docs.isEmpty && config.isEmpty && vectors.isEmpty && chroma.isEmpty && qdrant.isEmpty {
            throw ValidationError("nothing to pack: give --plan FILE, PATHs, --docs DIR, --config PATH, --vectors PATH, --postgres URL or --stdin-name NAME")
        }
        if redactSecrets && config.isEmpty && plan == nil { throw ValidationError("--redact-secrets applies to --config files; give --config PATH") }
        if docs.isEmpty && plan == nil && (!exclude.isEmpty || !include.isEmpty || noDefaultExcludes) { throw ValidationError("--exclude, --include and --no-default-excludes apply to --docs trees; give --docs DIR") }
        if label.utf8.count > FormatV1.maxLabelByteCount { throw ValidationError("--label is limited to 64 bytes") }
    }

    /// Checks the pack options once the plan's are merged in (flags win).
    func writeOptions(_ bp: BackupPlan?) throws -> (WriteOptions, Int) {
        let compression = try self.compression ?? bp?.compression.map { c throws -> CompressionChoice in
            guard let v = CompressionChoice(rawValue: c) else { throw SealbakError(.usage, "compression \(c) is unknown") }
            return v
        } ?? .zstd
        let cipher = self.cipher ?? (bp?.cipher == "aes-256-gcm" ? .aes256gcm : .xchacha20poly1305)
        let level = self.level ?? bp?.level.map(Int32.init)
        if let level {
            switch compression {
            case .zstd: if !CompressionAlgorithm.zstdLevels.contains(level) { throw SealbakError(.usage, "zstd level must be 1...19") }
            case .zlib: if !CompressionAlgorithm.zlibLevels.contains(level) { throw SealbakError(.usage, "zlib level must be 1...9") }
            case .none: throw SealbakError(.usage, "a compression level makes no sense with compression none")
            }
        }
        let frameSize = self.frameSize ?? bp?.frameSize ?? "1M"
        guard let fs = parseSize(frameSize), fs > 0, fs & (fs - 1) == 0, fs >= 4096, fs <= 16 << 20 else {
            throw SealbakError(.usage, "the frame size must be a power of two from 4K to 16M, e.g. 64K or 1M")
        }
        let kdfMemory = self.kdfMemory ?? bp?.kdfMemory.map(UInt32.init) ?? 256
        let kdfPasses = self.kdfPasses ?? bp?.kdfPasses.map(UInt32.init) ?? 3
        if !insecureTestKdf && (kdfMemory < 8 || kdfPasses < 1) { throw SealbakError(.usage, "--kdf-memory must be at least 8 MiB and --kdf-passes at least 1") }
        if kdfMemory > 1 << 20 { throw SealbakError(.usage, "--kdf-memory is limited to 1048576 MiB (1 TiB); readers refuse more than 4096 MiB by default") }
        if let problem = KDFOptions.aboveReadCaps(memoryMiB: kdfMemory, passes: kdfPasses), !allowExpensiveKdf, !insecureTestKdf {
            throw SealbakError(.usage, problem)
        }
        var options = WriteOptions()
        options.suite = cipher == .aes256gcm ? .aes256gcm : .xchacha20poly1305
        switch compression {
        case .zstd: options.compression = .zstd(level: level ?? 3)
        case .zlib: options.compression = .zlib(level: level ?? 6)
        case .none: options.compression = .stored
        }
        options.frameSizeLog2 = UInt8(fs.trailingZeroBitCount)
        options.kdf = insecureTestKdf ? KDFParameters(opsLimit: 1, memLimitKiB: 8) : KDFParameters(opsLimit: kdfPasses, memLimitKiB: kdfMemory * 1024)
        if let threads { options.threads = max(1, threads) }
        return (options, fs)
    }

    func run() throws {
        try reportingErrors {
            let bp = try plan.map { try BackupPlan.load($0) }
            let (options, fs) = try writeOptions(bp)
            if options.suite == .aes256gcm {
                _ = try FrameCodec(suite: .aes256gcm, archiveID: [UInt8](repeating: 0, count: 16), frameSize: fs)
            }
            var docsSpecs: [DocsSpec] = [], configSpecs: [ConfigSpec] = [], vectorArgs: [String] = [], chromaArgs: [String] = [], qdrantArgs: [String] = []
            var pgSpecs: [PostgresSourceSpec] = [], allowed = Set(allowMissing)
            for c in bp?.components ?? [] {
                switch c.kind {
                case .docs:
                    var d = DocsSpec(name: c.name, path: c.path!)
                    d.excludes = c.exclude + exclude
                    d.includes = c.include + include
                    d.defaultExcludes = c.defaultExcludes && !noDefaultExcludes
                    docsSpecs.append(d)
                case .config:
                    var cs = ConfigSpec(name: c.name, path: c.path!)
                    cs.redactSecrets = c.redactSecrets || redactSecrets
                    configSpecs.append(cs)
                case .vectors:
                    vectorArgs.append(c.name + "=" + c.path!)
                case .chroma:
                    chromaArgs.append(c.name + "=" + c.path!)
                case .qdrant:
                    qdrantArgs.append(c.name + "=" + c.path!)
                case .postgres:
                    pgSpecs.append(try PostgresSourceSpec(name: c.name, url: c.url!, passwordFile: c.passwordFile ?? postgresPasswordFile))
                    if c.allowMissing { allowed.insert(c.name) }
                }
            }
            for d in docs {
                var spec = try DocsSpec(argument: d)
                spec.excludes = exclude
                spec.includes = include
                spec.defaultExcludes = !noDefaultExcludes
                docsSpecs.append(spec)
            }
            for c in config {
                var spec = try ConfigSpec(argument: c)
                spec.redactSecrets = redactSecrets
                configSpecs.append(spec)
            }
            vectorArgs += vectors
            chromaArgs += chroma
            qdrantArgs += qdrant

            var plan = PackPlan()
            for spec in docsSpecs {
                let stats = try DocsComponent.add(spec, to: &plan)
                if !quiet { printError("sealbak: \(spec.name): \(stats.files) files, \(formatBytes(stats.bytes)) from \(spec.path); \(stats.excluded) left out by the ignore rules") }
            }
            for spec in configSpecs {
                let s = try ConfigComponent.add(spec, to: &plan)
                if !quiet {
                    var line = "sealbak: \(spec.name): \(s.configs) config file(s) of \(s.files), \(s.secretKeys) secret-looking key(s)"
                    if spec.redactSecrets { line += ", \(s.redacted) value(s) redacted" }
                    printError(line)
                    for b in s.broken { printError("sealbak: warning: \(spec.name)/\(b) (packed anyway, flagged as broken)") }
                }
            }
            for v in vectorArgs {
                let (name, s) = try VectorsComponent.add(argument: v, to: &plan)
                if !quiet {
                    printError("sealbak: \(name): \(s.vectorFiles) vector file(s), \(s.vectors) vectors, \(formatBytes(s.bytes))")
                    for b in s.broken { printError("sealbak: warning: \(b) (packed anyway, flagged as broken)") }
                }
            }
            var chromaSnapshots: [ChromaComponent.Snapshot] = []
            defer { for s in chromaSnapshots { s.remove() } }
            for c in chromaArgs {
                let (name, collections, snapshot) = try ChromaComponent.add(argument: c, to: &plan)
                chromaSnapshots.append(snapshot)
                if !quiet {
                    let list = collections.map { "\($0.name) (\($0.embeddings) embeddings, dimension \($0.dimension.map(String.init) ?? "?"))" }.joined(separator: ", ")
                    printError("sealbak: \(name): Chroma store, online backup of chroma.sqlite3; \(collections.count) collection(s): \(list)")
                }
            }
            for q in qdrantArgs {
                let (name, collections) = try QdrantComponent.add(argument: q, to: &plan)
                if !quiet { printError("sealbak: \(name): Qdrant, \(collections.count) collection(s): \(collections.map { "\($0.name) (\(formatBytes($0.bytes)))" }.joined(separator: ", "))") }
            }
            for p in paths { try plan.add(path: p) }
            if let stdinName {
                if password.passwordFd == 0 { throw SealbakError(.usage, "--stdin-name reads standard input, so the password cannot come from descriptor 0") }
                try plan.addStandardInput(name: stdinName)
            }
            try plan.checkUnique()

            let recipients = try (recipient + (bp?.recipients ?? [])).map { try Recipients.decode(publicKey: $0) }
            // Refuse an existing target before asking for a password.
            try S3Options.prepare(output, plan: bp?.s3 ?? [:], quiet: quiet)
            let out = try RemoteStorage.output(output, overwrite: force)
            var passwords: [PasswordSlotSpec] = []
            if recipients.isEmpty || password.explicitPassword {
                passwords.append(PasswordSlotSpec(passphrase: try PasswordReader.read(try password.source(confirm: true)), label: label))
            }
            // Databases: each opens a snapshot, is inspected and counted in it; the dump runs in the same snapshot.
            let specs = try pgSpecs + postgres.map { try PostgresSourceSpec(argument: $0, passwordFile: postgresPasswordFile) }
            for name in allowMissing where !specs.contains(where: { $0.name == name }) {
                throw SealbakError(.usage, "--allow-missing \(name): no component has that name (components: \(specs.map(\.name).joined(separator: ", ")))")
            }
            let finder = ToolFinder(extra: pgBin + (bp?.pgBin ?? []))
            var snapshots: [PostgresSnapshot?] = []
            var componentEntries: [ManifestEntry] = []
            let now = Int64(Date().timeIntervalSince1970)
            for spec in specs {
                do {
                    let snap = try PostgresSnapshot(spec, finder: finder)
                    snapshots.append(snap)
                    componentEntries.append(snap.entry(mtime: now))
                    if !quiet {
                        let f = snap.facts
                        printError("sealbak: \(spec.name): PostgreSQL \(f.serverVersion), \(f.tables.count) tables, \(f.totalRows) rows counted in the dump's snapshot; dumping with \(f.dumpTool)")
                    }
                } catch let e as SealbakError where e.code == .unavailable && allowed.contains(spec.name) {
                    printError("sealbak: warning: \(spec.name) is skipped (--allow-missing): \(e.message)")
                    snapshots.append(nil)
                    componentEntries.append(PostgresComponent.skippedEntry(name: spec.name, source: spec.parameters.display, reason: e.message, mtime: now))
                }
            }
            defer { for s in snapshots { s?.close() } }
            let allEntries = componentEntries + plan.entries
            var names = Set<[UInt8]>()  // bytes: NFC and NFD spellings are different names
            for e in allEntries where !names.insert(Array(e.name.utf8)).inserted {
                throw SealbakError(.usage, "two components would both be stored as \(e.name); name them apart with --postgres NAME=URL")
            }

            let progress = Progress(label: "packing", total: plan.fileBytes, quiet: quiet)
            var archiveMetadata = Metadata(["created-by": "sealbak \(sealbakVersion)", "host": ProcessInfo.processInfo.hostName])
            if let bp { archiveMetadata["plan"] = bp.recorded }
            let manifest = Manifest(metadata: archiveMetadata, entries: allEntries)
            let writer: ArchiveWriter
            do {
                writer = try ArchiveWriter(manifest: manifest, passwords: passwords, recipients: recipients, options: options) { bytes in
                    try out.write(bytes)
                }
            } catch {
                out.abandon()
                throw error
            }
            let summary: WriteSummary
            do {
                for snap in snapshots {
                    guard let snap else {
                        try writer.writeEntry { _ in 0 }
                        continue
                    }
                    let dump = try snap.startDump()
                    try writer.writeEntry { buf in
                        let n = try dump.read(into: buf)
                        progress.add(n)
                        return n
                    }
                    snap.close()
                }
                for source in plan.sources {
                    let reader = try SourceReader(source)
                    try writer.writeEntry { buf in
                        let n = try reader.read(into: buf)
                        progress.add(n)
                        return n
                    }
                }
                summary = try writer.finish()
                try out.commit()
            } catch {
                writer.abandon()
                out.abandon()
                progress.finish()
                throw error
            }
            progress.finish()
            if !quiet {
                let ratio = summary.plaintextBytes > 0 ? String(format: " (%.1f%% of the input)", Double(summary.archiveBytes) * 100 / Double(summary.plaintextBytes)) : ""
                printError("sealbak: packed \(summary.entries) entries, \(formatBytes(summary.plaintextBytes)) into \(output == "-" ? "standard output" : output): \(formatBytes(summary.archiveBytes))\(ratio)")
            }
        }
    }
}
