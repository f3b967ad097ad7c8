import CSQLite
import Foundation
import SealbakFormat
import SealbakIO
import SealbakSync

/// A ChromaDB persist directory: `chroma.sqlite3` (copied with SQLite's online backup API, so a store that a
/// live process holds open still gives a consistent snapshot) and the HNSW segment folders, packed as
/// `chroma/NAME/…`. Collections, their dimensions and embedding counts are read from the snapshot.
package enum ChromaComponent {
    package struct Collection: Codable, Sendable, Equatable {
        package var name: String
        package var dimension: Int?
        package var embeddings: Int
    }

    /// A snapshot file made for packing; remove it when the pack is over.
    package final class Snapshot: Sendable {
        package let path: String
        private let token: Locked<Int?>

        init(path: String) {
            self.path = path
            let p = path
            token = Locked(Interrupts.register { unlink(p) })
        }

        package func remove() {
            unlink(path)
            if let t = token.withLock({ t -> Int? in
                defer { t = nil }
                return t
            }) {
                Interrupts.unregister(t)
            }
        }

        deinit { remove() }
    }

    /// Adds the store; returns its collections and the snapshot to remove after packing.
    package static func add(
        argument: String,
        to plan: inout PackPlan
    ) throws(SealbakError) -> (String, [Collection], Snapshot) {
        let (name, p) = try Component.argument(argument, flag: "--chroma")
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue else {
            throw SealbakError(.notFound, "--chroma \(p): no such directory")
        }
        let db = p + "/chroma.sqlite3"
        guard FileManager.default.fileExists(atPath: db) else {
            throw SealbakError(
                .usage,
                "--chroma \(p) is not a Chroma persist directory: it has no chroma.sqlite3. Give the folder passed "
                    + "to chromadb.PersistentClient(path=…)"
            )
        }
        let snapshotPath =
            NSTemporaryDirectory() + "sealbak-chroma-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite3"
        try backup(from: db, to: snapshotPath)
        let snapshot = Snapshot(path: snapshotPath)
        let collections: [Collection]
        do { collections = try readCollections(snapshotPath, what: db) } catch {
            snapshot.remove()
            throw SealbakError(.usage, "--chroma \(p): chroma.sqlite3 is not a Chroma database (\(error.message))")
        }
        let root = "chroma/\(name)"
        let first = plan.entries.count
        let stats = try plan.add(tree: p, as: root, filter: ChromaFilter())
        try plan.add(tree: snapshotPath, as: root + "/chroma.sqlite3", filter: ChromaFilter())
        let total = collections.reduce(0) { $0 + $1.embeddings }
        var m = Component.metadata(kind: "chroma", name: name, source: URL(fileURLWithPath: p).standardizedFileURL.path)
        m["chroma.files"] = String(stats.files + 1)
        m["chroma.bytes"] = String(
            stats.bytes + UInt64((try? FileManager.default.attributesOfItem(atPath: snapshotPath)[.size] as? Int) ?? 0)
        )
        m["chroma.collections"] = String(collections.count)
        m["chroma.embeddings"] = String(total)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        m["chroma.facts"] = String(decoding: (try? encoder.encode(collections)) ?? Data(), as: UTF8.self)
        plan.setMetadata(m, at: first)
        return (name, collections, snapshot)
    }

    /// SQLite's online backup: a consistent copy even while another process writes.
    static func backup(from source: String, to dest: String) throws(SealbakError) {
        var src: OpaquePointer?
        var dst: OpaquePointer?
        defer {
            sqlite3_close(src)
            sqlite3_close(dst)
        }
        guard sqlite3_open_v2(source, &src, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else {
            throw SealbakError(.io, "cannot open \(source): \(message(src))")
        }
        sqlite3_busy_timeout(src, 10_000)
        guard sqlite3_open_v2(dest, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK else {
            throw SealbakError(.io, "cannot create the snapshot \(dest): \(message(dst))")
        }
        chmod(dest, 0o600)
        guard let b = sqlite3_backup_init(dst, "main", src, "main") else {
            throw SealbakError(.io, "cannot back up \(source): \(message(dst))")
        }
        var rc: Int32
        repeat {
            rc = sqlite3_backup_step(b, -1)
            if rc == SQLITE_BUSY || rc == SQLITE_LOCKED { sqlite3_sleep(100) }
        } while rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED
        sqlite3_backup_finish(b)
        guard rc == SQLITE_DONE else {
            unlink(dest)
            throw SealbakError(.io, "the online backup of \(source) failed: \(String(cString: sqlite3_errstr(rc)))")
        }
    }

    static func message(_ db: OpaquePointer?) -> String {
        db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
    }

    /// Collections with dimension and embedding count, and an integrity check of the file.
    package static func readCollections(_ path: String, what: String) throws(SealbakError) -> [Collection] {
        var db: OpaquePointer?
        defer { sqlite3_close(db) }
        guard sqlite3_open_v2("file:\(path)?immutable=1", &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nil) == SQLITE_OK
        else {
            throw SealbakError(.io, "cannot open \(what): \(message(db))")
        }
        let check = try rows(db, "PRAGMA quick_check", what)
        guard check.first?.first == "ok" else {
            throw SealbakError(
                .corrupt,
                "\(what) fails SQLite's integrity check: \(check.first?.first.map { $0 ?? "NULL" } ?? "?")"
            )
        }
        let sql = """
            SELECT c.name, c.dimension,
                   (SELECT count(*) FROM embeddings e JOIN segments s ON s.id = e.segment_id WHERE s.collection = c.id)
            FROM collections c ORDER BY c.name
            """
        return try rows(db, sql, what).map {
            Collection(name: $0[0] ?? "", dimension: $0[1].flatMap { Int($0) }, embeddings: Int($0[2] ?? "0") ?? 0)
        }
    }

    static func rows(_ db: OpaquePointer?, _ sql: String, _ what: String) throws(SealbakError) -> [[String?]] {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else {
            throw SealbakError(.usage, "\(message(db))")
        }
        defer { sqlite3_finalize(stmt) }
        var out: [[String?]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw SealbakError(.io, "reading \(what): \(message(db))") }
            out.append(
                (0..<sqlite3_column_count(stmt)).map { i in sqlite3_column_text(stmt, i).map { String(cString: $0) } }
            )
        }
        return out
    }

    /// After restore: the restored database passes the integrity check and holds the recorded collections and counts.
    package static func checkRestored(root: String, manifest: Manifest, component: TreeComponent) -> [String] {
        let meta = manifest.entries[component.rootIndex].metadata
        guard let json = meta["chroma.facts"],
            let recorded = try? JSONDecoder().decode([Collection].self, from: Data(json.utf8))
        else {
            return ["no chroma.facts record"]
        }
        do {
            let now = try readCollections(root + "/chroma.sqlite3", what: "the restored chroma.sqlite3")
            if now != recorded {
                let show: ([Collection]) -> String = {
                    $0.map { "\($0.name): \($0.embeddings)" }.joined(separator: ", ")
                }
                return ["collections \(show(now)), recorded \(show(recorded))"]
            }
            return []
        } catch {
            return [error.message]
        }
    }
}

/// The store's files except the database itself (packed from the snapshot) and SQLite's side files.
final class ChromaFilter: TreeFilter {
    func enter(directory rel: String, fsPath: String) throws(SealbakError) {}
    func keep(_ rel: String, isDirectory: Bool) -> Bool {
        !["chroma.sqlite3", "chroma.sqlite3-wal", "chroma.sqlite3-shm", "chroma.sqlite3-journal"].contains(rel)
    }
}
