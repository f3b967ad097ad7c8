import Foundation
import SealbakIO

#if canImport(Glibc)
import Glibc
#endif

/// Where a MySQL/MariaDB database is: `mysql://USER[:PASS]@HOST:PORT/DB` (or `mariadb://`), with an optional
/// `?socket=PATH`.
///
/// The password comes from, in this order: the URL, a password file (`--mysql-password-file`, first line),
/// `MYSQL_PWD`, and the `[client]` group of the option files the client library and tools read themselves
/// (`~/.my.cnf`). It is never printed (`display` leaves it out) and never put on a command line: the tools get
/// it through a private option file (`OptionFile`).
package struct MySQLParameters: Sendable {
    package var user: String?
    package var password: String?
    package var host: String
    package var port: Int
    package var database: String?
    package var socket: String?

    package init(_ text: String, what: String) throws(SealbakError) {
        let lower = text.lowercased()
        guard lower.hasPrefix("mysql://") || lower.hasPrefix("mariadb://") else {
            throw SealbakError(
                .usage,
                "\(what) is not a MySQL URL; use mysql://USER@HOST:PORT/DATABASE (or mariadb://…)"
            )
        }
        // URLComponents rejects some unencoded characters; its message could quote the password, so only say what is
        // expected.
        guard let c = URLComponents(string: text), let host = c.host else {
            throw SealbakError(
                .usage,
                "\(what) is not a valid MySQL URL (percent-encode special characters in the user and password); use "
                    + "mysql://USER@HOST:PORT/DATABASE"
            )
        }
        user = c.user.flatMap { $0.isEmpty ? nil : $0 }
        password = c.password
        self.host = host.isEmpty ? "localhost" : host
        port = c.port ?? 3306
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        database = path.isEmpty ? nil : path
        for q in c.queryItems ?? [] {
            switch q.name {
            case "socket": socket = q.value
            default: throw SealbakError(.usage, "\(what): unknown URL parameter \(q.name) (sealbak knows socket=PATH)")
            }
        }
    }

    /// Fills a missing password from `file` (its first line), else from `MYSQL_PWD`; with neither, the option files
    /// (`~/.my.cnf`) may still provide one.
    package mutating func fillPassword(file: String?) throws(SealbakError) {
        guard password == nil else { return }
        if let file {
            password = try Self.readPasswordFile(file)
            return
        }
        if let env = ProcessInfo.processInfo.environment["MYSQL_PWD"] { password = env }
    }

    package static func readPasswordFile(_ path: String) throws(SealbakError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SealbakError(.notFound, "cannot read the MySQL password file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    /// `mysql://user@host:port/db` for messages and the manifest; never the password.
    package var display: String {
        let userPart = user.map { $0 + "@" } ?? ""
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let socketPart = socket.map { "?socket=" + $0 } ?? ""
        return "mysql://\(userPart)\(hostPart):\(port)/\(database ?? "")\(socketPart)"
    }

    /// `user@host:port/db`, as errors name a connection.
    package var place: String { "\(user ?? "?")@\(host):\(port)/\(database ?? "")" }

    package func with(database: String?) -> MySQLParameters {
        var c = self
        c.database = database
        return c
    }

    /// The connection options for a client tool (after `--defaults-extra-file`): host, port, user, socket.
    /// The password is not among them.
    var toolArguments: [String] {
        var a = ["--host=" + host, "--port=\(port)"]
        if let user { a.append("--user=" + user) }
        if let socket { a.append("--socket=" + socket) } else if host != "localhost" { a.append("--protocol=TCP") }
        return a
    }
}

/// A private option file (`--defaults-extra-file`) holding the password for a client tool: mode 0600 in a
/// 0700 temporary folder, removed when the tool has read it (`remove`) or when this object goes away.
package final class OptionFile {
    package let path: String
    private let dir: String

    package init(password: String?) throws(SealbakError) {
        var template = Array((NSTemporaryDirectory() + "sealbak-my.XXXXXX").utf8CString)
        guard let d = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SealbakError.io(
                "cannot create a private folder for the MySQL option file in",
                path: NSTemporaryDirectory(),
                errno: errno
            )
        }
        dir = String(cString: d)
        path = dir + "/client.cnf"
        var text = "[client]\n"
        if let password { text += "password=" + Self.quoted(password) + "\n" }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            rmdir(dir)
            throw SealbakError.io("cannot create the MySQL option file", path: path, errno: e)
        }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard n == bytes.count else {
            remove()
            throw SealbakError.io("cannot write the MySQL option file", path: path, errno: errno)
        }
    }

    /// An option-file value: quoted, with \ and the quote escaped.
    static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    package func remove() {
        unlink(path)
        rmdir(dir)
    }

    deinit { remove() }
}
