import ArgumentParser
import Foundation
import SealbakArchive
import SealbakComponents
import SealbakCompression
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakS3
import SealbakSync

#if canImport(Glibc)
import Glibc
#endif

/// Writes a line to standard error (never a secret).
func printError(_ line: String, newline: Bool = true) {
    Progress.clearLine()
    let s = line + (newline ? "\n" : "")
    _ = s.withCString { write(2, $0, strlen($0)) }
}

/// Runs `body`, printing any error as `sealbak: message` and exiting with its documented status.
/// With `json` (the command's name, when --json was given), a failure is also one JSON document on stdout
/// (docs/json.md "errors"), so a script reading stdout learns the exit code and message too.
func reportingErrors(json: String? = nil, _ body: () throws -> Void) throws {
    func fail(_ code: Int32, _ message: String) -> ExitCode {
        printError("sealbak: " + message)
        if let json { JSONOutput.error(json, code: code, message: message) }
        return ExitCode(code)
    }
    do {
        try body()
    } catch let e as SealbakError {
        // Stopped by a signal: the handler exits with 128 + its number once the cleanups are done. Any error after a
        // signal is waited out too: it may come from those cleanups (a staging folder removed under a file being
        // created in it), and reporting it would race the handler's exit (seen once under ThreadSanitizer).
        if Interrupts.pending { Interrupts.waitForHandlerExit() }
        // Names inside messages are escaped where they are inserted; this catches any that were not (a message
        // may span lines on purpose, so newlines stay).
        throw fail(e.code.exitStatus, displayMessage(e.message))
    } catch let e as ExitCode {
        throw e
    } catch let e as ValidationError {
        // A usage error found while running (e.g. two password sources): exit 64 like one found while parsing.
        throw fail(64, "\(displayMessage(e.message)); see sealbak help")
    } catch {
        throw fail(1, "internal error: \(error)")
    }
}

struct PasswordOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read the password from the first line of FILE.", valueName: "FILE"))
    var passwordFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Read the password from the first line of file descriptor N.", valueName: "N")
    )
    var passwordFd: Int32?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Read the password from the first line printed by CMD (run with sh -c; it must exit 0), e.g. 'pass show "
                + "backup'.",
            valueName: "CMD"
        )
    )
    var passwordCommand: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Open with this identity file (sealbak keygen) instead of a password.", valueName: "FILE")
    )
    var identity: String?

    func validate() throws {
        if [passwordFile != nil, passwordFd != nil, passwordCommand != nil].filter({ $0 }).count > 1 {
            throw ValidationError("give only one of --password-file, --password-fd and --password-command")
        }
    }

    /// Whether a password source was named explicitly (not the prompt).
    var explicitPassword: Bool { !((try? source(confirm: false))?.isPrompt ?? true) }

    /// Refuses --identity on a command that does not open an archive with it (it would be silently ignored).
    func refuseIdentity(_ hint: String) throws {
        if identity != nil { throw SealbakError(.usage, "--identity does not apply here: \(hint)") }
    }

    /// What opens the archive: the identity when given, else a password.
    func secret(what: String = "password", limits: KDFLimits) throws -> ArchiveSecret {
        if let identity {
            let id = try Identity.load(path: identity, limits: limits) {
                try PasswordReader.read(try identitySource(confirm: false), what: "identity password")
            }
            return .identity(id)
        }
        return .password(try PasswordReader.read(try source(confirm: false), what: what))
    }

    /// Whether a wrong password (or identity password) would be asked for again: only when it comes from the prompt.
    var prompts: Bool {
        ((try? identity == nil ? source(confirm: false) : identitySource(confirm: false))?.isPrompt) ?? false
    }

    /// An identity file's own password: the password options, else SEALBAK_IDENTITY_PASSWORD, else the terminal.
    func identitySource(confirm: Bool) throws -> PasswordSource {
        if let s = try flagSource() { return s }
        if getenv("SEALBAK_IDENTITY_PASSWORD") != nil { return .environment("SEALBAK_IDENTITY_PASSWORD") }
        return .prompt(
            confirm: confirm,
            alternatives: "--password-file FILE, --password-fd N, --password-command CMD or SEALBAK_IDENTITY_PASSWORD"
        )
    }

    /// The source named by a flag, if any.
    func flagSource() throws -> PasswordSource? {
        try validate()
        if let passwordFile { return .file(passwordFile) }
        if let passwordFd { return .fd(passwordFd) }
        if let passwordCommand { return .command(passwordCommand) }
        return nil
    }

    /// Runs `body` with the secret; on a terminal, a wrong password is asked for again (three tries in all, like sudo).
    /// `retry` is false where the archive cannot be read twice (standard input).
    func withSecret<T>(
        what: String = "password",
        limits: KDFLimits,
        retry: Bool = true,
        _ body: (ArchiveSecret) throws -> T
    ) throws -> T {
        var tries = 0
        while true {
            tries += 1
            do {
                return try body(try secret(what: what, limits: limits))
            } catch let e as SealbakError where e.code == .wrongPassword && retry && prompts && tries < 3 {
                printError("sealbak: \(displayMessage(e.message)); try again")
            }
        }
    }

    /// The first source given: --password-file, --password-fd, --password-command, SEALBAK_PASSWORD,
    /// SEALBAK_PASSWORD_FILE, SEALBAK_PASSWORD_COMMAND; else the terminal.
    func source(confirm: Bool) throws -> PasswordSource {
        if let s = try flagSource() { return s }
        if getenv("SEALBAK_PASSWORD") != nil { return .environment("SEALBAK_PASSWORD") }
        if let file = getenv("SEALBAK_PASSWORD_FILE") { return .file(String(cString: file)) }
        if let command = getenv("SEALBAK_PASSWORD_COMMAND") { return .command(String(cString: command)) }
        return .prompt(confirm: confirm)
    }
}

