import Foundation
import SealbakIO
import SealbakPostgres

/// A MySQL/MariaDB client program.
package struct MySQLTool: Sendable {
    package var path: String
    package var versionText: String
}

/// Finds the dump tool (`mariadb-dump`, `mysqldump`) and the client (`mariadb`, `mysql`), like pg_dump is found:
/// in the directories given (`--mysql-bin`, `SEALBAK_MYSQL_BIN`, colon-separated), then `PATH`. For a MySQL server
/// MySQL's own tools are preferred when present; MariaDB's work with both.
package struct MySQLToolFinder: Sendable {
    package var directories: [String]

    package init(extra: [String] = []) {
        var dirs = extra
        if let env = ProcessInfo.processInfo.environment["SEALBAK_MYSQL_BIN"] {
            dirs += env.split(separator: ":").map(String.init)
        }
        dirs += (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        dirs += ["/usr/bin", "/usr/local/mysql/bin"]
        var seen = Set<String>()
        directories = dirs.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    package enum Role: Sendable {
        case dump, client
        var names: (mariadb: String, mysql: String) {
            self == .dump ? ("mariadb-dump", "mysqldump") : ("mariadb", "mysql")
        }
    }

    /// The first directory holding the tool wins (so `--mysql-bin` does); within it, the flavour's own name first.
    package func find(_ role: Role, flavour: String) throws(SealbakError) -> MySQLTool {
        let n = role.names
        let order = flavour == "MySQL" ? [n.mysql, n.mariadb] : [n.mariadb, n.mysql]
        for dir in directories {
            for name in order {
                let path = dir + "/" + name
                guard FileManager.default.isExecutableFile(atPath: path) else { continue }
                guard let text = Subprocess.output(of: path, ["--version"]) else { continue }
                return MySQLTool(path: path, versionText: text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        throw SealbakError(
            .unavailable,
            "\(order.joined(separator: " or ")) was not found (looked in "
                + "\(directories.prefix(6).joined(separator: ", "))\(directories.count > 6 ? ", …" : "")). Install "
                + "mariadb-client (Debian) or pass --mysql-bin DIR"
        )
    }
}
