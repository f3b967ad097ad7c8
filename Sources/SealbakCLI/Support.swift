import ArgumentParser
import Foundation
import SealbakArchive
import SealbakCompression
import SealbakComponents
import SealbakFormat

#if canImport(Glibc)
import Glibc
#endif

/// Writes a line to standard error (never a secret).
func printError(_ line: String, newline: Bool = true) {
    let s = line + (newline ? "\n" : "")
    _ = s.withCString { write(2, $0, strlen($0)) }
}

/// Runs `body`, printing any error as `sealbak: message` and exiting with its documented status.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as SealbakError {
        // Stopped by a signal: the handler exits with 128 + its number once the cleanups are done.
        if e.code == .interrupted && Interrupts.pending { Interrupts.waitForHandlerExit() }
        // Names inside messages are escaped where they are inserted; this catches any that were not (a message
        // may span lines on purpose, so newlines stay).
        printError("sealbak: " + displayMessage(e.message))
        throw ExitCode(e.code.exitStatus)
    } catch let e as ExitCode {
        throw e
    } catch let e as ValidationError {
        // A usage error found while running (e.g. two password sources): exit 64 like one found while parsing.
        printError("sealbak: \(displayMessage(e.message)); see sealbak help")
        throw ExitCode(64)
    } catch {
        printError("sealbak: internal error: \(error)")
        throw ExitCode(1)
    }
}

struct PasswordOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read the password from the first line of FILE.", valueName: "FILE"))
    var passwordFile: String?

    @Option(name: .long, help: ArgumentHelp("Read the password from the first line of file descriptor N.", valueName: "N"))
    var passwordFd: Int32?

    @Option(name: .long, help: ArgumentHelp("Open with this X25519 identity file (sealbak keygen) instead of a password. Its own password, if any, comes from --password-file, --password-fd, SEALBAK_IDENTITY_PASSWORD or a prompt.", valueName: "FILE"))
    var identity: String?

    func validate() throws {
        if passwordFile != nil && passwordFd != nil { throw ValidationError("give only one of --password-file and --password-fd") }
    }

    /// Whether the user named a password source explicitly (not the prompt).
    var explicitPassword: Bool { passwordFile != nil || passwordFd != nil || getenv("SEALBAK_PASSWORD") != nil }

    /// What opens the archive: the identity when given, else a password.
    func secret(what: String = "password", limits: KDFLimits) throws -> ArchiveSecret {
        if let identity {
            let id = try Identity.load(path: identity, limits: limits) {
                if passwordFile != nil || passwordFd != nil { return try PasswordReader.read(try source(confirm: false), what: "identity password") }
                if getenv("SEALBAK_IDENTITY_PASSWORD") != nil { return try PasswordReader.read(.environment("SEALBAK_IDENTITY_PASSWORD")) }
                return try PasswordReader.read(.prompt(confirm: false), what: "identity password")
            }
            return .identity(id)
        }
        return .password(try PasswordReader.read(try source(confirm: false), what: what))
    }

    func source(confirm: Bool) throws -> PasswordSource {
        if passwordFile != nil && passwordFd != nil { throw SealbakError(.usage, "give only one of --password-file and --password-fd") }
        if let passwordFile { return .file(passwordFile) }
        if let passwordFd { return .fd(passwordFd) }
        if getenv("SEALBAK_PASSWORD") != nil { return .environment("SEALBAK_PASSWORD") }
        return .prompt(confirm: confirm)
    }
}

struct ReadingOptions: ParsableArguments {
    @OptionGroup var s3: S3Options

    @Option(name: .long, help: ArgumentHelp("Refuse key slots whose Argon2id memory exceeds MIB (default 4096).", valueName: "MIB"))
    var maxKdfMemory: UInt32 = 4096

    func validate() throws {
        if maxKdfMemory > 1 << 22 { throw ValidationError("--max-kdf-memory is limited to 4194304 MiB") }
    }

    @Option(name: .long, help: ArgumentHelp("Refuse key slots whose Argon2id passes exceed N (default 10).", valueName: "N"))
    var maxKdfPasses: UInt32 = 10

    @Option(name: .long, help: "Worker threads (default: all cores).")
    var threads: Int?

    var readOptions: ReadOptions {
        var o = ReadOptions()
        o.limits = KDFLimits(maxOpsLimit: maxKdfPasses, maxMemLimitKiB: UInt64(maxKdfMemory) * 1024)
        if let threads { o.threads = max(1, threads) }
        return o
    }
}

/// Opens an archive with a password from the user's chosen source.
func openArchive(_ path: String, password: PasswordOptions, reading: ReadingOptions) throws -> ArchiveReader {
    let input = try InputFile(path: path)
    let secret = try password.secret(limits: reading.readOptions.limits)
    return try ArchiveReader(input: input, secret: secret, options: reading.readOptions)
}

/// A single-line progress display on stderr, only when stderr is a terminal.
final class Progress: @unchecked Sendable {
    private let enabled: Bool
    private let label: String
    private let total: UInt64?
    private var done: UInt64 = 0
    private var lastDraw: Double = 0
    private let start = Date()
    private let lock = NSLock()

    init(label: String, total: UInt64?, quiet: Bool) {
        enabled = !quiet && isatty(2) == 1
        self.label = label
        self.total = total
    }

    func add(_ n: Int) {
        guard enabled else { return }
        lock.withLock {
            done += UInt64(n)
            let now = Date().timeIntervalSince(start)
            if now - lastDraw < 0.1 { return }
            lastDraw = now
            draw(now)
        }
    }

    private func draw(_ elapsed: Double) {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var line = "\r\(label) \(formatBytes(done))"
        if let total, total > 0 {
            let pct = min(100, Int(Double(done) * 100 / Double(total)))
            let width = 24
            let filled = width * pct / 100
            line += " / \(formatBytes(total)) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(pct)%"
        }
        line += "  \(formatBytes(UInt64(rate)))/s   "
        _ = line.withCString { write(2, $0, strlen($0)) }
    }

    func finish() {
        guard enabled else { return }
        _ = "\r\u{1B}[K".withCString { write(2, $0, strlen($0)) }
    }
}

func formatTime(_ unix: Int64) -> String {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
    return f.string(from: Date(timeIntervalSince1970: TimeInterval(unix)))
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
    if upper.hasSuffix("K") || upper.hasSuffix("KIB") { mult = 1 << 10; digits = String(upper.prefix(while: { $0.isNumber })) }
    else if upper.hasSuffix("M") || upper.hasSuffix("MIB") { mult = 1 << 20; digits = String(upper.prefix(while: { $0.isNumber })) }
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
    EngineLog(info: { line in if !quiet { printError("sealbak: " + line) } }, warning: { line in printError("sealbak: warning: " + line) })
}

extension PasswordOptions {
    /// These options, or, when none names a password source, the plan's `identity:` or `password-file:`
    /// (what `run`, `verify --plan` and `drill` open archives with).
    func orPlan(_ bp: BackupPlan?) throws -> PasswordOptions {
        guard let ops = bp?.operations, identity == nil, !explicitPassword else { return self }
        // An identity opens archives without the archive password (its own password, if any: SEALBAK_IDENTITY_PASSWORD).
        if let i = ops.identity { return try PasswordOptions.parse(["--identity", i]) }
        if let f = ops.passwordFile { return try PasswordOptions.parse(["--password-file", f]) }
        return self
    }
}
