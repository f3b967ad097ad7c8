import ArgumentParser
import Foundation
import SealbakArchive
import SealbakComponents
import SealbakFormat
import SealbakIO
import SealbakPostgres

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the entries of an archive (needs the password: names are encrypted).",
        discussion: """
            Examples:
              sealbak list backup.sbk
              sealbak list backup.sbk --json | jq '.entries[].name'
              sealbak list s3://backups/app/2026-11-30T02:00:00.000Z.sbk --identity ~/.sealbak/id
            """
    )

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func run() throws {
        try reportingErrors(json: output.json ? "list" : nil) {
            let reader = try openArchive(archive, in: reading.locations, password: password, reading: reading)
            let tap = OutcomeTap(DiscardSink(selected: []), manifest: reader.manifest)
            let trailer = try reader.contentView(
                reader.input.isSeekable ? try reader.loadIndex() : try reader.readAll(into: tap)
            )
            let outcome = reader.input.isSeekable ? try OutcomeTap.read(reader) : try tap.outcome()
            let app = [ComponentKeys.appName, ComponentKeys.appVersion, ComponentKeys.appDescription].compactMap {
                reader.manifest.metadata[$0]
            }
            let h = reader.header
            // Remote: the header, manifest, footer and trailer only (ranged reads).
            defer { if let r = S3Options.fetchReport(reader.input) { printError("sealbak: \(r)") } }
            if output.json {
                JSONOutput.emit(
                    "list",
                    [
                        "archive": archiveJSON(archive, header: h, manifest: reader.manifest),
                        "entries": reader.manifest.entries.indices.map {
                            entryJSON(reader.manifest.entries[$0], trailer.entries[$0])
                        },
                        "outcome": outcome.map(outcomeJSON) ?? NSNull(),
                    ]
                )
                return
            }
            // Metadata values are shown as recorded: escaped here (an archive is authenticated, but whoever holds its
            // key
            // could still have put a terminal escape sequence into a recorded value).
            func show(_ line: String) { print(displayMessage(line)) }
            if !app.isEmpty { show("application: " + app.joined(separator: ", ")) }
            show(
                "\(reader.manifest.entries.count) entries, created \(formatTime(Int64(h.createdUnix))), "
                    + "\(h.cipherSuite.name)"
            )
            for (i, e) in reader.manifest.entries.enumerated() {
                let kind = e.kind == .directory ? "d" : e.kind == .symlink ? "l" : e.kind == .stream ? "s" : "-"
                let mode = String(e.mode, radix: 8)
                let size = String(trailer.entries[i].size)
                let pad = String(repeating: " ", count: max(0, 14 - size.count))
                // Names and link targets may hold control characters (a newline, ESC sequences): escaped here;
                // --json prints them exactly.
                var line =
                    "\(kind) \(String(repeating: "0", count: max(0, 4 - mode.count)))\(mode) \(pad)\(size)  "
                    + "\(formatTime(e.mtimeSeconds))  \(displayName(e.name))"
                if e.kind == .symlink { line += " -> \(displayName(e.linkTarget))" }
                show(line)
            }
            let components = try PostgresComponent.all(in: reader.manifest, archive: archive)
            let others = reader.manifest.entries.filter {
                $0.metadata["component"] != nil && $0.metadata["component"] != "postgres"
            }
            if !components.isEmpty || !others.isEmpty { show("components:") }
            for o in outcome?.incomplete ?? [] where o.status == .failed {
                show(
                    "  \(o.kind) \(o.name): FAILED while it was packed (\(o.bytes) partial bytes stored, never "
                        + "restored): \(o.reason ?? "")"
                )
            }
            let failedNames = Set((outcome?.incomplete ?? []).filter { $0.status == .failed }.map(\.name))
            for e in others where !failedNames.contains(e.metadata[ComponentKeys.name] ?? "") {
                let m = e.metadata
                let kind = m["component"] ?? "?"
                let name = displayName(m["component.name"] ?? e.name)
                switch kind {
                case _ where m[ComponentKeys.status] == "skipped":
                    show("  \(kind) \(name): SKIPPED when packing: \(m[ComponentKeys.reason] ?? "")")
                case "mysql":
                    if let line = MySQLVerifier.listLine(
                        e,
                        manifest: reader.manifest,
                        counts: { i in reader.input.isSeekable ? try? MySQLVerifier.readEntry(reader, i) : nil }
                    ) {
                        show(line)
                    }
                case "command":
                    show("  command \(name): ok, the output of \(m[ComponentKeys.source] ?? "?")")
                case "docs":
                    show(
                        "  docs \(name): \(m["component.status"] ?? "?"), \(m["docs.files"] ?? "?") files, "
                            + "\(formatBytes(UInt64(m["docs.bytes"] ?? "") ?? 0)), \(m["docs.excluded"] ?? "0") left "
                            + "out, from \(m["component.source"] ?? "?")"
                    )
                case "qdrant":
                    let collections =
                        m["qdrant.collections"].map { $0.split(separator: ",").joined(separator: ", ") } ?? "?"
                    let bytes = formatBytes(UInt64(m["qdrant.bytes"] ?? "") ?? 0)
                    show(
                        "  qdrant \(name): \(m["component.status"] ?? "?"), \(m["qdrant.layout"] ?? "?"), "
                            + "collections \(collections), \(bytes), from \(m["component.source"] ?? "?")"
                    )
                case "chroma":
                    show(
                        "  chroma \(name): \(m["component.status"] ?? "?"), \(m["chroma.collections"] ?? "?") "
                            + "collection(s), \(m["chroma.embeddings"] ?? "?") embeddings, "
                            + "\(formatBytes(UInt64(m["chroma.bytes"] ?? "") ?? 0)), from "
                            + "\(m["component.source"] ?? "?")"
                    )
                    if let json = m["chroma.facts"],
                        let cols = try? JSONDecoder().decode([ChromaComponent.Collection].self, from: Data(json.utf8))
                    {
                        for c in cols {
                            show(
                                "    \(c.name): \(c.embeddings) embeddings, dimension "
                                    + "\(c.dimension.map(String.init) ?? "?")"
                            )
                        }
                    }
                case "sqlite":
                    show(
                        "  sqlite \(name): \(m["component.status"] ?? "?"), \(SQLiteComponent.summary(m)), from "
                            + "\(m["component.source"] ?? "?")"
                    )
                    for t in SQLiteComponent.tableLines(m) { show("    " + t) }
                case "vectors":
                    show(
                        "  vectors \(name): \(m["component.status"] ?? "?"), \(m["vectors.vector-files"] ?? "?") "
                            + "vector file(s), \(m["vectors.vectors"] ?? "?") vectors, "
                            + "\(formatBytes(UInt64(m["vectors.bytes"] ?? "") ?? 0)), from "
                            + "\(m["component.source"] ?? "?")"
                    )
                    let prefix = e.name + "/"
                    for f in reader.manifest.entries
                    where f.name.hasPrefix(prefix)
                        && (f.metadata["vectors.format"] != nil || f.metadata["vectors.error"] != nil)
                    {
                        if let err = f.metadata["vectors.error"] {
                            show("    \(displayName(String(f.name.dropFirst(prefix.count)))): BROKEN: \(err)")
                            continue
                        }
                        show(
                            "    \(displayName(String(f.name.dropFirst(prefix.count)))): "
                                + "\(f.metadata["vectors.format"]!) \(f.metadata["vectors.dtype"] ?? "?") "
                                + "\(f.metadata["vectors.shape"] ?? "?")"
                        )
                    }
                case "config":
                    var line =
                        "  config \(name): \(m["component.status"] ?? "?"), \(m["config.configs"] ?? "?") config "
                        + "file(s), contains \(m["config.secret-keys"] ?? "0") secret(s)"
                    if let r = m["config.redacted"], r != "0" { line += " (\(r) redacted)" }
                    if let b = m["config.invalid"], b != "0" { line += ", \(b) BROKEN" }
                    show(line + ", from \(m["component.source"] ?? "?")")
                    let prefix = e.name + "/"
                    for f in reader.manifest.entries
                    where f.name.hasPrefix(prefix) && f.metadata["config.format"] != nil {
                        let rel = String(f.name.dropFirst(prefix.count))
                        var d = "    \(displayName(rel)): \(f.metadata["config.format"]!)"
                        if let err = f.metadata["config.error"] { d += ", BROKEN: \(err)" }
                        if let s = f.metadata["config.secrets"] {
                            d += ", secrets: \(s.split(separator: ",").joined(separator: ", "))"
                        }
                        show(d)
                    }
                default:
                    show(
                        "  \(kind) \(name): \(m["component.status"] ?? "?") (made by a newer sealbak; restore may "
                            + "not know this kind)"
                    )
                }
            }
            for c in components where !failedNames.contains(c.name) {
                guard let f = c.facts else {
                    show("  postgres \(c.name): SKIPPED when packing: \(c.skippedReason ?? "")")
                    continue
                }
                var line =
                    "  postgres \(c.name): ok, PostgreSQL \(f.serverVersion), database \(f.database) from "
                    + "\(c.source), \(f.tables.count) tables, \(f.totalRows) rows, \(f.largeObjects) large objects"
                if !f.requiredExtensions.isEmpty {
                    line +=
                        "; extensions "
                        + f.requiredExtensions.map { "\($0.name) \($0.version)" }.joined(separator: ", ")
                }
                if !f.vectorColumns.isEmpty {
                    line +=
                        "; vector columns "
                        + f.vectorColumns.map {
                            "\($0.schema).\($0.table).\($0.column) "
                                + "\($0.type)(\($0.dimensions.map(String.init) ?? "any"))"
                        }.joined(separator: ", ")
                }
                show(line)
                // What a restore rebuilds and how long it may take, before the bad day (restore --dry-run gives the
                // same for a real target, with its memory and limits).
                let sizing = SessionSizing.offline(f)
                show(
                    "  "
                        + SessionSizing.estimateLines(
                            builds: sizing.builds,
                            dataSeconds: sizing.dataSeconds,
                            total: sizing.estimatedSeconds
                        )
                        .joined(separator: "\n  ")
                        + "\n    (for a server with default settings and 2 cores, sealbak sizing its sessions within "
                        + "\(formatBytes(UInt64(sizing.budget))); restore --dry-run estimates for the real target)"
                )
            }
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the cleartext header (no password needed; unauthenticated).",
        discussion: """
            Examples:
              sealbak inspect backup.sbk
              curl -s https://example.org/backup.sbk | sealbak inspect -
            """
    )

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Object storage") var s3: S3Options

    /// Accepted and not read (no password is needed), so that a wrapper can pass the same options to every command.
    @OptionGroup(visibility: .hidden) var password: PasswordOptions

    func run() throws {
        try reportingErrors(json: output.json ? "inspect" : nil) {
            let input = try s3.connection().locations.input(archive)
            let h = try ArchiveReader.readHeader(input)
            if output.json {
                JSONOutput.emit(
                    "inspect",
                    [
                        "archive": archiveJSON(archive, header: h, manifest: nil), "authenticated": false,
                        "header_bytes": h.byteCount, "slots": h.slots.map(slotJSON),
                    ]
                )
                return
            }
            print(
                "sealbak archive, format version \(h.version)"
                    + (h.features.isEmpty ? "" : " (features: \(h.features))")
            )
            print("archive id:  \(hex(h.archiveID))")
            print("created:     \(formatTime(Int64(h.createdUnix)))")
            print("cipher:      \(h.cipherSuite.name)")
            print("frame size:  \(formatBytes(UInt64(h.frameSize)))")
            print("header:      \(h.byteCount) bytes (authenticated only once a password opens a slot)")
            if let b = h.base {
                print(
                    b.isRoot
                        ? "chain:       root of a chain (a full archive incremental ones can build on)"
                        : "chain:       incremental, archive \(b.depth + 1) of its chain; base \(hex(b.archiveID)) "
                            + "(its trailer's SHA-256 \(hex(b.trailerSHA256)))"
                )
            }
            print("key slots:   \(h.slots.count)")
            for s in h.slots { print("  " + describeSlot(s)) }
        }
    }
}

