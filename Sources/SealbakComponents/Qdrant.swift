import Foundation
import SealbakFormat
import SealbakIO

/// Qdrant data, packed as `qdrant/NAME/…`: either a storage directory (offline: the server stopped) whose
/// `collections/` folder names the collections, or snapshot files (`*.snapshot`, made with Qdrant's snapshot
/// API while it runs) given as a file or a folder. Collection names and sizes are recorded.
package enum QdrantComponent {
    package struct Collection: Codable, Sendable, Equatable {
        package var name: String
        package var bytes: UInt64
        /// "storage" (a folder under collections/) or the snapshot file's name.
        package var from: String
    }

    @discardableResult
    package static func add(argument: String, to plan: inout PackPlan) throws(SealbakError) -> (String, [Collection]) {
        let (name, p) = try Component.argument(argument, flag: "--qdrant") { ($0 as NSString).deletingPathExtension }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            throw SealbakError(.notFound, "--qdrant \(p): no such file or directory")
        }
        var collections: [Collection] = []
        let fm = FileManager.default
        let layout: String
        if isDir.boolValue, fm.fileExists(atPath: p + "/collections") {
            layout = "storage"
            for c in ((try? fm.contentsOfDirectory(atPath: p + "/collections")) ?? []).sorted() {
                var d: ObjCBool = false
                guard fm.fileExists(atPath: p + "/collections/" + c, isDirectory: &d), d.boolValue else { continue }
                collections.append(Collection(name: c, bytes: size(p + "/collections/" + c), from: "storage"))
            }
        } else {
            layout = "snapshots"
            let files =
                isDir.boolValue
                ? ((try? fm.contentsOfDirectory(atPath: p)) ?? []).filter { $0.hasSuffix(".snapshot") }.sorted().map {
                    p + "/" + $0
                } : [p]
            guard !files.isEmpty, files.allSatisfy({ $0.hasSuffix(".snapshot") }) else {
                throw SealbakError(
                    .usage,
                    "--qdrant \(p) is neither a Qdrant storage folder (it has no collections/) nor *.snapshot files. "
                        + "Stop Qdrant and give its storage folder, or take snapshots first (see docs/usage.md)"
                )
            }
            for f in files {
                // Qdrant names snapshots COLLECTION-ID-YYYY-MM-DD-hh-mm-ss.snapshot.
                let base = ((f as NSString).lastPathComponent as NSString).deletingPathExtension
                let parts = base.split(separator: "-")
                let collection = parts.count > 7 ? parts.dropLast(7).joined(separator: "-") : base
                try checkTar(f)
                collections.append(
                    Collection(name: collection, bytes: size(f), from: (f as NSString).lastPathComponent)
                )
            }
        }
        let root = "qdrant/\(name)"
        let first = plan.entries.count
        let stats = try Component.addFileOrTree(
            p,
            root: root,
            flag: "--qdrant",
            filter: DefaultExcludesFilter(),
            to: &plan
        )
        var m = Component.metadata(kind: "qdrant", name: name, source: URL(fileURLWithPath: p).standardizedFileURL.path)
        m["qdrant.layout"] = layout
        m["qdrant.files"] = String(stats.files)
        m["qdrant.bytes"] = String(stats.bytes)
        m["qdrant.collections"] = collections.map(\.name).joined(separator: ",")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        m["qdrant.facts"] = String(decoding: (try? encoder.encode(collections)) ?? Data(), as: UTF8.self)
        plan.setMetadata(m, at: first)
        return (name, collections)
    }

    /// A snapshot must be a complete tar archive: every header's checksum is right, every member's data is
    /// there, and the archive ends with its two zero blocks (a snapshot cut short while it was copied is refused).
    static func checkTar(_ path: String) throws(SealbakError) {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw SealbakError.io("cannot read", path: path, errno: errno)
        }
        defer { try? h.close() }
        let fileSize = (try? h.seekToEnd()) ?? 0
        var offset: UInt64 = 0
        var members = 0
        func block(at o: UInt64) -> [UInt8]? {
            guard (try? h.seek(toOffset: o)) != nil, let d = try? h.read(upToCount: 512), d.count == 512 else {
                return nil
            }
            return [UInt8](d)
        }
        func octal(_ b: ArraySlice<UInt8>) -> UInt64? {
            if let first = b.first, first & 0x80 != 0 {  // GNU base-256 for large sizes
                return b.dropFirst().reduce(UInt64(first & 0x7F)) { $0 << 8 | UInt64($1) }
            }
            let text = String(decoding: b.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            return text.isEmpty ? 0 : UInt64(text, radix: 8)
        }
        while true {
            guard let header = block(at: offset) else {
                if members == 0 {
                    throw SealbakError(.usage, "\(path) is not a Qdrant snapshot (too short for a tar archive)")
                }
                throw SealbakError(
                    .usage,
                    "\(path) is not a complete Qdrant snapshot: the tar archive ends at byte \(offset) without its "
                        + "end marker (cut short while it was written or copied?); take the snapshot again"
                )
            }
            if header.allSatisfy({ $0 == 0 }) {
                guard let next = block(at: offset + 512), next.allSatisfy({ $0 == 0 }) else {
                    throw SealbakError(
                        .usage,
                        "\(path) is not a complete Qdrant snapshot: its tar end marker is incomplete"
                    )
                }
                break
            }
            let stored = octal(header[148..<156])
            let sum = header.enumerated().reduce(UInt64(0)) {
                $0 + (148..<156 ~= $1.offset ? 0x20 : UInt64($1.element))
            }
            guard stored == sum else {
                throw SealbakError(
                    .usage,
                    members == 0
                        ? "\(path) is not a Qdrant snapshot (not a tar archive)"
                        : "\(path) is not a complete Qdrant snapshot: the tar header at byte \(offset) is damaged"
                )
            }
            guard let size = octal(header[124..<136]) else {
                throw SealbakError(.usage, "\(path): the tar header at byte \(offset) has a bad size")
            }
            let next = offset + 512 + (size + 511) / 512 * 512
            guard next <= fileSize else {
                throw SealbakError(
                    .usage,
                    "\(path) is not a complete Qdrant snapshot: member \(members + 1) needs \(size) bytes after byte "
                        + "\(offset + 512) but the file ends at \(fileSize); take the snapshot again"
                )
            }
            offset = next
            members += 1
        }
    }

    static func size(_ path: String) -> UInt64 {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return 0 }
        if !isDir.boolValue { return UInt64((try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? 0) }
        var total: UInt64 = 0
        for rel in fm.subpaths(atPath: path) ?? [] {
            if let a = try? fm.attributesOfItem(atPath: path + "/" + rel),
                a[.type] as? FileAttributeType == .typeRegular
            {
                total += UInt64((a[.size] as? Int) ?? 0)
            }
        }
        return total
    }

    /// After restore: the same collections, each the recorded size.
    package static func checkRestored(root: String, manifest: Manifest, component: TreeComponent) -> [String] {
        let meta = manifest.entries[component.rootIndex].metadata
        guard let json = meta["qdrant.facts"],
            let recorded = try? JSONDecoder().decode([Collection].self, from: Data(json.utf8))
        else {
            return ["no qdrant.facts record"]
        }
        var problems: [String] = []
        for c in recorded {
            let path = c.from == "storage" ? root + "/collections/" + c.name : root + "/" + c.from
            let now = size(path)
            if now != c.bytes { problems.append("\(c.name): \(now) bytes, recorded \(c.bytes)") }
        }
        return problems
    }
}
