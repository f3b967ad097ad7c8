import Foundation
import SealbakFormat
import SealbakMySQL

/// `sealbak verify`'s component checks, on top of every tag and checksum: what each component's manifest
/// record says must agree with the entries the archive holds.
package enum ComponentVerifier {
    package struct Result: Sendable {
        package var kind: String
        package var name: String
        package var ok: Bool
        /// False for a component that was skipped or failed when packing (the archive is intact but incomplete).
        package var complete = true
        package var detail: String
    }

    /// The entries whose first bytes `check` needs (PostgreSQL dumps).
    package static func headsNeeded(_ manifest: Manifest) -> Set<Int> {
        Set(
            manifest.entries.indices.filter {
                ["postgres", "mysql", "sqlite"].contains(manifest.entries[$0].metadata[ComponentKeys.kind] ?? "")
                    && manifest.entries[$0].metadata[ComponentKeys.status] != "skipped"
            }
        )
    }

    package static func check(
        _ manifest: Manifest,
        sizes: [UInt64],
        heads: [Int: [UInt8]],
        outcome: CaptureOutcome? = nil
    ) -> [Result] {
        var out: [Result] = []
        let incomplete = Dictionary((outcome?.incomplete ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let trees = TreeComponent.all(in: manifest)
        for (i, e) in manifest.entries.enumerated() {
            guard let kind = e.metadata[ComponentKeys.kind], e.metadata[ComponentKeys.myRole] != "counts" else {
                continue
            }
            let name = e.metadata[ComponentKeys.name] ?? e.name
            if e.metadata[ComponentKeys.status] == "skipped" {
                out.append(
                    Result(
                        kind: kind,
                        name: name,
                        ok: true,
                        complete: false,
                        detail: "SKIPPED when packing: \(e.metadata[ComponentKeys.reason] ?? "")"
                    )
                )
                continue
            }
            if let o = incomplete[name], o.status == .failed {
                out.append(
                    Result(
                        kind: kind,
                        name: name,
                        ok: true,
                        complete: false,
                        detail:
                            "FAILED while it was packed (\(o.bytes) partial bytes stored, never restored): "
                            + "\(o.reason ?? "")"
                    )
                )
                continue
            }
            switch kind {
            case "postgres":
                let head = heads[i] ?? []
                let ok = sizes[i] > 5 && head.starts(with: Array("PGDMP".utf8))
                out.append(
                    Result(
                        kind: kind,
                        name: name,
                        ok: ok,
                        complete: true,
                        detail: ok
                            ? "pg_dump custom-format dump, \(sizes[i]) bytes, "
                                + "\(e.metadata["postgres.tables"] ?? "?") tables and "
                                + "\(e.metadata["postgres.rows"] ?? "?") rows recorded"
                            : "the dump does not start with PGDMP (\(sizes[i]) bytes)"
                    )
                )
            case "mysql":
                out.append(MySQLVerifier.check(e, index: i, manifest: manifest, sizes: sizes, heads: heads))
            case "sqlite":
                let head = heads[i] ?? []
                let recorded = e.metadata[SQLiteKeys.bytes].flatMap(UInt64.init)
                // `heads` keeps up to 1 MiB of the entry (the mysql kind reads header lines): compare its start.
                let magicOK = head.starts(with: SQLiteComponent.magic)
                let ok = (sizes[i] == 0 || magicOK) && (recorded == nil || recorded == sizes[i])
                out.append(
                    Result(
                        kind: kind,
                        name: name,
                        ok: ok,
                        complete: true,
                        detail: ok
                            ? "SQLite database, \(sizes[i]) bytes as recorded, "
                                + "\(e.metadata[SQLiteKeys.tables] ?? "?") tables and "
                                + "\(e.metadata[SQLiteKeys.rows] ?? "?") rows recorded (user_version "
                                + "\(e.metadata[SQLiteKeys.userVersion] ?? "?"), journal mode "
                                + "\(e.metadata[SQLiteKeys.journalMode] ?? "?"))"
                            : !magicOK
                                ? "the entry does not start with the SQLite header \"SQLite format 3\" (\(sizes[i]) "
                                    + "bytes)"
                                : "\(sizes[i]) bytes, recorded \(recorded ?? 0)"
                    )
                )
            case "command":
                // The outcome record counts the bytes the command printed; the entry must hold exactly those.
                let recorded = outcome?.components.first { $0.kind == kind && $0.name == name }?.bytes
                let ok = recorded == nil || recorded == sizes[i]
                out.append(
                    Result(
                        kind: kind,
                        name: name,
                        ok: ok,
                        complete: true,
                        detail: ok
                            ? "the output of \(e.metadata[ComponentKeys.source] ?? "?"), \(sizes[i]) "
                                + "bytes\(recorded == nil ? "" : " as recorded")"
                            : "\(sizes[i]) bytes, but the command printed \(recorded ?? 0)"
                    )
                )
            default:
                guard let t = trees.first(where: { $0.rootIndex == i }) else {
                    out.append(
                        Result(
                            kind: kind,
                            name: name,
                            ok: true,
                            complete: true,
                            detail: "kind unknown to this sealbak; entries verified"
                        )
                    )
                    continue
                }
                let files = t.indices.filter { manifest.entries[$0].kind == .file }
                let bytes = files.reduce(UInt64(0)) { $0 + sizes[$1] }
                var problems: [String] = []
                if let recorded = e.metadata["\(kind).files"].flatMap(Int.init), recorded != files.count {
                    problems.append("\(files.count) files, recorded \(recorded)")
                }
                // Files that changed while they were read (named in the outcome record) hold what was read, not
                // what was listed: their component's byte count is not expected to match.
                let changed = Set((outcome?.warnings ?? []).map { Array($0.entry.utf8) })
                let anyChanged = files.contains { changed.contains(Array(manifest.entries[$0].name.utf8)) }
                if let recorded = e.metadata["\(kind).bytes"].flatMap(UInt64.init), recorded != bytes, !anyChanged {
                    problems.append("\(bytes) bytes, recorded \(recorded)")
                }
                if kind == "vectors" {
                    for f in files {
                        let m = manifest.entries[f].metadata
                        guard m["vectors.format"] != "npy", let shape = m["vectors.shape"],
                            let format = m["vectors.format"]
                        else { continue }
                        let dims = shape.split(separator: "x").compactMap { Int($0) }
                        let item = format == "bvecs" ? 1 : 4
                        if dims.count == 2, UInt64(dims[0] * (4 + dims[1] * item)) != sizes[f] {
                            problems.append("\(manifest.entries[f].name): \(sizes[f]) bytes for shape \(shape)")
                        }
                    }
                }
                let detail =
                    anyChanged
                    ? "\(files.count) files, \(bytes) bytes (files changed while they were packed; the archive names "
                        + "them)"
                    : "\(files.count) files, \(bytes) bytes as recorded"
                out.append(
                    Result(
                        kind: kind,
                        name: name,
                        ok: problems.isEmpty,
                        complete: true,
                        detail: problems.isEmpty ? detail : problems.joined(separator: "; ")
                    )
                )
            }
        }
        return out
    }
}