/// `--json` (one document on stdout, docs/json.md) and `--progress` (with --json: progress as JSON lines on stderr).
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON document on standard output (docs/json.md) instead of text.")
    var json = false

    @Flag(name: .long, help: "With --json: report progress as JSON lines on standard error.")
    var progress = false

    /// Set by the command that owns these options (the `command` field of its documents).
    var command = ""

    enum CodingKeys: CodingKey { case json, progress }

    func validate() throws {
        if progress && !json {
            throw ValidationError("--progress goes with --json (on a terminal, progress is shown without it)")
        }
    }

    func named(_ name: String) -> OutputOptions {
        var o = self
        o.command = name
        return o
    }
}

struct ReadingOptions: ParsableArguments {
    @OptionGroup(title: "Object storage") var s3: S3Options

    @Option(
        name: .long,
        help: ArgumentHelp("Refuse key slots whose Argon2id memory exceeds MIB (default 4096).", valueName: "MIB")
    )
    var maxKdfMemory: UInt32 = 4096

    func validate() throws {
        if maxKdfMemory > 1 << 22 { throw ValidationError("--max-kdf-memory is limited to 4194304 MiB") }
    }

    @Option(
        name: .long,
        help: ArgumentHelp("Refuse key slots whose Argon2id passes exceed N (default 10).", valueName: "N")
    )
    var maxKdfPasses: UInt32 = 10

    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where an incremental archive's chain (the archives it builds on) is: a folder or s3:// prefix (default: "
                + "the archive's own).",
            valueName: "LOCATION"
        )
    )
    var chainFrom: String?

    /// Where this command's archive names are: local files, and `s3://` objects through these options' storage.
    var locations: ArchiveLocations { s3.connection().locations }

    var readOptions: ReadOptions {
        var o = ReadOptions()
        o.limits = KDFLimits(maxOpsLimit: maxKdfPasses, maxMemLimitKiB: UInt64(maxKdfMemory) * 1024)
        if let threads { o.threads = max(1, threads) }
        return o
    }
}

/// Opens the archive `path` (in `locations`) with a password from the user's chosen source (asked again on a
/// terminal when wrong), and the chain of an incremental archive.
func openArchive(
    _ path: String,
    in locations: ArchiveLocations,
    password: PasswordOptions,
    reading: ReadingOptions
) throws -> ArchiveReader {
    try password.withSecret(limits: reading.readOptions.limits, retry: path != "-") { secret in
        let reader = try ArchiveReader(input: try locations.input(path), secret: secret, options: reading.readOptions)
        // A chained archive reads its content through its chain (Spec §14.5): opened now, so that a missing or wrong
        // base fails before anything is written.
        if reader.isChained {
            try reader.attachChain(catalog: chainCatalog(for: path, chain: reading.chainFrom, reading: reading)) {
                name,
                input in
                do {
                    return try ArchiveReader(input: input, secret: secret, options: reading.readOptions)
                } catch let e as SealbakError {
                    throw SealbakError(e.code, "base of \(path) in the chain: \(e.message)", formatClass: e.formatClass)
                }
            }
        }
        return reader
    }
}

