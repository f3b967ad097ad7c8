import Foundation
import SealbakFormat
import SealbakIO

/// A folder component (docs, config, …) or a single-file component as found in a manifest.
package struct TreeComponent: Sendable {
    package var kind: String
    package var name: String
    package var source: String
    /// Index of the root entry; the component is it and every entry below its name.
    package var rootIndex: Int
    /// The root entry's name in the archive (`docs/NAME`).
    package var rootName: String
    package var indices: [Int]
    /// Regular-file entries of the component.
    package var fileEntries: Int
    package var files: Int
    package var bytes: UInt64
    /// Whether the root entry records `KIND.files` (loose entries do not).
    package var recordsFiles = true
    /// A component made from one file (`component.shape` = `file`): it restores to that file's path.
    package var isFile = false
    /// The file's name below the root, for a single-file component.
    package var fileName = ""
    /// `ok`, `skipped` or `failed` (from the manifest, overridden by the archive's outcome record).
    package var status: CaptureStatus = .ok
    package var reason: String?

    /// The component kinds stored as a folder (`KIND/NAME/…`).
    static let folderKinds: Set<String> = ["docs", "config", "vectors", "chroma", "qdrant"]

    package static func all(in manifest: Manifest) -> [TreeComponent] {
        var out: [TreeComponent] = []
        for (i, e) in manifest.entries.enumerated()
        where e.kind == .directory && folderKinds.contains(e.metadata[ComponentKeys.kind] ?? "") {
            let kind = e.metadata[ComponentKeys.kind]!
            let prefix = Array((e.name + "/").utf8)
            let members =
                [i] + manifest.entries.indices.filter { Array(manifest.entries[$0].name.utf8).starts(with: prefix) }
            var t = TreeComponent(
                kind: kind,
                name: e.metadata[ComponentKeys.name] ?? e.name,
                source: e.metadata[ComponentKeys.source] ?? "",
                rootIndex: i,
                rootName: e.name,
                indices: members,
                fileEntries: members.filter { manifest.entries[$0].kind == .file }.count,
                files: Int(e.metadata[ComponentKeys.files(kind)] ?? "") ?? 0,
                bytes: UInt64(e.metadata[ComponentKeys.bytes(kind)] ?? "") ?? 0
            )
            if e.metadata[ComponentKeys.status] == "skipped" {
                t.status = .skipped
                t.reason = e.metadata[ComponentKeys.reason]
            }
            // A single file: recorded as such (component.shape), or, in archives from before that key, a root
            // holding one file named like the source's last component.
            let children = members.dropFirst()
            if children.count == 1, manifest.entries[children.first!].kind == .file {
                let child = String(manifest.entries[children.first!].name.dropFirst(e.name.count + 1))
                let shape = e.metadata[ComponentKeys.shape]
                if shape == "file"
                    || (shape == nil && !child.contains("/") && (t.source as NSString).lastPathComponent == child)
                {
                    t.isFile = true
                    t.fileName = child
                }
            }
            out.append(t)
        }
        return out
    }

    /// Decides which paths of an existing target were left out when packing (kept by a restore); nil when the
    /// kind keeps nothing (a Chroma store's SQLite side files must go with the old database).
    func preserveFilter(
        manifest: Manifest,
        ignoreText: @escaping (String) throws -> [UInt8]?
    ) throws -> (any TreeFilter)? {
        switch kind {
        case "docs":
            let json = manifest.entries[rootIndex].metadata["docs.rules"] ?? "{}"
            let rules =
                (try? JSONDecoder().decode(RecordedRules.self, from: Data(json.utf8)))
                ?? RecordedRules(defaults: IgnoreRules.defaultExcludes)
            return DocsFilter(recorded: rules, ignoreText: ignoreText)
        case "config", "vectors", "qdrant":
            return DefaultExcludesFilter()
        default:
            return nil
        }
    }
}
