import Foundation
import SealbakArchive
import SealbakFormat
import SealbakIO
import SealbakMySQL

/// What `verify` and `list` say about a `mysql` component.
package enum MySQLVerifier {
    /// The dump must start with a mysqldump/mariadb-dump header, and its counts entry must be readable and
    /// describe exactly the dump entry (the byte count made while counting equals the entry's size).
    static func check(
        _ e: ManifestEntry,
        index i: Int,
        manifest: Manifest,
        sizes: [UInt64],
        heads: [Int: [UInt8]]
    ) -> ComponentVerifier.Result {
        let name = e.metadata[ComponentKeys.name] ?? e.name
        func result(_ ok: Bool, _ detail: String) -> ComponentVerifier.Result {
            .init(kind: "mysql", name: name, ok: ok, complete: true, detail: detail)
        }
        guard let header = MySQLCounts.headerLine(heads[i] ?? []) else {
            return result(
                false,
                "the dump does not start with a mysqldump/mariadb-dump header line (\(sizes[i]) bytes)"
            )
        }
        guard let countsName = e.metadata[ComponentKeys.myCountsEntry],
            let ci = manifest.entries.firstIndex(where: { $0.name == countsName })
        else {
            return result(false, "the counts entry is missing")
        }
        guard let head = heads[ci], UInt64(head.count) == sizes[ci],
            let counts = try? MySQLCounts.decode(head, what: name)
        else {
            return result(false, "the counts entry (\(sizes[ci]) bytes) cannot be read")
        }
        guard counts.dumpBytes == sizes[i] else {
            return result(
                false,
                "the rows were counted in \(counts.dumpBytes) bytes of dump, but the dump entry holds \(sizes[i])"
            )
        }
        return result(
            true,
            "\(header.dropFirst(3)), \(sizes[i]) bytes, \(counts.tables.count) tables and \(counts.totalRows) rows "
                + "counted in the dump stream"
        )
    }

    /// `list`'s line for the dump entry (nil for the counts entry); `counts` reads an entry when the archive is
    /// seekable.
    package static func listLine(_ e: ManifestEntry, manifest: Manifest, counts: (Int) -> [UInt8]?) -> String? {
        guard e.metadata[ComponentKeys.myRole] != "counts" else { return nil }
        let m = e.metadata
        let name = displayName(m[ComponentKeys.name] ?? e.name)
        guard
            let c = try? MySQLComponent.all(in: manifest, archive: "").first(where: {
                $0.entryIndex == manifest.entries.firstIndex(of: e)
            }), let f = c.facts
        else {
            return "  mysql \(name): \(m[ComponentKeys.status] ?? "?")"
        }
        var rows = "rows in the counts entry"
        if let ci = c.countsIndex, let bytes = counts(ci), let n = try? MySQLCounts.decode(bytes, what: name) {
            rows = "\(n.totalRows) rows"
        }
        var line =
            "  mysql \(name): ok, \(f.flavour) \(f.serverVersion), database \(f.database) from \(c.source), "
            + "\(f.tables.count) tables, \(rows), \(f.views.count) views, \(f.triggers.count) triggers, "
            + "\(f.routines.count) routines, \(f.events.count) events"
        if !f.nonTransactional.isEmpty {
            line +=
                "; not transactional: " + f.nonTransactional.map { "\($0.name) (\($0.engine))" }.joined(separator: ", ")
        }
        return line
    }

    /// The bytes of one small entry (at most 16 MiB).
    package static func readEntry(_ reader: ArchiveReader, _ i: Int) throws -> [UInt8] {
        let s = CaptureSink(index: i)
        try reader.readEntry(i, into: s)
        return s.bytes
    }
}
