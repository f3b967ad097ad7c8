import ArgumentParser
import Foundation
import SealbakComponents
import SealbakIO
import SealbakS3

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List a plan's runs, verifications and drills, failed and interrupted ones included.",
        discussion: """
            Reads STATE-DIR/history.jsonl (state-dir: in the plan), or with --from the run records stored next to the \
            archives under an s3:// prefix (another machine's view).

            Examples:
              sealbak history --plan /etc/sealbak/app.yaml --last 10
              sealbak history --from s3://backups/app/ --json | jq '.records[] | select(.status != "ok")'
            """
    )

    @Option(name: .long, help: ArgumentHelp("The backup plan.", valueName: "FILE"))
    var plan: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Read the run records stored next to the archives under s3://BUCKET/PREFIX/ instead of the local history.",
            valueName: "PREFIX"
        )
    )
    var from: String?

    @OptionGroup(title: "Output") var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp("Only the last N records.", valueName: "N"))
    var last: Int?

    @OptionGroup(title: "Object storage") var s3: S3Options

    func validate() throws {
        if (plan == nil) == (from == nil) {
            throw ValidationError("give --plan FILE (the local history) or --from s3://BUCKET/PREFIX/")
        }
        if let from, !from.hasPrefix("s3://") {
            throw ValidationError("--from takes an s3:// prefix; a plan's local history is read with --plan")
        }
        if let last, last < 1 { throw ValidationError("--last must be at least 1") }
    }

    func run() throws {
        try reportingErrors(json: output.json ? "history" : nil) {
            var records: [RunRecord]
            var note: String?
            var running = false
            if let plan {
                let bp = try BackupPlan.load(plan)
                let (r, bad) = try RunHistory(stateDir: bp.operations.stateDir).read()
                records = r
                if bad > 0 {
                    note =
                        "\(bad) line(s) of \(bp.operations.stateDir)/history.jsonl are not records (torn by a kill "
                        + "or a full disk) and were skipped"
                }
                running = PlanLock.isHeld(stateDir: bp.operations.stateDir)
            } else {
                records = try Self.remote(from!, client: s3.connection().client(for: from!))
                running = true  // another machine's lock cannot be seen from here
            }
            // A run that started but did not end while nothing holds the lock was interrupted (the next run records
            // it).
            if !running {
                for i in records.indices where records[i].status == .running { records[i].status = .interrupted }
            }
            if let last { records = Array(records.suffix(last)) }
            if output.json {
                var doc: [String: Any] = ["records": records.map(JSONOutput.record)]
                if let note { doc["note"] = note }
                JSONOutput.emit("history", doc)
            } else {
                print("started                   kind    status       took     size        archive / error")
                for r in records {
                    let took = r.duration.map { String(format: "%.1fs", $0) } ?? "-"
                    let size = r.size.map(formatBytes) ?? "-"
                    let name = r.archive.map { ($0 as NSString).lastPathComponent } ?? ""
                    var tail = name
                    if let e = r.error { tail += (tail.isEmpty ? "" : ": ") + e }
                    if r.status == .warnings, let w = r.warnings, !w.isEmpty {
                        tail += ": " + w.joined(separator: "; ")
                    }
                    if let d = r.deleted, !d.isEmpty { tail += " (retention deleted \(d.count))" }
                    if r.kind == .drill, let d = r.details {
                        tail += (tail.isEmpty ? "" : "; ") + d.joined(separator: "; ")
                    }
                    let kind = r.kind.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)
                    let status = r.status.rawValue.uppercased().padding(toLength: 11, withPad: " ", startingAt: 0)
                    let tookColumn = took.padding(toLength: 7, withPad: " ", startingAt: 0)
                    let sizeColumn = size.padding(toLength: 10, withPad: " ", startingAt: 0)
                    print(
                        "\(RunClock.iso(r.start))  \(kind)  \(status)  \(tookColumn)  \(sizeColumn)  "
                            + displayMessage(tail)
                    )
                }
            }
            if let note { printError("sealbak: warning: \(note)") }
        }
    }

    /// The records under PREFIX/.sealbak-runs/, oldest first.
    static func remote(_ prefix: String, client: S3Client?) throws -> [RunRecord] {
        guard let client else { return [] }
        let base = try S3Location(url: prefix.hasSuffix("/") ? prefix : prefix + "/", allowEmptyKey: true)
        var out: [RunRecord] = []
        for o in try client.list(bucket: base.bucket, prefix: base.key + ".sealbak-runs/")
        where o.key.hasSuffix(".json") && o.size < 1 << 20 {
            let bytes = try client.getBytes(
                S3Location(bucket: base.bucket, key: o.key),
                range: 0..<o.size,
                etag: o.etag
            )
            if let r = try? JSONDecoder().decode(RunRecord.self, from: Data(bytes)) { out.append(r) }
        }
        return out.sorted { $0.start < $1.start }
    }
}
