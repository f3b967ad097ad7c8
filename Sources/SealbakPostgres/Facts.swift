import Foundation
import SealbakFormat
import SealbakIO

/// What sealbak records about a database when packing it (Spec/COMPONENTS.md), read inside the dump's snapshot.
package struct DatabaseFacts: Codable, Sendable, Equatable {
    package struct Extension: Codable, Sendable, Equatable {
        package var name: String
        package var version: String
        package var schema: String
    }

    package struct Table: Codable, Sendable, Equatable {
        package var schema: String
        package var name: String
        package var rows: Int64
        package var bytes: Int64

        package var qualified: String { quoteIdentifier(schema) + "." + quoteIdentifier(name) }
        package var display: String { schema + "." + name }
    }

    package struct VectorColumn: Codable, Sendable, Equatable {
        package var schema: String
        package var table: String
        package var column: String
        package var type: String
        /// nil when the column has no fixed dimension.
        package var dimensions: Int?
    }

    /// An index that a restore rebuilds (pg_restore creates indexes after the data, in post-data).
    package struct Index: Codable, Sendable, Equatable {
        package var schema: String
        package var table: String
        package var name: String
        /// The access method: btree, hnsw, ivfflat, gin, gist, …
        package var method: String
        /// The indexed columns by name (an expression has no name and is left out).
        package var columns: [String]
        /// The storage parameters as written (`m=16`, `ef_construction=64`).
        package var options: [String]
        /// `pg_relation_size` of the index on the source.
        package var bytes: Int64

        package var display: String { schema + "." + name }

        /// The integer value of storage parameter `key`, if set.
        package func option(_ key: String) -> Int? {
            for o in options where o.hasPrefix(key + "=") { return Int(o.dropFirst(key.count + 1)) }
            return nil
        }
    }

    package var database: String
    package var serverVersion: String
    package var serverVersionNumber: Int
    package var encoding: String
    package var collate: String
    package var ctype: String
    package var extensions: [Extension]
    package var tables: [Table]
    package var vectorColumns: [VectorColumn]
    package var largeObjects: Int64
    package var dumpTool: String
    /// The indexes of the recorded tables; nil in archives written before sealbak recorded them.
    package var indexes: [Index]?

    package var totalRows: Int64 { tables.reduce(0) { $0 + $1.rows } }
    package var totalBytes: Int64 { tables.reduce(0) { $0 + $1.bytes } }
    package var serverMajor: Int { serverVersionNumber / 10000 }

    /// The extensions a restore must create (plpgsql is always there).
    package var requiredExtensions: [Extension] { extensions.filter { $0.name != "plpgsql" } }

    /// Reads everything but the row counts (cheap catalog queries).
    static func inspect(_ c: Connection) throws(SealbakError) -> DatabaseFacts {
        let db = try c.query(
            """
            SELECT current_database(), current_setting('server_version'), current_setting('server_version_num'),
                   pg_encoding_to_char(d.encoding), d.datcollate, d.datctype
            FROM pg_database d WHERE d.datname = current_database()
            """
        )
        guard let r = db.first, r.count == 6 else {
            throw SealbakError(.unavailable, "\(c.parameters.display): cannot read the database's settings")
        }
        let extensions = try c.query(
            """
            SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
            ORDER BY e.extname
            """
        ).map { Extension(name: $0[0] ?? "", version: $0[1] ?? "", schema: $0[2] ?? "") }
        let tables = try c.query(
            """
            SELECT n.nspname, c.relname, pg_total_relation_size(c.oid), has_table_privilege(c.oid, 'SELECT')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND \(userSchemaFilter)
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype = 'e')
            ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"
            """
        )
        let denied = tables.filter { $0[3] != "t" }.map { ($0[0] ?? "") + "." + ($0[1] ?? "") }
        if !denied.isEmpty {
            throw SealbakError(
                .unavailable,
                "\(c.parameters.display): the role cannot read \(denied.count) table(s): "
                    + "\(denied.prefix(5).joined(separator: ", "))\(denied.count > 5 ? ", …" : ""). Connect as the "
                    + "owner or a role with SELECT on every table (pg_read_all_data)"
            )
        }
        let vectors = try c.query(
            """
            SELECT n.nspname, c.relname, a.attname, t.typname, a.atttypmod
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_type t ON t.oid = a.atttypid
            WHERE t.typname IN ('vector', 'halfvec', 'sparsevec', 'bit') AND a.attnum > 0 AND NOT a.attisdropped
              AND c.relkind = 'r' AND \(userSchemaFilter) AND (t.typname <> 'bit' OR a.atttypmod > 0)
            ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C", a.attnum
            """
        ).compactMap { row -> VectorColumn? in
            // pgvector stores the dimension as the type modifier; bit(n) only counts when binary-quantised vectors use
            // it.
            guard row[3] != "bit" || extensions.contains(where: { $0.name == "vector" }) else { return nil }
            let mod = Int(row[4] ?? "-1") ?? -1
            return VectorColumn(
                schema: row[0] ?? "",
                table: row[1] ?? "",
                column: row[2] ?? "",
                type: row[3] ?? "",
                dimensions: mod > 0 ? mod : nil
            )
        }
        let lo = Int64(try c.value("SELECT count(*) FROM pg_largeobject_metadata") ?? "0") ?? 0
        // Indexes of the recorded tables (partial and expression indexes included; their expression columns are
        // left out of `columns`). The unit separator joins arrays, which names and options cannot contain.
        let indexes = try c.query(
            """
            SELECT n.nspname, t.relname, i.relname, am.amname,
                   coalesce((SELECT string_agg(a.attname, chr(31) ORDER BY k.ord)
                             FROM unnest(x.indkey) WITH ORDINALITY k(attnum, ord)
                             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum WHERE k.attnum > 0), ''),
                   coalesce(array_to_string(i.reloptions, chr(31)), ''), pg_relation_size(i.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
                 JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = i.relam
            WHERE t.relkind = 'r' AND \(userSchemaFilter)
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = t.oid
                              AND d.deptype = 'e')
            ORDER BY n.nspname COLLATE "C", t.relname COLLATE "C", i.relname COLLATE "C"
            """
        ).map { r in
            Index(
                schema: r[0] ?? "",
                table: r[1] ?? "",
                name: r[2] ?? "",
                method: r[3] ?? "",
                columns: (r[4] ?? "").split(separator: "\u{1F}").map(String.init),
                options: (r[5] ?? "").split(separator: "\u{1F}").map(String.init),
                bytes: Int64(r[6] ?? "0") ?? 0
            )
        }
        return DatabaseFacts(
            database: r[0] ?? "",
            serverVersion: r[1] ?? "",
            serverVersionNumber: Int(r[2] ?? "0") ?? 0,
            encoding: r[3] ?? "UTF8",
            collate: r[4] ?? "",
            ctype: r[5] ?? "",
            extensions: extensions,
            tables: tables.map {
                Table(schema: $0[0] ?? "", name: $0[1] ?? "", rows: -1, bytes: Int64($0[2] ?? "0") ?? 0)
            },
            vectorColumns: vectors,
            largeObjects: lo,
            dumpTool: "",
            indexes: indexes
        )
    }

    /// Exact row counts (`count(*) FROM ONLY`), in the connection's current snapshot.
    mutating func countRows(_ c: Connection) throws(SealbakError) {
        for i in tables.indices {
            tables[i].rows = try Self.count(tables[i], c)
        }
    }

    static func count(_ t: Table, _ c: Connection) throws(SealbakError) -> Int64 {
        Int64(try c.value("SELECT count(*) FROM ONLY \(t.qualified)") ?? "0") ?? 0
    }

    static let userSchemaFilter =
        "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname "
        + "NOT LIKE 'pg\\_temp\\_%'"
}

