import ArgumentParser
import CSealbakShims
import SealbakIO

#if canImport(Glibc)
import Glibc
#endif

@main
struct Sealbak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sealbak",
        abstract: "One encrypted, self-verifying file that holds your AI application's state and restores it.",
        discussion: """
            Exit codes: 0 ok, 1 internal error, 64 usage, 3 wrong password, 4 corrupted or tampered archive,
            5 truncated archive, 6 unsupported (newer format, cipher or KDF cost), 7 target exists, 8 I/O error,
            9 not found, 10 wrong identity, 11 component unavailable, 12 pg_dump/pg_restore failed,
            13 restore does not match the archive, 14 object storage refused the credentials, 15/16 written with skipped
            components / changed files, 17 another run of the plan is in progress, 18 status: unhealthy. \
            See docs/exit-codes.md.
            """,
        version: sealbakVersion,
        subcommands: [
            Pack.self, Unpack.self, Cat.self, Restore.self, List.self, Verify.self, Inspect.self, Key.self,
            RekeyCommand.self, Keygen.self, Ls.self, Prune.self,
            RunCommand.self, HistoryCommand.self, StatusCommand.self, DrillCommand.self, Schedule.self,
            ConsolidateCommand.self,
        ]
    )

    static func main() {
        // Passwords and keys live in wiped, mlocked memory; a core dump could still catch one in transit.
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
        // Two malloc arenas, not glibc's 8 per core: buffers are allocated on one thread and freed on another (frames,
        // chunk lists), and with an arena per thread the freed pages stayed with the process. Measured on a 16 GiB
        // chain's verify: peak RSS 105 MiB with the default, 81 MiB with 2, 76 MiB with 1, all in 8.5 s. The
        // environment's MALLOC_ARENA_MAX wins when set.
        if getenv("MALLOC_ARENA_MAX") == nil { _ = sealbak_limit_malloc_arenas(2) }
        Interrupts.install()
        if let problem = unknownSubcommand(Array(CommandLine.arguments.dropFirst())) {
            printError("sealbak: " + problem)
            Glibc.exit(64)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

let sealbakVersion = "0.1.0"

/// A command word that names no subcommand, with the closest ones (`sealbak pakc` → "did you mean pack?"); nil when
/// the words are fine (the parser then handles options and arguments). `help WORD…` is checked the same way.
func unknownSubcommand(_ args: [String]) -> String? {
    var words = args
    var path = ["sealbak"]
    if words.first == "help" { words.removeFirst() }
    var command: any ParsableCommand.Type = Sealbak.self
    for word in words {
        let subs = command.configuration.subcommands
        if subs.isEmpty || word.hasPrefix("-") { return nil }
        let names = subs.flatMap { [$0._commandName] + $0.configuration.aliases }
        if let next = subs.first(where: { $0._commandName == word || $0.configuration.aliases.contains(word) }) {
            command = next
            path.append(word)
            continue
        }
        let close = names.map { ($0, editDistance($0, word)) }.filter {
            $0.1 <= max(1, word.count / 3) || $0.0.hasPrefix(word)
        }
        .sorted { $0.1 < $1.1 }.map(\.0)
        let guess =
            close.isEmpty
            ? ""
            : "; did you mean "
                + "\(close.prefix(3).map { "\(path.joined(separator: " ")) \($0)" }.joined(separator: " or "))?"
        return
            "\(path.joined(separator: " ")) has no command \(displayName(word))\(guess) (commands: "
            + "\(names.joined(separator: ", ")))"
    }
    return nil
}

/// Levenshtein distance with transpositions counted as one edit (pakc → pack is 1).
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a)
    let y = Array(b)
    if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
    var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
    for i in 0...x.count { d[i][0] = i }
    for j in 0...y.count { d[0][j] = j }
    for i in 1...x.count {
        for j in 1...y.count {
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            if i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] {
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
            }
        }
    }
    return d[x.count][y.count]
}
