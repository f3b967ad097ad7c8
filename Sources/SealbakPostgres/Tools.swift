import Foundation
import SealbakIO

/// A PostgreSQL client program and its version.
package struct Tool: Sendable {
    package var path: String
    package var major: Int
    package var versionText: String
}

/// Finds `pg_dump` / `pg_restore` whose major version suits a server.
///
/// Looked for, in order: the directories given (`--pg-bin`, `SEALBAK_PG_BIN`, colon-separated), `PATH`, and
/// Debian's `/usr/lib/postgresql/N/bin`. Among those with a major version at least the one needed, the lowest
/// wins (the closest match to the server); a tool older than the server is never used, as pg_dump itself refuses.
package struct ToolFinder: Sendable {
    package var directories: [String]

    package init(extra: [String] = []) {
        var dirs = extra
        if let env = ProcessInfo.processInfo.environment["SEALBAK_PG_BIN"] {
            dirs += env.split(separator: ":").map(String.init)
        }
        dirs += (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        let debian = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        dirs += debian.compactMap { Int($0) }.sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }
        dirs += ["/usr/local/pgsql/bin"]
        var seen = Set<String>()
        directories = dirs.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    /// Every `name` found, with its version.
    package func candidates(_ name: String) -> [Tool] {
        var out: [Tool] = []
        var seenReal = Set<String>()
        for dir in directories {
            let path = dir + "/" + name
            guard FileManager.default.isExecutableFile(atPath: path) else { continue }
            let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            guard seenReal.insert(real).inserted else { continue }
            guard let text = Subprocess.output(of: path, ["--version"]), let major = Self.major(text) else { continue }
            out.append(
                Tool(path: path, major: major, versionText: text.trimmingCharacters(in: .whitespacesAndNewlines))
            )
        }
        return out
    }

    /// "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" → 15; "pg_dump (PostgreSQL) 9.6.24" → 9.
    static func major(_ versionText: String) -> Int? {
        guard let r = versionText.range(of: ") ") else { return nil }
        let digits = versionText[r.upperBound...].prefix { $0.isNumber }
        return Int(digits)
    }

    /// The tool to use for a server of major version `serverMajor` (and at least `atLeast`).
    package func find(_ name: String, forServerMajor serverMajor: Int, atLeast: Int = 0) throws(SealbakError) -> Tool {
        let need = max(serverMajor, atLeast)
        let all = candidates(name)
        if let best = all.filter({ $0.major >= need }).min(by: { $0.major < $1.major }) { return best }
        let found =
            all.isEmpty
            ? "none was found" : "found only " + all.map { "\($0.path) (\($0.major))" }.joined(separator: ", ")
        throw SealbakError(
            .unavailable,
            "\(name) version \(need) or newer is needed (server version \(serverMajor)); \(found). Install "
                + "postgresql-client-\(need) or pass --pg-bin DIR with a newer \(name)"
        )
    }
}
