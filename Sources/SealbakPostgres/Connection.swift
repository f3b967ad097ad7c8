import CLibPQ
import Foundation
import SealbakIO

#if canImport(Glibc)
import Glibc
#endif

/// Connection parameters parsed by libpq from a URL or `key=value` string (`PQconninfoParse`).
///
/// Parameters the string leaves out are filled by libpq from the environment (`PGHOST`, `PGPASSWORD`, …) and
/// `~/.pgpass` when connecting, both here and in the `pg_dump`/`pg_restore` children, which get the same
/// parameters through their environment. The password is never printed: `display` leaves it out.
package struct ConnectionParameters: Sendable {
    /// keyword → value, only those given.
    package private(set) var values: [String: String]
    /// keyword → the environment variable libpq reads it from (e.g. host → PGHOST).
    private let environmentNames: [String: String]

    package init(_ text: String, what: String) throws(SealbakError) {
        var errmsg: UnsafeMutablePointer<CChar>? = nil
        guard let opts = PQconninfoParse(text, &errmsg) else {
            let reason = errmsg.map { String(cString: $0).trimmingTrailingNewlines() } ?? "out of memory"
            if let errmsg { PQfreemem(errmsg) }
            // libpq's message may quote the string, which can hold a password: say only what kind of problem it is.
            throw SealbakError(
                .usage,
                "\(what) is not a valid PostgreSQL URL or connection string (\(Self.redactedReason(reason))). Use "
                    + "postgresql://USER@HOST:PORT/DATABASE"
            )
        }
        defer { PQconninfoFree(opts) }
        var v: [String: String] = [:]
        var env: [String: String] = [:]
        var p = opts
        while let kw = p.pointee.keyword {
            let key = String(cString: kw)
            if let val = p.pointee.val { v[key] = String(cString: val) }
            if let e = p.pointee.envvar { env[key] = String(cString: e) }
            p += 1
        }
        values = v
        environmentNames = env
    }

    static func redactedReason(_ reason: String) -> String {
        // "invalid URI query parameter: "x"" etc.: keep the text before a quote.
        if let q = reason.firstIndex(of: "\"") {
            return String(reason[..<q]).trimmingCharacters(in: CharacterSet(charactersIn: " :"))
        }
        return reason
    }

    package subscript(key: String) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// The database named, else libpq's default (PGDATABASE, else the user name).
    package var database: String? { values["dbname"] ?? getenv("PGDATABASE").map { String(cString: $0) } }

    /// host:port/database for messages and the manifest; never the password.
    package var display: String {
        let host = values["host"] ?? values["hostaddr"] ?? getenv("PGHOST").map { String(cString: $0) } ?? "localhost"
        let port = values["port"] ?? getenv("PGPORT").map { String(cString: $0) } ?? "5432"
        let user = values["user"].map { $0 + "@" } ?? ""
        return "postgresql://\(user)\(host.hasPrefix("/") ? "[\(host)]" : host):\(port)/\(database ?? "")"
    }

    package func with(database: String) -> ConnectionParameters {
        var c = self
        c.values["dbname"] = database
        return c
    }

    /// The environment for a libpq-based child (pg_dump, pg_restore): the same parameters, password included,
    /// through the variables libpq reads. Nothing goes on the command line, where `ps` would show it.
    package func childEnvironment(base: [String: String]) -> [String: String] {
        var env = base
        for (k, v) in values {
            if let name = environmentNames[k] { env[name] = v }
        }
        return env
    }
}

