import Foundation
import SealbakIO
import SealbakPostgres

/// Where each component goes: `--target`/`--postgres-target` flags win over the plan's `restore:` (or the
/// component's own `path:`/`url:`), and `--to DIR` puts folders into `DIR/NAME`.
enum RestoreTargets {
    /// `others`: components of other kinds that take `--target NAME=PATH` too (their finders check them).
    static func folders(
        _ trees: [TreeComponent],
        _ r: RestoreRequest,
        others: Set<String> = []
    ) throws(SealbakError) -> [String: String] {
        var out: [String: String] = [:]
        for c in r.plan?.components ?? []
        where c.kind != .postgres && c.kind != .command && trees.contains(where: { $0.name == c.name }) {
            out[c.name] = r.to.map { $0 + "/" + c.name } ?? c.restorePath ?? c.path
        }
        for (name, path) in r.folderTargets where !others.contains(name) {
            guard trees.contains(where: { $0.name == name }) else {
                throw SealbakError(
                    .usage,
                    "--target \(name)=…: no selected folder component has that name (components: "
                        + "\(trees.map(\.name).joined(separator: ", ")))"
                )
            }
            out[name] = path
        }
        for t in trees where out[t.name] == nil {
            guard let to = r.to else {
                throw SealbakError(
                    .usage,
                    "no target for \(t.kind) component \(t.name): give --to DIR (restores into DIR/\(t.name)) or "
                        + "--target \(t.name)=\(t.isFile ? "FILE" : "DIR")"
                )
            }
            out[t.name] = to + "/" + t.name
        }
        return out
    }

    /// Targets of the selected PostgreSQL `components`; those for which `needed` is false (skipped or failed when
    /// packing) may have one but need not.
    static func postgres(
        _ components: [PostgresComponent],
        _ r: RestoreRequest,
        needed: (PostgresComponent) -> Bool = { _ in true }
    ) throws(SealbakError) -> [String: ConnectionParameters] {
        var out: [String: ConnectionParameters] = [:]
        for c in r.plan?.components ?? [] where c.kind == .postgres && components.contains(where: { $0.name == c.name })
        {
            var p = try ConnectionParameters(
                c.restoreURL ?? c.url!,
                what: "the restore url of \(c.name) in \(r.plan!.file)"
            )
            if let f = c.passwordFile ?? r.postgresPasswordFile, p["password"] == nil {
                p["password"] = try PostgresSourceSpec.readPasswordFile(f)
            }
            out[c.name] = p
        }
        func parameters(_ text: String, what: String) throws(SealbakError) -> ConnectionParameters {
            var p = try ConnectionParameters(text, what: what)
            if let f = r.postgresPasswordFile, p["password"] == nil {
                p["password"] = try PostgresSourceSpec.readPasswordFile(f)
            }
            return p
        }
        var bare: [String] = []
        for t in r.postgresTargets {
            if let eq = t.firstIndex(of: "="), let scheme = t.range(of: "://"), eq < scheme.lowerBound {
                let name = String(t[..<eq])
                guard components.contains(where: { $0.name == name }) else {
                    throw SealbakError(
                        .usage,
                        "--postgres-target \(name)=…: no selected component has that name (components: "
                            + "\(components.map(\.name).joined(separator: ", ")))"
                    )
                }
                out[name] = try parameters(String(t[t.index(after: eq)...]), what: "--postgres-target \(name)=URL")
            } else {
                bare.append(t)
            }
        }
        if bare.count > 1 {
            throw SealbakError(.usage, "give each --postgres-target as NAME=URL when there are several")
        }
        if let url = bare.first {
            var open = components.filter { out[$0.name] == nil && needed($0) }
            if open.isEmpty { open = components.filter { out[$0.name] == nil } }
            guard open.count == 1 else {
                throw SealbakError(
                    .usage,
                    "--postgres-target URL is ambiguous: \(open.count) components "
                        + "(\(open.map(\.name).joined(separator: ", "))) have no target; give NAME=URL for each or use "
                        + "--only NAME"
                )
            }
            out[open[0].name] = try parameters(url, what: "--postgres-target URL")
        }
        for c in components where out[c.name] == nil && needed(c) {
            throw SealbakError(
                .usage,
                "no target for PostgreSQL component \(c.name): give --postgres-target "
                    + "\(c.name)=postgresql://USER@HOST:PORT/DATABASE"
            )
        }
        for (name, db) in r.databaseNames { if let p = out[name] { out[name] = p.with(database: db) } }
        return out
    }
}