/// An archive as JSON (docs/json.md "archive").
func archiveJSON(_ path: String, header h: ArchiveHeader, manifest: Manifest?) -> [String: Any] {
    var d: [String: Any] = [
        "path": path, "id": hex(h.archiveID), "created": JSONOutput.time(Int64(h.createdUnix)),
        "cipher": h.cipherSuite.name,
        "frame_size": Int(h.frameSize), "format_version": Int(h.version), "features": h.features.names,
    ]
    if let b = h.base {
        d["chain"] =
            b.isRoot
            ? ["depth": 0, "base": NSNull()] as [String: Any]
            : ["depth": Int(b.depth), "base": hex(b.archiveID), "base_trailer_sha256": hex(b.trailerSHA256)]
    }
    if let manifest {
        d["metadata"] = JSONOutput.metadata(manifest.metadata)
        var app: [String: Any] = [:]
        if let v = manifest.metadata[ComponentKeys.appName] { app["name"] = v }
        if let v = manifest.metadata[ComponentKeys.appVersion] { app["version"] = v }
        if let v = manifest.metadata[ComponentKeys.appDescription] { app["description"] = v }
        if !app.isEmpty { d["application"] = app }
    }
    return d
}

/// A manifest entry with its trailer record (docs/json.md "entry"). Names are exact (not escaped).
func entryJSON(_ e: ManifestEntry, _ t: TrailerEntry) -> [String: Any] {
    var d: [String: Any] = [
        "name": e.name, "kind": e.kind.name, "size": t.size, "mode": Int(e.mode),
        "mode_octal": "0" + String(e.mode, radix: 8),
        "mtime": JSONOutput.time(e.mtimeSeconds, nanoseconds: e.mtimeNanoseconds),
        "sha256": hex(t.sha256),
    ]
    if e.kind == .symlink { d["link"] = e.linkTarget }
    if !e.metadata.isEmpty { d["metadata"] = JSONOutput.metadata(e.metadata) }
    return d
}

/// The capture outcome record (docs/json.md "outcome"; Spec/COMPONENTS.md).
func outcomeJSON(_ o: CaptureOutcome) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(o.encoded()))) as? [String: Any] ?? [:]
}