/// One libpq connection, used from a single thread.
package final class Connection {
    private let conn: OpaquePointer
    package let parameters: ConnectionParameters

    /// Connects with a timeout (10 s unless the URL sets `connect_timeout`).
    package init(_ parameters: ConnectionParameters, timeoutSeconds: Int = 10) throws(SealbakError) {
        var params = parameters
        if params["connect_timeout"] == nil { params["connect_timeout"] = String(timeoutSeconds) }
        if params["application_name"] == nil { params["fallback_application_name"] = "sealbak" }
        let keys = Array(params.values.keys)
        let values = keys.map { params.values[$0]! }
        let c: OpaquePointer? = withCStrings(keys) { k in
            withCStrings(values) { v in PQconnectdbParams(k, v, 0) }
        }
        guard let c else {
            throw SealbakError(.unavailable, "\(parameters.display): cannot allocate a PostgreSQL connection")
        }
        if PQstatus(c) != CONNECTION_OK {
            let message = String(cString: PQerrorMessage(c)).trimmingTrailingNewlines()
            PQfinish(c)
            throw SealbakError(
                .unavailable,
                "cannot connect to PostgreSQL at \(parameters.display): \(Self.oneLine(message))\(Self.hint(message))"
            )
        }
        // Server notices ("extension already exists, skipping") are not for the user; libpq would print them.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        conn = c
        self.parameters = parameters
    }

    deinit { PQfinish(conn) }

    static func oneLine(_ s: String) -> String {
        s.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(
            separator: "; "
        )
    }

    static func hint(_ message: String) -> String {
        if message.contains("password authentication failed") || message.contains("no password supplied") {
            return ". Check the password (URL, PGPASSWORD, ~/.pgpass or --postgres-password-file)"
        }
        if message.contains("Connection refused") || message.contains("timeout expired")
            || message.contains("could not translate host name")
        {
            return ". Is the server running and the host and port right?"
        }
        if message.contains("does not exist") { return ". Check the database and role names" }
        return ""
    }

    package var serverVersionNumber: Int { Int(PQserverVersion(conn)) }

    /// Runs one statement with text parameters; returns the rows as text (nil for SQL NULL).
    @discardableResult
    package func query(_ sql: String, _ params: [String?] = []) throws(SealbakError) -> [[String?]] {
        let res: OpaquePointer? = withOptionalCStrings(params) { p in
            PQexecParams(conn, sql, Int32(params.count), nil, p, nil, nil, 0)
        }
        guard let res else {
            throw SealbakError(.unavailable, "\(parameters.display): out of memory or connection lost")
        }
        defer { PQclear(res) }
        let status = PQresultStatus(res)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            let message = String(cString: PQresultErrorMessage(res)).trimmingTrailingNewlines()
            let sqlstate = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
            throw QueryError(
                sqlstate: sqlstate,
                message: Self.oneLine(message.isEmpty ? String(cString: PQerrorMessage(conn)) : message)
            ).wrapped(parameters.display)
        }
        let rows = Int(PQntuples(res))
        let cols = Int(PQnfields(res))
        var out: [[String?]] = []
        out.reserveCapacity(rows)
        for r in 0..<rows {
            var row: [String?] = []
            row.reserveCapacity(cols)
            for c in 0..<cols {
                if PQgetisnull(res, Int32(r), Int32(c)) != 0 {
                    row.append(nil)
                } else {
                    row.append(String(cString: PQgetvalue(res, Int32(r), Int32(c))))
                }
            }
            out.append(row)
        }
        return out
    }

    /// The single value of a one-row, one-column query.
    package func value(_ sql: String, _ params: [String?] = []) throws(SealbakError) -> String? {
        let rows = try query(sql, params)
        return rows.first?.first ?? nil
    }
}

/// A failed statement; `wrapped` turns it into the user-facing error (permission problems are `unavailable`).
struct QueryError: Error {
    var sqlstate: String
    var message: String

    func wrapped(_ place: String) -> SealbakError {
        if sqlstate == "42501" {
            return SealbakError(
                .unavailable,
                "\(place): \(message). The role lacks a right sealbak needs; grant it or connect as a role that has it"
            )
        }
        return SealbakError(.unavailable, "\(place): \(message)")
    }
}

/// Quotes an SQL identifier ("a""b").
package func quoteIdentifier(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

/// Quotes an SQL string literal ('it''s').
package func quoteLiteral(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let dup = strings.map { strdup($0) }
    defer { for p in dup { free(p) } }
    return body(dup.map { UnsafePointer($0) } + [nil])
}

func withOptionalCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let dup = strings.map { $0.map { strdup($0) } ?? nil }
    defer { for p in dup { free(p) } }
    return body(dup.map { UnsafePointer($0) })
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = self
        while s.last == "\n" || s.last == "\r" { s.removeLast() }
        return s
    }

}
