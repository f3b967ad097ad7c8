import ArgumentParser
import Foundation
import SealbakArchive
import SealbakComponents
import SealbakFormat
import SealbakPostgres

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore the archive's components into live systems, and prove it.",
        discussion: """
            PostgreSQL: each database is restored into a new database with a temporary name (pg_restore \
            --single-transaction --exit-on-error), its rows are recounted and compared with the counts taken \
            when packing, and only then is it renamed into place. A non-empty target is replaced only with \
            --replace, and only after that verification; any failure leaves the target as it was. \
            Files and directories are extracted with `sealbak unpack`.
            """
    )

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @Option(name: .long, help: ArgumentHelp("Take the targets from this backup plan (restore: or the component's own url:/path:); flags given here win.", valueName: "FILE"))
    var plan: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Where a PostgreSQL component goes: URL (when one component is restored) or NAME=URL; repeatable. The URL names the target database.", valueName: "URL"))
    var postgresTarget: [String] = []

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Restore only component NAME; repeatable.", valueName: "NAME"))
    var only: [String] = []

    @Option(name: .long, help: ArgumentHelp("Restore directory components (docs) into DIR/NAME.", valueName: "DIR"))
    var to: String?

    @Option(name: [.customLong("target"), .customLong("docs-target")], parsing: .singleValue, help: ArgumentHelp("Where folder component NAME (docs, config) goes; repeatable.", valueName: "NAME=DIR"))
    var docsTarget: [String] = []

    @Flag(name: .long, help: "Replace a non-empty target (database or folder) once the restored copy has verified.")
    var replace = false

    @Flag(name: .long, help: "Do not ask before replacing a non-empty folder on a terminal.")
    var yes = false

    @Flag(name: .long, help: "Keep the replaced database (renamed NAME_sbk_old_XXXXXXXX) instead of dropping it.")
    var keepReplaced = false

    @Flag(name: .long, help: "Do not restore object owners and privileges (for a server without the original roles).")
    var noOwner = false

    @Flag(name: .long, help: "Show what would be restored and check the targets; change nothing.")
    var dryRun = false

    @Option(name: .long, help: ArgumentHelp("Read the PostgreSQL password from the first line of FILE (for URLs without one).", valueName: "FILE"))
    var postgresPasswordFile: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("Look for pg_restore in DIR first; repeatable (also SEALBAK_PG_BIN).", valueName: "DIR"))
    var pgBin: [String] = []

    @Flag(name: [.short, .long], help: "Print only errors.")
    var quiet = false

    @OptionGroup var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func run() throws {
        try reportingErrors {
            let bp = try plan.map { try BackupPlan.load($0) }
            let reader = try openArchive(archive, password: password, reading: reading)
            var components = try PostgresComponent.all(in: reader.manifest, archive: archive)
            var trees = TreeComponent.all(in: reader.manifest)
            let allNames = components.map(\.name) + trees.map(\.name)
            if allNames.isEmpty {
                throw SealbakError(.notFound, "\(archive) holds no component (database or docs tree); extract its files with sealbak unpack")
            }
            if !only.isEmpty {
                for name in only where !allNames.contains(name) {
                    throw SealbakError(.notFound, "\(archive): no component named \(name) (components: \(allNames.joined(separator: ", ")))")
                }
                components = components.filter { only.contains($0.name) }
                trees = trees.filter { only.contains($0.name) }
            }
            for c in components where c.skippedReason != nil {
                if only.contains(c.name) {
                    throw SealbakError(.notFound, "component \(c.name) was skipped when packing: \(c.skippedReason!)")
                }
                printError("sealbak: note: \(c.name) is not in the archive (skipped when packing: \(c.skippedReason!))")
            }
            components = components.filter { $0.skippedReason == nil }
            if components.isEmpty && trees.isEmpty { throw SealbakError(.notFound, "\(archive): every selected component was skipped when packing; nothing to restore") }
            if components.count + trees.count > 1 && !reader.input.isSeekable {
                throw SealbakError(.usage, "restoring several components needs a seekable archive, not a pipe; save it to a file or use --only NAME")
            }
            let treeTargets = try treeTargetsByComponent(trees, bp)

            let targets = components.isEmpty ? [:] : try targetsByComponent(components, bp)
            var options = PostgresRestoreOptions()
            options.replace = replace
            options.keepReplaced = keepReplaced
            options.noOwner = noOwner
            options.finder = ToolFinder(extra: pgBin)

            // Every check for every component first: a problem with the second must not leave the first half done.
            var work: [(PostgresRestorer, RestorePlan)] = []
            for c in components {
                let r = try PostgresRestorer(component: c, target: targets[c.name]!, options: options)
                work.append((r, try r.plan()))
            }
            // Folders: an existing non-empty target is replaced with --replace, --yes, or a yes on the terminal.
            var treeReplace: [String: Bool] = [:]
            for t in trees {
                let target = treeTargets[t.name]!
                let existing = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
                var ok = replace || yes || existing.isEmpty
                if !ok && !dryRun && isatty(0) == 1 && isatty(2) == 1 {
                    printError("sealbak: \(target) exists and holds \(existing.count) entries. Replace it with \(t.name) from the archive (the old folder is kept until the new one is complete)? [y/N] ", newline: false)
                    ok = (readLine() ?? "").lowercased().hasPrefix("y")
                }
                treeReplace[t.name] = ok
            }
            if dryRun {
                for (_, plan) in work { print(plan.description) }
                for t in trees {
                    let target = treeTargets[t.name]!
                    var isDir: ObjCBool = false
                    let exists = FileManager.default.fileExists(atPath: target, isDirectory: &isDir)
                    let state = !exists ? "will be created" : !isDir.boolValue ? "EXISTS AND IS NOT A DIRECTORY: refused" :
                        treeReplace[t.name]! ? "exists: will be replaced once the restored copy is complete" : "exists and is not empty: refused without --replace"
                    print("component \(t.name): \(t.kind) tree from \(t.source), \(t.files) files, \(formatBytes(t.bytes))\n  target: \(target) (\(state))")
                }
                print("dry run: nothing was changed")
                return
            }
            var stagedTrees: [StagedTree] = []
            defer { for s in stagedTrees { s.cleanUp() } }
            for t in trees {
                let staged = try StagedTree(t, target: treeTargets[t.name]!, replace: treeReplace[t.name]!)
                stagedTrees.append(staged)
                try staged.extract(manifest: reader.manifest) { extractor, indices in
                    if reader.input.isSeekable { for i in indices { try reader.readEntry(i, into: extractor) } } else { _ = try reader.readAll(into: extractor) }
                }
            }
            // Stage every component (restore + verify under a temporary name), then swap them all in: a failure in
            // any component leaves every target as it was.
            var staged: [StagedRestore] = []
            defer { for s in staged { s.abandon() } }
            for (restorer, plan) in work {
                let index = restorer.component.entryIndex
                staged.append(try restorer.stage(plan, feed: { sink in
                    if reader.input.isSeekable { try reader.readEntry(index, into: sink) } else { _ = try reader.readAll(into: sink) }
                }, log: { line in if !quiet { printError("sealbak: " + line) } }))
            }
            for (s, (restorer, plan)) in zip(staged, work) {
                let report = try s.commit()
                if !quiet {
                    print(report.table)
                    let facts = plan.facts
                    var line = "restored \(restorer.component.name) into \(plan.target.display): \(facts.tables.count) tables, \(facts.totalRows) rows and \(facts.largeObjects) large objects verified"
                    if let kept = report.replacedKeptAs { line += "; the replaced database is kept as \(kept)" }
                    print(line)
                }
            }
            for s in stagedTrees {
                try s.commit()
                if !quiet { print("restored \(s.component.name) into \(s.target): \(s.component.files) files verified\(s.targetExists ? "; the previous folder was replaced" : "")") }
            }
        }
    }

    private func treeTargetsByComponent(_ trees: [TreeComponent], _ bp: BackupPlan?) throws -> [String: String] {
        var out: [String: String] = [:]
        for c in bp?.components ?? [] where c.kind != .postgres && trees.contains(where: { $0.name == c.name }) {
            out[c.name] = to.map { $0 + "/" + c.name } ?? c.restorePath ?? c.path
        }
        for t in docsTarget {
            guard let eq = t.firstIndex(of: "=") else { throw SealbakError(.usage, "--target \(t): give NAME=DIR") }
            let name = String(t[..<eq])
            guard trees.contains(where: { $0.name == name }) else {
                throw SealbakError(.usage, "--target \(name)=…: no selected folder component has that name (components: \(trees.map(\.name).joined(separator: ", ")))")
            }
            out[name] = String(t[t.index(after: eq)...])
        }
        for t in trees where out[t.name] == nil {
            guard let to else {
                throw SealbakError(.usage, "no target for \(t.kind) component \(t.name): give --to DIR (restores into DIR/\(t.name)) or --target \(t.name)=DIR")
            }
            out[t.name] = to + "/" + t.name
        }
        return out
    }

    private func targetsByComponent(_ components: [PostgresComponent], _ bp: BackupPlan?) throws -> [String: ConnectionParameters] {
        var out: [String: ConnectionParameters] = [:]
        for c in bp?.components ?? [] where c.kind == .postgres && components.contains(where: { $0.name == c.name }) {
            var p = try ConnectionParameters(c.restoreURL ?? c.url!, what: "the restore url of \(c.name) in \(bp!.file)")
            if let f = c.passwordFile ?? postgresPasswordFile, p["password"] == nil { p["password"] = try PostgresSourceSpec.readPasswordFile(f) }
            out[c.name] = p
        }
        var bare: [String] = []
        for t in postgresTarget {
            if let eq = t.firstIndex(of: "="), let scheme = t.range(of: "://"), eq < scheme.lowerBound {
                let name = String(t[..<eq])
                guard components.contains(where: { $0.name == name }) else {
                    throw SealbakError(.usage, "--postgres-target \(name)=…: no selected component has that name (components: \(components.map(\.name).joined(separator: ", ")))")
                }
                out[name] = try parameters(String(t[t.index(after: eq)...]), what: "--postgres-target \(name)=URL")
            } else {
                bare.append(t)
            }
        }
        if bare.count > 1 { throw SealbakError(.usage, "give each --postgres-target as NAME=URL when there are several") }
        if let url = bare.first {
            let open = components.filter { out[$0.name] == nil }
            guard open.count == 1 else {
                throw SealbakError(.usage, "--postgres-target URL is ambiguous: \(open.count) components (\(open.map(\.name).joined(separator: ", "))) have no target; give NAME=URL for each or use --only NAME")
            }
            out[open[0].name] = try parameters(url, what: "--postgres-target URL")
        }
        for c in components where out[c.name] == nil {
            throw SealbakError(.usage, "no target for PostgreSQL component \(c.name): give --postgres-target \(c.name)=postgresql://USER@HOST:PORT/DATABASE")
        }
        return out
    }

    private func parameters(_ text: String, what: String) throws -> ConnectionParameters {
        var p = try ConnectionParameters(text, what: what)
        if let f = postgresPasswordFile, p["password"] == nil { p["password"] = try PostgresSourceSpec.readPasswordFile(f) }
        return p
    }
}
