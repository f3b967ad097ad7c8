import CSealbakShims
import Foundation
import SealbakArchive
import SealbakFormat

/// A directory component (docs, …) found in a manifest.
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

    /// The component kinds stored as a folder (`KIND/NAME/…`).
    static let folderKinds: Set<String> = ["docs", "config", "vectors", "chroma", "qdrant"]

    /// What each kind checks on its restored copy before it is put in place (problems, empty when fine).
    static let restoreChecks: [String: @Sendable (String, Manifest, TreeComponent) -> [String]] = [
        "config": ConfigComponent.checkRestored, "vectors": VectorsComponent.checkRestored,
        "chroma": ChromaComponent.checkRestored, "qdrant": QdrantComponent.checkRestored,
    ]

    package static func all(in manifest: Manifest) -> [TreeComponent] {
        var out: [TreeComponent] = []
        for (i, e) in manifest.entries.enumerated() where e.kind == .directory && folderKinds.contains(e.metadata["component"] ?? "") {
            let kind = e.metadata["component"]!
            let prefix = Array((e.name + "/").utf8)
            let members = [i] + manifest.entries.indices.filter { Array(manifest.entries[$0].name.utf8).starts(with: prefix) }
            out.append(TreeComponent(kind: kind, name: e.metadata["component.name"] ?? e.name, source: e.metadata["component.source"] ?? "",
                                     rootIndex: i, rootName: e.name, indices: members,
                                     fileEntries: members.filter { manifest.entries[$0].kind == .file }.count,
                                     files: Int(e.metadata["\(kind).files"] ?? "") ?? 0,
                                     bytes: UInt64(e.metadata["\(kind).bytes"] ?? "") ?? 0))
        }
        return out
    }
}

/// Restores a directory component next to its target and swaps it in atomically.
///
/// The tree is extracted (every entry authenticated and checked against its SHA-256) into a staging folder
/// `.NAME.sealbak-restore-…` beside the target. `commit` then exchanges the two with `renameat2(RENAME_EXCHANGE)`,
/// so the target path always holds either the old tree or the complete new one, and removes the old tree.
/// Until then, or if anything fails, the target is untouched and the staging folder is removed.
package final class StagedTree {
    package let component: TreeComponent
    package let target: String
    package let targetExists: Bool
    private let staging: String
    private var token: Int?

    /// Checks the target. An existing non-empty target is replaced only when `replace` is true.
    package init(_ component: TreeComponent, target: String, replace: Bool) throws(SealbakError) {
        self.component = component
        var t = target
        while t.count > 1 && t.hasSuffix("/") { t.removeLast() }
        self.target = t
        let parent = (t as NSString).deletingLastPathComponent.isEmpty ? "." : (t as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw SealbakError(.io, "cannot create \(parent) for \(component.name): \(error.localizedDescription)")
        }
        var st = stat()
        if lstat(t, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFDIR else {
                throw SealbakError(.targetExists, "\(t) exists and is not a directory; \(component.name) was not restored. Move it away or choose another target")
            }
            let children = (try? FileManager.default.contentsOfDirectory(atPath: t)) ?? []
            if !children.isEmpty && !replace {
                throw SealbakError(.targetExists, "\(t) exists and is not empty; nothing was changed. Give --replace (the old folder is kept aside until the new one is complete, and put back on failure) or choose another target")
            }
            targetExists = true
        } else {
            targetExists = false
        }
        let base = (t as NSString).lastPathComponent
        staging = parent + "/." + base + ".sealbak-restore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        if mkdir(staging, 0o700) != 0 { throw SealbakError.io("cannot create the staging folder", path: staging, errno: errno) }
        let s = staging
        token = Interrupts.register { try? FileManager.default.removeItem(atPath: s) }
    }

    /// Where the staged tree lies once extracted.
    private var stagedTree: String { staging + "/" + component.rootName }

    /// Extracts the component into the staging folder; `read` drives the archive reader into the extractor.
    package func extract(manifest: Manifest, read: (Extractor, [Int]) throws -> Void) throws {
        let extractor = try Extractor(root: staging, manifest: manifest, selected: Set(component.indices), force: false)
        do {
            try read(extractor, component.indices.sorted())
            try extractor.commit()
        } catch {
            extractor.abort()
            throw error
        }
        // The extracted tree must hold the recorded number of files (the reader already checked every checksum).
        var files = 0
        if let walk = FileManager.default.enumerator(at: URL(fileURLWithPath: stagedTree), includingPropertiesForKeys: [.isRegularFileKey]) {
            for case let url as URL in walk where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { files += 1 }
        }
        if files != component.files || files != component.fileEntries {
            throw SealbakError(.corrupt, "restored \(component.name) holds \(files) files, the archive records \(component.files); nothing was changed")
        }
        // Kind-specific checks on the staged copy: configs parse, vector shapes, Chroma counts, Qdrant sizes.
        if let check = TreeComponent.restoreChecks[component.kind] {
            let problems = check(stagedTree, manifest, component)
            if !problems.isEmpty {
                throw SealbakError(.restoreMismatch, "restored \(component.kind) component \(component.name) does not match what was packed; nothing was changed: \(problems.joined(separator: "; "))")
            }
        }
    }

    /// Puts the staged tree in place: an atomic exchange with the old one, which is then removed.
    package func commit() throws(SealbakError) {
        if targetExists {
            if sealbak_exchange(stagedTree, target) != 0 {
                let e = errno
                throw SealbakError.io("cannot swap the restored \(component.name) into", path: target, errno: e)
            }
        } else {
            if rename(stagedTree, target) != 0 { throw SealbakError.io("cannot move the restored \(component.name) to", path: target, errno: errno) }
        }
        let parent = (target as NSString).deletingLastPathComponent
        let fd = open(parent.isEmpty ? "." : parent, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
        cleanUp()
    }

    /// Removes the staging folder (and, after a commit, the old tree that was exchanged into it).
    package func cleanUp() {
        if let token { Interrupts.unregister(token) }
        token = nil
        try? FileManager.default.removeItem(atPath: staging)
    }

    deinit { cleanUp() }
}

