internal import CMariaDB
import Foundation
import SealbakIO

/// One MariaDB Connector/C connection (speaks to MySQL and MariaDB), used from a single thread.
///
/// Connects with a timeout, in utf8mb4, and with `MYSQL_READ_DEFAULT_GROUP client` so that the option files the
/// tools read (`~/.my.cnf`) also give the library a password the other sources did not. Errors name
/// `user@host:port/db` and what to check; they never hold the password (the server's messages do not either).
package final class MySQLConnection {
    private let handle: UnsafeMutablePointer<MYSQL>
    package let parameters: MySQLParameters

    /// - Parameters:
    ///   - connectTimeout: seconds to reach the server.
    ///   - readTimeout: seconds a single result may take (row counts of big tables take a while).
    package init(
        _ parameters: MySQLParameters,
        connectTimeout: UInt32 = 10,
        readTimeout: UInt32 = 3600
    ) throws(SealbakError) {
        guard let h = mysql_init(nil) else {
            throw SealbakError(.unavailable, "\(parameters.place): cannot allocate a MySQL connection")
        }
        var ct = connectTimeout
        var rt = readTimeout
        var wt = readTimeout
        mysql_options(h, MYSQL_OPT_CONNECT_TIMEOUT, &ct)
        mysql_options(h, MYSQL_OPT_READ_TIMEOUT, &rt)
        mysql_options(h, MYSQL_OPT_WRITE_TIMEOUT, &wt)
        mysql_options(h, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        mysql_options(h, MYSQL_READ_DEFAULT_GROUP, "client")
        if parameters.socket == nil && parameters.host != "localhost" {
            var proto = UInt32(MYSQL_PROTOCOL_TCP.rawValue)
            mysql_options(h, MYSQL_OPT_PROTOCOL, &proto)
        }
        let ok = mysql_real_connect(
            h,
            parameters.host,
            parameters.user,
            parameters.password,
            parameters.database,
            UInt32(parameters.port),
            parameters.socket,
            0
        )
        if ok == nil {
            let code = mysql_errno(h)
            let message = String(cString: mysql_error(h))
            mysql_close(h)
            throw SealbakError(
                .unavailable,
                "cannot connect to MySQL at \(parameters.place): \(message) (error \(code))\(Self.hint(code))"
            )
        }
        handle = h
        self.parameters = parameters
    }

    deinit { mysql_close(handle) }

    static func hint(_ code: UInt32) -> String {
        switch code {
        case 1045, 1698: ". Check the user and password (URL, --mysql-password-file, MYSQL_PWD or ~/.my.cnf)"
        case 1044, 1142, 1227: ". The user lacks a right sealbak needs; grant it or connect as a user that has it"
        case 1049: ". Check the database name"
        case 2002, 2003, 2005, 2013: ". Is the server running and the host and port right?"
        default: ""
        }
    }

    /// "10.11.6-MariaDB-0+deb12u1" or "8.0.36".
    package var serverInfo: String { String(cString: mysql_get_server_info(handle)) }

    /// Runs one statement; returns its rows as text (nil for SQL NULL), empty for a statement without rows.
    @discardableResult
    package func query(_ sql: String) throws(SealbakError) -> [[String?]] {
        let bytes = Array(sql.utf8)
        let rc = bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { mysql_real_query(handle, $0.baseAddress, UInt(b.count)) }
        }
        guard rc == 0 else { throw failure() }
        guard let res = mysql_store_result(handle) else {
            if mysql_field_count(handle) != 0 { throw failure() }
            return []
        }
        defer { mysql_free_result(res) }
        let cols = Int(mysql_num_fields(res))
        var out: [[String?]] = []
        while let row = mysql_fetch_row(res) {
            guard let lengths = mysql_fetch_lengths(res) else { break }
            var r: [String?] = []
            r.reserveCapacity(cols)
            for c in 0..<cols {
                if let p = row[c] {
                    r.append(String(decoding: UnsafeRawBufferPointer(start: p, count: Int(lengths[c])), as: UTF8.self))
                } else {
                    r.append(nil)
                }
            }
            out.append(r)
        }
        if mysql_errno(handle) != 0 { throw failure() }
        return out
    }

    /// The first column of the first row.
    package func value(_ sql: String) throws(SealbakError) -> String? {
        try query(sql).first?.first ?? nil
    }

    /// The server's error number of the last statement (0: none).
    package var lastErrorNumber: UInt32 { mysql_errno(handle) }

    private func failure() -> SealbakError {
        let code = mysql_errno(handle)
        let message = String(cString: mysql_error(handle))
        return SealbakError(.unavailable, "\(parameters.place): \(message) (error \(code))\(Self.hint(code))")
    }
}

/// Quotes a MySQL identifier (`a``b`).
package func quoteMySQLIdentifier(_ s: String) -> String { "`" + s.replacingOccurrences(of: "`", with: "``") + "`" }

/// Quotes a MySQL string literal, escaping backslashes too (the default sql_mode treats them as escapes).
package func quoteMySQLLiteral(_ s: String) -> String {
    "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "''") + "'"
}