/// A PostgreSQL component as recorded in an archive.
package struct PostgresComponent: Sendable {
    package var entryIndex: Int
    package var name: String
    package var source: String
    package var skippedReason: String?
    package var facts: DatabaseFacts?

    /// The PostgreSQL components of a manifest, in entry order.
    package static func all(in manifest: Manifest, archive: String) throws(SealbakError) -> [PostgresComponent] {
        var out: [PostgresComponent] = []
        for (i, e) in manifest.entries.enumerated() where e.metadata[ComponentKeys.kind] == "postgres" {
            let name = e.metadata[ComponentKeys.name] ?? e.name
            var c = PostgresComponent(
                entryIndex: i,
                name: name,
                source: e.metadata[ComponentKeys.source] ?? "",
                skippedReason: nil,
                facts: nil
            )
            if e.metadata[ComponentKeys.status] == "skipped" {
                c.skippedReason = e.metadata[ComponentKeys.reason] ?? "no reason recorded"
            } else {
                guard let json = readChunked(e.metadata, ComponentKeys.pgFacts),
                    let facts = try? JSONDecoder().decode(DatabaseFacts.self, from: Data(json.utf8))
                else {
                    throw SealbakError(
                        .corrupt,
                        "\(archive): the PostgreSQL component \(name) has no readable \(ComponentKeys.pgFacts) "
                            + "record; it was not written by sealbak or is from an incompatible version"
                    )
                }
                c.facts = facts
            }
            out.append(c)
        }
        return out
    }

    package static func entryName(_ component: String) -> String { "postgres/\(component).pgdump" }

    static func baseMetadata(name: String, source: String, status: String) -> Metadata {
        var m = Metadata()
        m[ComponentKeys.kind] = "postgres"
        m[ComponentKeys.name] = name
        m[ComponentKeys.status] = status
        m[ComponentKeys.source] = source
        return m
    }

    /// The manifest entry of a dumped database.
    package static func entry(name: String, source: String, facts: DatabaseFacts, mtime: Int64) -> ManifestEntry {
        var m = baseMetadata(name: name, source: source, status: "ok")
        m[ComponentKeys.pgDatabase] = facts.database
        m[ComponentKeys.pgServerVersion] = facts.serverVersion
        m[ComponentKeys.pgEncoding] = facts.encoding
        m[ComponentKeys.pgDumpTool] = facts.dumpTool
        m[ComponentKeys.pgFormat] = "custom"
        m[ComponentKeys.pgTables] = String(facts.tables.count)
        m[ComponentKeys.pgRows] = String(facts.totalRows)
        m[ComponentKeys.pgLargeObjects] = String(facts.largeObjects)
        m[ComponentKeys.pgExtensions] = facts.extensions.map { "\($0.name) \($0.version)" }.joined(separator: ", ")
        m[ComponentKeys.pgVectorColumns] = facts.vectorColumns.map {
            "\($0.schema).\($0.table).\($0.column) \($0.type)(\($0.dimensions.map(String.init) ?? "any"))"
        }.joined(separator: ", ")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: (try? encoder.encode(facts)) ?? Data(), as: UTF8.self)
        writeChunked(&m, ComponentKeys.pgFacts, json)
        return ManifestEntry(kind: .stream, name: entryName(name), mode: 0o600, mtimeSeconds: mtime, metadata: m)
    }

    /// The manifest entry of a component that could not be captured (`--allow-missing`).
    package static func skippedEntry(name: String, source: String, reason: String, mtime: Int64) -> ManifestEntry {
        var m = baseMetadata(name: name, source: source, status: "skipped")
        m[ComponentKeys.reason] = reason
        return ManifestEntry(kind: .stream, name: entryName(name), mode: 0o600, mtimeSeconds: mtime, metadata: m)
    }
}

/// Splits a long value over KEY, KEY.2, KEY.3, … (each at most the 1 MiB metadata value limit, cut at UTF-8
/// boundaries).
package func writeChunked(_ m: inout Metadata, _ key: String, _ value: String) {
    let limit = Int(FormatV1.maxMetadataValueByteCount)
    let bytes = Array(value.utf8)
    var start = 0
    var part = 1
    repeat {
        var end = min(bytes.count, start + limit)
        while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end -= 1 }  // never cut inside a character
        m[part == 1 ? key : "\(key).\(part)"] = String(decoding: bytes[start..<end], as: UTF8.self)
        start = end
        part += 1
    } while start < bytes.count
}

package func readChunked(_ m: Metadata, _ key: String) -> String? {
    guard var value = m[key] else { return nil }
    var part = 2
    while let more = m["\(key).\(part)"] {
        value += more
        part += 1
    }
    return value
}
