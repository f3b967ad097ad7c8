import Foundation
import SealbakFormat
import SealbakIO

/// A documentation tree (or any directory) packed with ignore rules: the defaults (`.git`, `node_modules`, …),
/// `--exclude` globs, `.sealbakignore` files found in the tree, and optional `--include` globs.
package struct DocsSpec: Sendable {
    package var name: String
    package var path: String
    package var excludes: [String] = []
    package var includes: [String] = []
    package var defaultExcludes = true

    package init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// `DIR` (named after its last component) or `NAME=DIR`.
    package init(argument: String) throws(SealbakError) {
        (name, path) = try Component.argument(argument, flag: "--docs")
    }
}

/// Component facts shared by every kind (Spec/COMPONENTS.md).
package enum Component {
    package static func checkName(_ n: String, flag: String) throws(SealbakError) {
        guard !n.isEmpty, n != ".", n != "..", !n.contains("/"), n.utf8.count <= 255, EntryName.problem(n) == nil else {
            throw SealbakError(
                .usage,
                "\(flag): \"\(n)\" cannot name a component; give NAME=PATH with a NAME without /"
            )
        }
    }

    /// `PATH` (named `defaultName(last path component)`) or `NAME=PATH`; the name is checked.
    package static func argument(
        _ argument: String,
        flag: String,
        defaultName: (String) -> String = { $0 }
    ) throws(SealbakError) -> (name: String, path: String) {
        var path = argument
        var explicit: String? = nil
        if let eq = argument.firstIndex(of: "="), !argument[..<eq].contains("/") {
            explicit = String(argument[..<eq])
            path = String(argument[argument.index(after: eq)...])
        }
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let name = explicit ?? defaultName((path as NSString).lastPathComponent)
        try checkName(name, flag: flag)
        return (name, path)
    }

    /// A folder becomes the tree below `root`; a single file goes below a `root` that exists only in the archive.
    package static func addFileOrTree(
        _ path: String,
        root: String,
        flag: String,
        filter: any TreeFilter,
        to plan: inout PackPlan
    ) throws(SealbakError) -> TreeStats {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw SealbakError(.notFound, "\(flag) \(path): no such file or directory")
        }
        if isDir.boolValue { return try plan.add(tree: path, as: root, filter: filter) }
        try plan.addDirectory(name: root)
        return try plan.add(tree: path, as: root + "/" + (path as NSString).lastPathComponent, filter: filter)
    }

    package static func metadata(kind: String, name: String, source: String) -> Metadata {
        var m = Metadata()
        m["component"] = kind
        m["component.name"] = name
        m["component.status"] = "ok"
        m["component.source"] = source
        return m
    }
}

/// Applies the docs rules during the walk, loading each directory's `.sealbakignore` on the way down.
final class DocsFilter: TreeFilter {
    private var rules: IgnoreRules
    private let includes: [String]
    private let root: String
    private(set) var ignoreFiles: [String] = []

    /// Where `.sealbakignore` files come from when not from the walked tree (a restore reads the archive's).
    private let ignoreText: ((String) throws -> [UInt8]?)?

    init(_ spec: DocsSpec) {
        rules = spec.defaultExcludes ? IgnoreRules.defaults() : IgnoreRules()
        for (i, e) in spec.excludes.enumerated() { rules.add(line: e, base: "", origin: "--exclude #\(i + 1)") }
        includes = spec.includes
        root = spec.path
        ignoreText = nil
    }

    /// The rules recorded in `docs.rules` (the defaults of the sealbak that packed, not of this one).
    init(recorded: RecordedRules, ignoreText: @escaping (String) throws -> [UInt8]?) {
        rules = IgnoreRules()
        for (i, p) in recorded.defaults.enumerated() {
            rules.add(line: p, base: "", origin: "default exclude \(i + 1)")
        }
        for (i, e) in recorded.exclude.enumerated() { rules.add(line: e, base: "", origin: "--exclude #\(i + 1)") }
        includes = recorded.include
        root = ""
        self.ignoreText = ignoreText
    }

    func enter(directory rel: String, fsPath: String) throws(SealbakError) {
        let shown = rel.isEmpty ? ".sealbakignore" : rel + "/.sealbakignore"
        let text: [UInt8]
        if let ignoreText {
            do {
                guard let t = try ignoreText(shown) else { return }
                text = t
            } catch let e as SealbakError { throw e } catch {
                throw SealbakError(.io, "cannot read \(shown): \(error)")
            }
        } else {
            let file = fsPath + "/.sealbakignore"
            guard FileManager.default.fileExists(atPath: file) else { return }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw SealbakError.io("cannot read", path: file, errno: EACCES)
            }
            text = [UInt8](data)
        }
        rules.add(file: String(decoding: text, as: UTF8.self), base: rel, origin: shown)
        ignoreFiles.append(shown)
    }

    func keep(_ rel: String, isDirectory: Bool) -> Bool {
        if rules.excluded(rel, isDirectory: isDirectory).0 { return false }
        if isDirectory || includes.isEmpty { return true }
        let base = rel.split(separator: "/").last.map(String.init) ?? rel
        return includes.contains { Glob.match($0, rel) || (!$0.contains("/") && Glob.match($0, base)) }
    }
}

/// `docs.rules` as recorded when packing.
struct RecordedRules: Codable {
    var defaults: [String] = []
    var exclude: [String] = []
    var include: [String] = []
    var ignoreFiles: [String] = []
    enum CodingKeys: String, CodingKey {
        case defaults, exclude, include
        case ignoreFiles = "ignore-files"
    }
}

package enum DocsComponent {
    package static func entryRoot(_ name: String) -> String { "docs/\(name)" }

    /// Adds the tree's entries to `plan` under `docs/NAME`; the root entry carries the component metadata.
    @discardableResult
    package static func add(_ spec: DocsSpec, to plan: inout PackPlan) throws(SealbakError) -> TreeStats {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: spec.path, isDirectory: &isDir) else {
            throw SealbakError(.notFound, "--docs \(spec.path): no such directory")
        }
        guard isDir.boolValue else {
            throw SealbakError(.usage, "--docs \(spec.path) is not a directory; pack single files as PATH arguments")
        }
        let filter = DocsFilter(spec)
        let source = URL(fileURLWithPath: spec.path).standardizedFileURL.path
        // The metadata is filled in after the walk, when the counts are known.
        let first = plan.entries.count
        let stats = try plan.add(tree: spec.path, as: entryRoot(spec.name), filter: filter)
        var m = Component.metadata(kind: "docs", name: spec.name, source: source)
        m["docs.files"] = String(stats.files)
        m["docs.directories"] = String(stats.directories)
        m["docs.symlinks"] = String(stats.symlinks)
        m["docs.bytes"] = String(stats.bytes)
        m["docs.excluded"] = String(stats.excluded)
        let rules: [String: [String]] = [
            "defaults": spec.defaultExcludes ? IgnoreRules.defaultExcludes : [],
            "exclude": spec.excludes, "include": spec.includes, "ignore-files": filter.ignoreFiles,
        ]
        let json =
            (try? JSONSerialization.data(withJSONObject: rules, options: [.sortedKeys])).map {
                String(decoding: $0, as: UTF8.self)
            } ?? "{}"
        m["docs.rules"] = json
        plan.setMetadata(m, at: first)
        return stats
    }
}
