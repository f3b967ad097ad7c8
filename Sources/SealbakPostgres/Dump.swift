import Foundation
import SealbakFormat
import SealbakIO

/// A `--postgres` argument: `URL` or `NAME=URL`.
package struct PostgresSourceSpec: Sendable {
    package var name: String
    package var parameters: ConnectionParameters

    /// A named component from a backup plan.
    package init(name: String, url: String, passwordFile: String?) throws(SealbakError) {
        parameters = try ConnectionParameters(url, what: "the url of component \(name)")
        if let passwordFile, parameters["password"] == nil {
            parameters["password"] = try Self.readPasswordFile(passwordFile)
        }
        self.name = name
    }

    /// `NAME=postgresql://…` names the component; otherwise it is named after the database.
    package init(argument: String, passwordFile: String?) throws(SealbakError) {
        var text = argument
        var explicitName: String? = nil
        if let eq = argument.firstIndex(of: "="), let scheme = argument.range(of: "://"), eq < scheme.lowerBound {
            explicitName = String(argument[..<eq])
            text = String(argument[argument.index(after: eq)...])
        }
        parameters = try ConnectionParameters(text, what: "--postgres \(explicitName.map { $0 + "=" } ?? "")URL")
        if let passwordFile, parameters["password"] == nil {
            parameters["password"] = try Self.readPasswordFile(passwordFile)
        }
        guard let n = explicitName ?? parameters.database, !n.isEmpty else {
            throw SealbakError(
                .usage,
                "--postgres \(parameters.display): name the database in the URL (postgresql://HOST/DATABASE) or give "
                    + "NAME=URL"
            )
        }
        if let problem = EntryName.problem(PostgresComponent.entryName(n)) ?? (n.contains("/") ? "contains /" : nil) {
            throw SealbakError(.usage, "--postgres: \(n) cannot name a component (\(problem)); give NAME=URL")
        }
        name = n
    }

    package static func readPasswordFile(_ path: String) throws(SealbakError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SealbakError(.notFound, "cannot read the PostgreSQL password file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }
}

/// One database captured for packing: an open REPEATABLE READ transaction whose exported snapshot the row
/// counts and `pg_dump --snapshot` share, so that the counts describe exactly the dumped data.
package final class PostgresSnapshot {
    package let spec: PostgresSourceSpec
    package private(set) var facts: DatabaseFacts
    private let connection: Connection
    private let snapshotID: String
    private let tool: Tool
    private var closed = false

    /// Connects, opens the snapshot, reads versions, extensions and vector columns, counts every table's rows,
    /// and picks a `pg_dump` at least as new as the server.
    package init(_ spec: PostgresSourceSpec, finder: ToolFinder) throws(SealbakError) {
        self.spec = spec
        let c = try Connection(spec.parameters)
        guard c.serverVersionNumber >= 90200 else {
            throw SealbakError(
                .unavailable,
                "\(spec.parameters.display): PostgreSQL \(c.serverVersionNumber / 10000) is too old; sealbak needs "
                    + "9.2 or newer (snapshot export)"
            )
        }
        try c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        guard let id = try c.value("SELECT pg_export_snapshot()") else {
            throw SealbakError(.unavailable, "\(spec.parameters.display): cannot export a snapshot")
        }
        var f = try DatabaseFacts.inspect(c)
        tool = try finder.find("pg_dump", forServerMajor: f.serverMajor)
        f.dumpTool = tool.versionText
        try f.countRows(c)
        facts = f
        connection = c
        snapshotID = id
    }

    package func entry(mtime: Int64) -> ManifestEntry {
        PostgresComponent.entry(name: spec.name, source: spec.parameters.display, facts: facts, mtime: mtime)
    }

    /// Starts `pg_dump -Fc -Z0 --snapshot=…`; its output is the entry's data.
    package func startDump() throws(SealbakError) -> DumpStream {
        let env = spec.parameters.childEnvironment(base: ProcessInfo.processInfo.environment)
        let args = [
            "--format=custom", "-Z0", "--snapshot=\(snapshotID)", "--no-password",
            "--dbname=" + dbnameConninfo(facts.database),
        ]
        let p = try Subprocess(executable: tool.path, arguments: args, environment: env, stdin: .null, stdout: .pipe)
        return DumpStream(p, component: spec.name)
    }

    /// Ends the snapshot's transaction.
    package func close() {
        if closed { return }
        closed = true
        _ = try? connection.query("COMMIT")
    }
}

/// `dbname='x'` for -d/--dbname, so that a database name with = or :// is not taken for a connection string.
func dbnameConninfo(_ name: String) -> String {
    "dbname='" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
}

/// The output of a running pg_dump. A dump is accepted only if pg_dump exits with status 0 and its output
/// starts with the custom-format magic `PGDMP`; anything else fails the pack with pg_dump's own message.
package final class DumpStream {
    private let process: Subprocess
    private let component: String
    private var head: [UInt8] = []
    package private(set) var bytes: UInt64 = 0

    init(_ p: Subprocess, component: String) {
        process = p
        self.component = component
    }

    deinit {
        process.kill()
        process.wait()
    }

    /// Appends the next bytes of the dump to `out`; nothing at its end, after checking how pg_dump ended.
    package func read(into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        let start = out.count
        let n = try process.readOutput(into: &out)
        if n > 0 {
            if head.count < 5 {
                let new = out.span.extracting(start..<start + min(n, 5 - head.count))
                for i in new.indices { head.append(new[i]) }
            }
            if head.count >= 5 && head != Array("PGDMP".utf8) {
                process.kill()
                throw SealbakError(
                    .toolFailed,
                    "pg_dump for \(component) did not write a custom-format dump (it starts with "
                        + "\(hex(head)))"
                )
            }
            bytes += UInt64(n)
            return
        }
        let status = process.wait()
        guard status.succeeded else {
            let said = process.errorOutput
            throw SealbakError(
                .toolFailed,
                "pg_dump for \(component) failed (\(status))\(said.isEmpty ? "" : ": " + said)"
            )
        }
        guard head == Array("PGDMP".utf8) else {
            throw SealbakError(
                .toolFailed,
                "pg_dump for \(component) exited successfully but wrote \(bytes) bytes, not a custom-format dump"
            )
        }
        let said = process.errorOutput
        if !said.isEmpty {
            FileHandle.standardError.write(Data("sealbak: pg_dump for \(component) said: \(said)\n".utf8))
        }
    }
}
