import ArgumentParser
import Foundation
import SealbakArchive
import SealbakComponents
import SealbakFormat

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

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Extract only NAME (an entry or a directory, or a pattern with * ? [ ] where * also matches /); repeatable.", valueName: "NAME"))
    var only: [String] = []

    @Flag(name: .long, help: "Replace existing files in DIR.")
    var force = false

    @Flag(name: [.short, .long], help: "No progress or summary on stderr.")
    var quiet = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func run() throws {
        try reportingErrors(json: output.json ? "unpack" : nil) {
            if to == "-" {
                throw SealbakError(.usage, "--to - would create a folder named \"-\"; to write an entry to standard output use sealbak cat ARCHIVE ENTRY (or --to ./- for that folder)")
            }
            // First finish or remove what killed unpacks into DIR left (docs/usage.md "Unpack safety").
            if FileManager.default.fileExists(atPath: to) {
                for line in try Extractor.recoverInterrupted(in: to) { printError("sealbak: \(line)") }
            }
            let reader = try openArchive(archive, password: password, reading: reading)
            let entries = reader.manifest.entries
            var selected = Set(entries.indices)
            if !only.isEmpty {
                selected = []
                for name in only {
                    let matches = EntrySelection.matching(name, in: entries.map(\.name))
                    if matches.isEmpty { throw SealbakError(.notFound, "\(archive): no entry named \(displayName(name)); see sealbak list") }
                    selected.formUnion(matches)
                }
                // Parent directories of selected entries come along so modes and times are restored too.
                // Names are compared as bytes: String == would match an NFC folder for an NFD name.
                var directories: [[UInt8]: Int] = [:]
                for (j, e) in entries.enumerated() where e.kind == .directory { directories[Array(e.name.utf8)] = j }
                for i in Array(selected) {
                    var parts = entries[i].name.utf8.split(separator: UInt8(ascii: "/")).map { Array($0) }.dropLast()
                    while !parts.isEmpty {
                        if let j = directories[Array(parts.joined(separator: [UInt8(ascii: "/")]))] { selected.insert(j) }
                        parts = parts.dropLast()
                    }
                }
            }
            let extractor = try Extractor(root: to, manifest: reader.manifest, selected: selected, force: force)
            let total = reader.input.isSeekable ? (try? reader.loadIndex()).map { t in selected.reduce(UInt64(0)) { $0 + t.entries[$1].size } } : nil
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
                JSONOutput.emit("unpack", [
                    "archive": archiveJSON(archive, header: reader.header, manifest: reader.manifest), "to": to,
                    "entries": selected.count, "bytes": extractor.bytesWritten, "skipped_symlinks": extractor.skippedSymlinks,
                    "duration_seconds": (Date().timeIntervalSince(started) * 1000).rounded() / 1000,
                ])
            } else if !quiet {
                printError("sealbak: unpacked \(selected.count) entries, \(formatBytes(extractor.bytesWritten)) into \(displayName(to)) in \(formatDuration(Date().timeIntervalSince(started))); every entry verified")
            }
            if !quiet, let r = S3Options.fetchReport(reader.input) { printError("sealbak: \(r)") }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every tag, checksum and structure of an archive; writes nothing.",
        discussion: """
            Examples:
              sealbak verify backup.sbk
              sealbak verify s3://backups/app/2026-11-30T02:00:00.000Z.sbk --identity ~/.sealbak/id
            """
    )

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @Flag(name: [.short, .long], help: "Print nothing on success.")
    var quiet = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func run() throws {
        try reportingErrors(json: output.json ? "verify" : nil) {
            let reader = try openArchive(archive, password: password, reading: reading)
            let sink = DiscardSink()
            sink.captureHeads = ComponentVerifier.headsNeeded(reader.manifest)
            let total = reader.input.isSeekable ? (try? reader.loadIndex()).map { $0.entries.reduce(UInt64(0)) { $0 + $1.size } } : nil
            let started = Date()
            let progress = Progress(label: "verifying", total: total, quiet: quiet, json: output.named("verify"))
            defer { progress.finish() }
            let tap = OutcomeTap(ProgressTap(sink, manifest: reader.manifest, progress: progress), manifest: reader.manifest)
            let trailer = try reader.readAll(into: tap)
            progress.finish()
            // Each component's record must agree with the entries (counts, sizes, a dump's magic).
            let results = ComponentVerifier.check(reader.manifest, sizes: trailer.entries.map(\.size), heads: sink.heads, outcome: try tap.outcome())
            let bad = results.filter { !$0.ok }
            if !bad.isEmpty {
                throw SealbakError(.corrupt, "\(archive): every byte verified, but component records disagree with the entries: " + bad.map { "\($0.kind) \(displayName($0.name)): \($0.detail)" }.joined(separator: "; "))
            }
            let incomplete = results.filter { !$0.complete }
            if output.json {
                JSONOutput.emit("verify", [
                    "archive": archiveJSON(archive, header: reader.header, manifest: reader.manifest), "ok": true,
                    "complete": incomplete.isEmpty, "entries": sink.entries, "bytes": sink.bytes,
                    "duration_seconds": (Date().timeIntervalSince(started) * 1000).rounded() / 1000,
                    "components": results.map { ["kind": $0.kind, "name": $0.name, "ok": $0.ok, "complete": $0.complete, "detail": $0.detail] },
                ])
            } else if !quiet {
                let app = [ComponentKeys.appName, ComponentKeys.appVersion, ComponentKeys.appDescription].compactMap { reader.manifest.metadata[$0] }
                if !app.isEmpty { print("application: " + app.joined(separator: ", ")) }
                print("OK: \(archive == "-" ? "standard input" : archive): \(sink.entries) entries, \(formatBytes(sink.bytes)) verified in \(formatDuration(Date().timeIntervalSince(started))) (header MAC, every frame tag, SHA-256 of every entry, trailer and footer)")
                for r in results { print("  \(r.kind) \(displayName(r.name)): \(r.complete ? "ok, " : "")\(r.detail)") }
            }
            if !quiet, let r = S3Options.fetchReport(reader.input) { printError("sealbak: \(r)") }
            if !incomplete.isEmpty {
                printError("sealbak: \(archive) is intact but INCOMPLETE: \(incomplete.map { "\(displayName($0.name)) \($0.detail)" }.joined(separator: "; "))")
                throw ExitCode(ExitStatus.skippedComponents)
            }
        }
    }
}
