import ArgumentParser
import SealbakArchive

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
            components / changed files, 17 another run of the plan is in progress, 18 status: unhealthy. See docs/exit-codes.md.
            """,
        version: sealbakVersion,
        subcommands: [Pack.self, Unpack.self, Restore.self, List.self, Verify.self, Inspect.self, Key.self, RekeyCommand.self, Keygen.self, Ls.self, Prune.self,
                      RunCommand.self, HistoryCommand.self, StatusCommand.self, DrillCommand.self]
    )

    static func main() {
        // Passwords and keys live in wiped, mlocked memory; a core dump could still catch one in transit.
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
        Interrupts.install()
        RemoteStorage.install(LazyS3Storage())
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

let sealbakVersion = "0.1.0"