/// Where the chain of the incremental archive `path` is looked for: `--chain-from`, else the folder or prefix that
/// holds
/// the archive (nothing for standard input).
func chainCatalog(for path: String, chain: String?, reading: ReadingOptions) -> ChainCatalog? {
    let location: String
    if let chain {
        location = chain
    } else if path == "-" {
        return nil
    } else if ArchiveLocations.isRemote(path) {
        location = String(path[...path.lastIndex(of: "/")!])
    } else {
        let dir = (path as NSString).deletingLastPathComponent
        location = dir.isEmpty ? "." : dir
    }
    let connection = reading.s3.connection()
    return ChainCatalog(
        location: location,
        list: {
            try Catalog.list(location, client: try connection.client(for: location)).compactMap { item in
                item.header.map { (item.location, $0.archiveID) }
            }
        },
        open: { name in try connection.locations.input(name) }
    )
}

/// A single-line progress display on stderr, only when stderr is a terminal: bytes (of the total when known), a bar
/// and percentage, rate, elapsed time, ETA, items done and the current item. Redrawn at most four times a second,
/// cut to the terminal's width (a wrapped line could not be redrawn in place), and cleared before any other line
/// sealbak prints (`printError` calls `Progress.clearLine`), so messages never land on top of it.
final class Progress: Sendable {
    private struct State {
        var total: UInt64?
        var done: UInt64 = 0
        var items = 0
        var current = ""
        var lastDraw = -1.0
    }
    /// The progress whose line is on the screen. Always taken before a progress's own `state` (never the other way
    /// round), so drawing and clearing cannot interleave or deadlock.
    private static let screen = Locked<Progress?>(nil)
    /// Seconds between redraws (SEALBAK_PROGRESS_INTERVAL; tests set 0 to see every update).
    private static let interval =
        ProcessInfo.processInfo.environment["SEALBAK_PROGRESS_INTERVAL"].flatMap(Double.init) ?? 0.25

    private let enabled: Bool
    /// `--json --progress`: JSON lines on stderr (docs/json.md "progress") instead of the terminal line.
    private let jsonCommand: String?
    private let label: String
    private let state: Locked<State>
    private let start = Date()

    init(label: String, total: UInt64?, quiet: Bool, json: OutputOptions? = nil) {
        jsonCommand = json?.progress == true ? json?.command : nil
        enabled = jsonCommand != nil || (!quiet && json?.json != true && isatty(2) == 1)
        self.label = label
        state = Locked(State(total: total))
    }

    func add(_ n: Int) {
        guard enabled else { return }
        Self.screen.withLock { drawn in
            state.withLock { s in
                s.done += UInt64(n)
                drawIfDue(&s, &drawn)
            }
        }
    }

    /// A new item (file, entry, component) begins.
    func item(_ name: String) {
        guard enabled else { return }
        Self.screen.withLock { drawn in
            state.withLock { s in
                s.items += 1
                s.current = jsonCommand == nil ? displayName(name) : name
                drawIfDue(&s, &drawn)
            }
        }
    }

    private func drawIfDue(_ s: inout State, _ drawn: inout Progress?) {
        let now = Date().timeIntervalSince(start)
        if s.lastDraw >= 0 && now - s.lastDraw < Self.interval { return }
        s.lastDraw = now
        if let jsonCommand {
            var doc: [String: Any] = [
                "schema": JSONOutput.schema, "command": jsonCommand, "type": "progress",
                "bytes_done": s.done, "items_done": s.items, "elapsed_seconds": (now * 1000).rounded() / 1000,
            ]
            if !s.current.isEmpty { doc["current"] = s.current }
            if let total = s.total, total >= s.done {
                doc["bytes_total"] = total
                if s.done > 0 && now > 0 {
                    doc["eta_seconds"] = (Double(total - s.done) / (Double(s.done) / now) * 10).rounded() / 10
                }
            }
            let text = JSONOutput.line(doc) + "\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            return
        }
        // A total that turned out too small (a stream whose size was not known) is dropped, never shown as 300%.
        if let t = s.total, s.done > t { s.total = nil }
        let done = s.done
        var parts = ["\(label) \(formatBytes(done))"]
        if let total = s.total, total > 0 {
            parts[0] += " / \(formatBytes(total))"
            parts.append("\(Int(Double(done) * 100 / Double(total)))%")
        }
        let rate = now > 0 ? Double(done) / now : 0
        parts.append("\(formatBytes(UInt64(rate)))/s")
        var time = formatDuration(now)
        if let total = s.total, rate > 0, now >= 2, done < total {
            time += ", ETA " + formatDuration(Double(total - done) / rate)
        }
        parts.append(time)
        if s.items > 0 { parts.append("\(s.items) item\(s.items == 1 ? "" : "s")") }
        var line = parts.joined(separator: "  ")
        let width = Self.terminalWidth() - 1
        if line.count > width { line = String(line.prefix(max(0, width - 1))) + "…" }
        // The current item in what is left, its end kept (the file name says more than the top folder).
        let room = width - line.count - 2
        if !s.current.isEmpty && room >= 8 {
            line += "  " + (s.current.count <= room ? s.current : "…" + s.current.suffix(room - 1))
        }
        drawn = self
        let text = "\r\u{1B}[K" + line
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    func finish() {
        guard enabled else { return }
        Self.screen.withLock { drawn in
            state.withLock { s in
                if jsonCommand != nil && s.lastDraw != .infinity {
                    s.lastDraw = -1  // the last line, with the final counts
                    drawIfDue(&s, &drawn)
                }
                if drawn === self { Self.erase(&drawn) }
                s.lastDraw = .infinity  // nothing after the end
            }
        }
    }

    /// Clears a drawn progress line before another line is printed; it comes back at its next update.
    static func clearLine() {
        screen.withLock { drawn in
            guard let p = drawn else { return }
            erase(&drawn)
            p.state.withLock { $0.lastDraw = -1 }
        }
    }

    private static func erase(_ drawn: inout Progress?) {
        _ = "\r\u{1B}[K".withCString { write(2, $0, strlen($0)) }
        drawn = nil
    }

    private static func terminalWidth() -> Int {
        var ws = winsize()
        return ioctl(2, UInt(TIOCGWINSZ), &ws) == 0 && ws.ws_col > 0 ? Int(ws.ws_col) : 80
    }
}

/// A duration for people: 0.4 s, 12 s, 3:05, 1:02:03.
func formatDuration(_ seconds: Double) -> String {
    if seconds < 10 { return String(format: "%.1f s", seconds) }
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s) s" }
    if s < 3600 { return String(format: "%d:%02d", s / 60, s % 60) }
    return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
}

