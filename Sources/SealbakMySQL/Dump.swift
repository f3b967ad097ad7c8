import Foundation
import SealbakFormat
import SealbakIO
import SealbakPostgres

/// A `--mysql` argument (`URL` or `NAME=URL`) or a plan's `kind: mysql` component.
package struct MySQLSourceSpec: Sendable {
    package var name: String
    package var parameters: MySQLParameters

    package init(name: String, url: String, passwordFile: String?) throws(SealbakError) {
        parameters = try MySQLParameters(url, what: "the url of component \(name)")
        try parameters.fillPassword(file: passwordFile)
        guard parameters.database?.isEmpty == false else {
            throw SealbakError(
                .usage,
                "the url of component \(name) names no database; use mysql://USER@HOST:PORT/DATABASE"
            )
        }
        self.name = name
    }

    package init(argument: String, passwordFile: String?) throws(SealbakError) {
        var text = argument
        var explicitName: String?
        if let eq = argument.firstIndex(of: "="), let scheme = argument.range(of: "://"), eq < scheme.lowerBound {
            explicitName = String(argument[..<eq])
            text = String(argument[argument.index(after: eq)...])
        }
        parameters = try MySQLParameters(text, what: "--mysql \(explicitName.map { $0 + "=" } ?? "")URL")
        try parameters.fillPassword(file: passwordFile)
        guard let db = parameters.database, !db.isEmpty else {
            throw SealbakError(
                .usage,
                "--mysql \(parameters.display): name the database in the URL (mysql://USER@HOST:PORT/DATABASE)"
            )
        }
        let n = explicitName ?? db
        if let problem = EntryName.problem(MySQLComponent.entryName(n)) ?? (n.contains("/") ? "contains /" : nil) {
            throw SealbakError(.usage, "--mysql: \(n) cannot name a component (\(problem)); give NAME=URL")
        }
        name = n
    }
}

/// One database being captured: its facts (read before the dump) and the running dump, whose rows are counted
/// as they pass through (`DumpRowCounter`). The counts, written as the component's second entry, thus describe
/// exactly the dumped bytes, whatever was written to the database meanwhile.
package final class MySQLCapture {
    package let spec: MySQLSourceSpec
    package let facts: MySQLFacts
    private let tool: MySQLTool
    /// Set when the dump stream ended cleanly.
    package private(set) var counts: MySQLCounts?

    package init(_ spec: MySQLSourceSpec, finder: MySQLToolFinder) throws(SealbakError) {
        self.spec = spec
        let c = try MySQLConnection(spec.parameters)
        var f = try MySQLFacts.inspect(c, database: spec.parameters.database ?? "")
        tool = try finder.find(.dump, flavour: f.flavour)
        f.dumpTool = tool.versionText
        facts = f
    }

    package func entries(mtime: Int64) -> [ManifestEntry] {
        MySQLComponent.entries(name: spec.name, source: spec.parameters.display, facts: facts, mtime: mtime)
    }

    /// The dump's arguments: one consistent transaction (InnoDB), routines, triggers, events, binary as hex, utf8mb4.
    static func dumpArguments(_ p: MySQLParameters, optionFile: String) -> [String] {
        ["--defaults-extra-file=" + optionFile] + p.toolArguments + [
            "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
            "--default-character-set=utf8mb4",
            "--quick", "--no-tablespaces", "--", p.database ?? "",
        ]
    }

    /// Starts the dump tool; its output is the dump entry's data.
    package func startDump() throws(SealbakError) -> MySQLDumpStream {
        let options = try OptionFile(password: spec.parameters.password)
        let p = try Subprocess(
            executable: tool.path,
            arguments: Self.dumpArguments(spec.parameters, optionFile: options.path),
            environment: ProcessInfo.processInfo.environment,
            stdin: .null,
            stdout: .pipe
        )
        return MySQLDumpStream(
            p,
            options: options,
            component: spec.name,
            tool: (tool.path as NSString).lastPathComponent
        ) { [weak self] counter in
            guard let self else { return }
            counts = MySQLCounts(counter: counter, facts: facts)
        }
    }
}

/// The output of a running dump tool, counted as it passes. Accepted only if the tool exits 0, the stream starts
/// with a dump header and ends between statements with the `-- Dump completed` line; anything else fails the
/// capture with the tool's own message.
package final class MySQLDumpStream {
    private let process: Subprocess
    private let options: OptionFile
    private let component: String
    private let tool: String
    private var counter = DumpRowCounter()
    private let done: (DumpRowCounter) -> Void

    init(
        _ p: Subprocess,
        options: OptionFile,
        component: String,
        tool: String,
        done: @escaping (DumpRowCounter) -> Void
    ) {
        process = p
        self.options = options
        self.component = component
        self.tool = tool
        self.done = done
    }

    deinit {
        process.kill()
        process.wait()
        options.remove()
    }

    /// Appends the next bytes of the dump to `out`; nothing at its end, after checking how the dump tool ended.
    package func read(into out: inout OutputSpan<UInt8>) throws(SealbakError) {
        let start = out.count
        let n = try process.readOutput(into: &out)
        if n > 0 {
            counter.feed(out.span.extracting(start..<start + n))
            return
        }
        let status = process.wait()
        options.remove()
        guard status.succeeded else {
            let said = process.errorOutput
            throw SealbakError(
                .toolFailed,
                "\(tool) for \(component) failed (\(status))\(said.isEmpty ? "" : ": " + said)"
            )
        }
        guard MySQLCounts.headerLine(counter.firstBytes) != nil else {
            throw SealbakError(
                .toolFailed,
                "\(tool) for \(component) did not write an SQL dump (\(counter.byteCount) bytes without a dump header)"
            )
        }
        if let problem = counter.problem {
            throw SealbakError(
                .toolFailed,
                "\(tool) for \(component) exited successfully, but \(problem) after \(counter.byteCount) bytes"
            )
        }
        let said = process.errorOutput
        if !said.isEmpty {
            FileHandle.standardError.write(Data("sealbak: \(tool) for \(component) said: \(said)\n".utf8))
        }
        done(counter)
    }
}
