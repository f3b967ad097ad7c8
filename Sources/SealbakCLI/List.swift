import ArgumentParser
import Foundation
import SealbakArchive
import SealbakComponents
import SealbakFormat
import SealbakPostgres

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the entries of an archive (needs the password: names are encrypted).")

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @Flag(name: .long, help: "Machine-readable JSON output.")
    var json = false

    @OptionGroup var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func run() throws {
        try reportingErrors {
            let reader = try openArchive(archive, password: password, reading: reading)
            let tap = OutcomeTap(DiscardSink(selected: []), manifest: reader.manifest)
            let trailer = reader.input.isSeekable ? try reader.loadIndex() : try reader.readAll(into: tap)
            let outcome = reader.input.isSeekable ? try OutcomeTap.read(reader) : try tap.outcome()
            let app = [ComponentKeys.appName, ComponentKeys.appVersion, ComponentKeys.appDescription].compactMap { reader.manifest.metadata[$0] }
            let h = reader.header
            // Remote: the header, manifest, footer and trailer only (ranged reads).
            defer { if let r = S3Options.fetchReport(reader.input) { printError("sealbak: \(r)") } }
            if json {
                var entries: [[String: Any]] = []
                for (i, e) in reader.manifest.entries.enumerated() {
                    var d: [String: Any] = [
                        "name": e.name, "kind": e.kind.name, "size": trailer.entries[i].size,
                        "mode": String(e.mode, radix: 8), "mtime": e.mtimeSeconds, "sha256": hex(trailer.entries[i].sha256),
                    ]
                    if e.kind == .symlink { d["link"] = e.linkTarget }
                    if !e.metadata.isEmpty { d["metadata"] = Dictionary(e.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }) }
                    entries.append(d)
                }
                var doc: [String: Any] = [
                    "archive": [
                        "id": hex(h.archiveID), "created": h.createdUnix, "cipher": h.cipherSuite.name,
                        "frame_size": h.frameSize, "format_version": Int(FormatV1.version),
                        "metadata": Dictionary(reader.manifest.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }),
                    ],
                    "entries": entries,
                ]
                if let outcome, let o = try? JSONSerialization.jsonObject(with: Data(outcome.encoded())) { doc["outcome"] = o }
                let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            if !app.isEmpty { print("application: " + app.joined(separator: ", ")) }
            print("\(reader.manifest.entries.count) entries, created \(formatTime(Int64(h.createdUnix))), \(h.cipherSuite.name)")
            for (i, e) in reader.manifest.entries.enumerated() {
                let kind = e.kind == .directory ? "d" : e.kind == .symlink ? "l" : e.kind == .stream ? "s" : "-"
                let mode = String(e.mode, radix: 8)
                let size = String(trailer.entries[i].size)
                let pad = String(repeating: " ", count: max(0, 14 - size.count))
                // Names and link targets may hold control characters (a newline, ESC sequences): escaped here;
                // --json prints them exactly.
                var line = "\(kind) \(String(repeating: "0", count: max(0, 4 - mode.count)))\(mode) \(pad)\(size)  \(formatTime(e.mtimeSeconds))  \(displayName(e.name))"
                if e.kind == .symlink { line += " -> \(displayName(e.linkTarget))" }
                print(line)
            }
            let components = try PostgresComponent.all(in: reader.manifest, archive: archive)
            let others = reader.manifest.entries.filter { $0.metadata["component"] != nil && $0.metadata["component"] != "postgres" }
            if !components.isEmpty || !others.isEmpty { print("components:") }
            for o in outcome?.incomplete ?? [] where o.status == .failed {
                print("  \(o.kind) \(o.name): FAILED while it was packed (\(o.bytes) partial bytes stored, never restored): \(o.reason ?? "")")
            }
            let failedNames = Set((outcome?.incomplete ?? []).filter { $0.status == .failed }.map(\.name))
            for e in others where !failedNames.contains(e.metadata[ComponentKeys.name] ?? "") {
                let m = e.metadata
                let kind = m["component"] ?? "?", name = displayName(m["component.name"] ?? e.name)
                switch kind {
                case _ where m[ComponentKeys.status] == "skipped":
                    print("  \(kind) \(name): SKIPPED when packing: \(m[ComponentKeys.reason] ?? "")")
                case "mysql":
                    if let line = MySQLVerifier.listLine(e, manifest: reader.manifest, counts: { i in reader.input.isSeekable ? try? MySQLVerifier.readEntry(reader, i) : nil }) { print(line) }
                case "command":
                    print("  command \(name): ok, the output of \(m[ComponentKeys.source] ?? "?")")
                case "docs":
                    print("  docs \(name): \(m["component.status"] ?? "?"), \(m["docs.files"] ?? "?") files, \(formatBytes(UInt64(m["docs.bytes"] ?? "") ?? 0)), \(m["docs.excluded"] ?? "0") left out, from \(m["component.source"] ?? "?")")
                case "qdrant":
                    print("  qdrant \(name): \(m["component.status"] ?? "?"), \(m["qdrant.layout"] ?? "?"), collections \(m["qdrant.collections"].map { $0.split(separator: ",").joined(separator: ", ") } ?? "?"), \(formatBytes(UInt64(m["qdrant.bytes"] ?? "") ?? 0)), from \(m["component.source"] ?? "?")")
                case "chroma":
                    print("  chroma \(name): \(m["component.status"] ?? "?"), \(m["chroma.collections"] ?? "?") collection(s), \(m["chroma.embeddings"] ?? "?") embeddings, \(formatBytes(UInt64(m["chroma.bytes"] ?? "") ?? 0)), from \(m["component.source"] ?? "?")")
                    if let json = m["chroma.facts"], let cols = try? JSONDecoder().decode([ChromaComponent.Collection].self, from: Data(json.utf8)) {
                        for c in cols { print("    \(c.name): \(c.embeddings) embeddings, dimension \(c.dimension.map(String.init) ?? "?")") }
                    }
                case "sqlite":
                    print("  sqlite \(name): \(m["component.status"] ?? "?"), \(SQLiteComponent.summary(m)), from \(m["component.source"] ?? "?")")
                    for t in SQLiteComponent.tableLines(m) { print("    " + t) }
                case "vectors":
                    print("  vectors \(name): \(m["component.status"] ?? "?"), \(m["vectors.vector-files"] ?? "?") vector file(s), \(m["vectors.vectors"] ?? "?") vectors, \(formatBytes(UInt64(m["vectors.bytes"] ?? "") ?? 0)), from \(m["component.source"] ?? "?")")
                    let prefix = e.name + "/"
                    for f in reader.manifest.entries where f.name.hasPrefix(prefix) && (f.metadata["vectors.format"] != nil || f.metadata["vectors.error"] != nil) {
                        if let err = f.metadata["vectors.error"] { print("    \(displayName(String(f.name.dropFirst(prefix.count)))): BROKEN: \(err)"); continue }
                        print("    \(displayName(String(f.name.dropFirst(prefix.count)))): \(f.metadata["vectors.format"]!) \(f.metadata["vectors.dtype"] ?? "?") \(f.metadata["vectors.shape"] ?? "?")")
                    }
                case "config":
                    var line = "  config \(name): \(m["component.status"] ?? "?"), \(m["config.configs"] ?? "?") config file(s), contains \(m["config.secret-keys"] ?? "0") secret(s)"
                    if let r = m["config.redacted"], r != "0" { line += " (\(r) redacted)" }
                    if let b = m["config.invalid"], b != "0" { line += ", \(b) BROKEN" }
                    print(line + ", from \(m["component.source"] ?? "?")")
                    let prefix = e.name + "/"
                    for f in reader.manifest.entries where f.name.hasPrefix(prefix) && f.metadata["config.format"] != nil {
                        let rel = String(f.name.dropFirst(prefix.count))
                        var d = "    \(displayName(rel)): \(f.metadata["config.format"]!)"
                        if let err = f.metadata["config.error"] { d += ", BROKEN: \(err)" }
                        if let s = f.metadata["config.secrets"] { d += ", secrets: \(s.split(separator: ",").joined(separator: ", "))" }
                        print(d)
                    }
                default:
                    print("  \(kind) \(name): \(m["component.status"] ?? "?") (made by a newer sealbak; restore may not know this kind)")
                }
            }
            for c in components where !failedNames.contains(c.name) {
                guard let f = c.facts else {
                    print("  postgres \(c.name): SKIPPED when packing: \(c.skippedReason ?? "")")
                    continue
                }
                var line = "  postgres \(c.name): ok, PostgreSQL \(f.serverVersion), database \(f.database) from \(c.source), \(f.tables.count) tables, \(f.totalRows) rows, \(f.largeObjects) large objects"
                if !f.requiredExtensions.isEmpty { line += "; extensions " + f.requiredExtensions.map { "\($0.name) \($0.version)" }.joined(separator: ", ") }
                if !f.vectorColumns.isEmpty { line += "; vector columns " + f.vectorColumns.map { "\($0.schema).\($0.table).\($0.column) \($0.type)(\($0.dimensions.map(String.init) ?? "any"))" }.joined(separator: ", ") }
                print(line)
                // What a restore rebuilds and how long it may take, before the bad day (restore --dry-run gives the
                // same for a real target, with its memory and limits).
                let sizing = SessionSizing.offline(f)
                print("  " + SessionSizing.estimateLines(builds: sizing.builds, dataSeconds: sizing.dataSeconds, total: sizing.estimatedSeconds)
                    .joined(separator: "\n  ") + "\n    (for a server with default settings and 2 cores, sealbak sizing its sessions within \(formatBytes(UInt64(sizing.budget))); restore --dry-run estimates for the real target)")
            }
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the cleartext header (no password needed; unauthenticated).")

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @OptionGroup var s3: S3Options

    func run() throws {
        try reportingErrors {
            let input = try InputFile(path: archive)
            let h = try ArchiveReader.readHeader(input)
            print("sealbak archive, format version \(FormatV1.version)")
            print("archive id:  \(hex(h.archiveID))")
            print("created:     \(formatTime(Int64(h.createdUnix)))")
            print("cipher:      \(h.cipherSuite.name)")
            print("frame size:  \(formatBytes(UInt64(h.frameSize)))")
            print("header:      \(h.byteCount) bytes (authenticated only once a password opens a slot)")
            print("key slots:   \(h.slots.count)")
            for s in h.slots { print("  " + describeSlot(s)) }
        }
    }
}