extension ProgressTap {
    /// A tap that shows each entry's name and bytes on `progress`.
    convenience init(_ sink: any EntrySink, manifest: Manifest, progress: Progress) {
        self.init(sink, begin: { progress.item(manifest.entries[$0].name) }, bytes: { progress.add($0) })
    }
}

func formatTime(_ unix: Int64) -> String {
    // gmtime_r, not a DateFormatter: `list` formats a time per entry, and making a formatter for each took 77% of
    // listing 7,600 entries (1.2 s).
    var t = time_t(unix)
    var tm = tm()
    guard gmtime_r(&t, &tm) != nil else { return "?" }
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let year = Int(tm.tm_year) + 1900
    let y = year >= 0 && year < 1000 ? String(repeating: "0", count: 4 - "\(year)".count) + "\(year)" : "\(year)"
    return "\(y)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday)) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
}

enum CipherChoice: String, ExpressibleByArgument, CaseIterable {
    case xchacha20poly1305 = "xchacha20-poly1305"
    case aes256gcm = "aes-256-gcm"
}

enum CompressionChoice: String, ExpressibleByArgument, CaseIterable {
    case zstd, zlib, none
}

/// Parses sizes like 4096, 64K, 1M, 16M.
func parseSize(_ s: String) -> Int? {
    let upper = s.uppercased()
    var digits = upper
    var mult = 1
    if upper.hasSuffix("K") || upper.hasSuffix("KIB") {
        mult = 1 << 10
        digits = String(upper.prefix(while: { $0.isNumber }))
    } else if upper.hasSuffix("M") || upper.hasSuffix("MIB") {
        mult = 1 << 20
        digits = String(upper.prefix(while: { $0.isNumber }))
    }
    guard let n = Int(digits) else { return nil }
    return n * mult
}

/// Exit statuses of a pack that wrote an archive but not everything (docs/exit-codes.md).
enum ExitStatus {
    /// A component was skipped or failed (allow-missing); the archive records which.
    static let skippedComponents: Int32 = 15
    /// Files changed while they were read; the archive records which.
    static let completedWithWarnings: Int32 = 16
}

/// The engine's log on stderr (warnings even with --quiet).
func engineLog(quiet: Bool) -> EngineLog {
    EngineLog(
        info: { line in if !quiet { printError("sealbak: " + line) } },
        warning: { line in printError("sealbak: warning: " + line) }
    )
}

extension PasswordOptions {
    /// These options, or, when none names a password source, the plan's `identity:` or `password-file:`
    /// (what `run`, `verify --plan` and `drill` open archives with).
    func orPlan(_ bp: BackupPlan?) throws -> PasswordOptions {
        guard let ops = bp?.operations, identity == nil, !explicitPassword else { return self }
        // An identity opens archives without the archive password (its own password, if any:
        // SEALBAK_IDENTITY_PASSWORD).
        if let i = ops.identity { return try PasswordOptions.parse(["--identity", i]) }
        if let f = ops.passwordFile { return try PasswordOptions.parse(["--password-file", f]) }
        return self
    }
}
