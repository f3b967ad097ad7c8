import Foundation
import SealbakArchive
import Yams

/// A backup plan (`sealbak.yaml`): an application's components and the pack options, so that
/// `sealbak pack OUT --plan sealbak.yaml` and `sealbak restore ARCHIVE --plan sealbak.yaml` need nothing else.
/// Every component flag of `pack` and `restore` has an equivalent here (docs/plan.md, docs/sealbak.example.yaml).
/// Unknown keys and bad values are reported as `FILE:LINE: …`.
package struct BackupPlan: Sendable {
    package enum Kind: String, Sendable, CaseIterable { case postgres, docs, config, vectors, chroma, qdrant }

    package struct Component: Sendable {
        package var name: String
        package var kind: Kind
        package var line: Int
        // postgres
        package var url: String?
        package var passwordFile: String?
        package var allowMissing = false
        package var restoreURL: String?
        // docs, config, vectors
        package var path: String?
        package var exclude: [String] = []
        package var include: [String] = []
        package var defaultExcludes = true
        package var redactSecrets = false
        package var restorePath: String?
    }

    package var file: String
    package var components: [Component] = []
    // Pack options (flags given on the command line win).
    package var cipher: String?
    package var compression: String?
    package var level: Int?
    package var frameSize: String?
    package var kdfMemory: Int?
    package var kdfPasses: Int?
    package var recipients: [String] = []
    package var pgBin: [String] = []
    /// Object-storage settings (endpoint, region, addressing, part-size, parallel); never credentials.
    package var s3: [String: String] = [:]

    /// Reads and checks a plan; relative paths are taken from the plan file's folder.
    package static func load(_ path: String) throws(SealbakError) -> BackupPlan {
        guard let data = FileManager.default.contents(atPath: path) else { throw SealbakError(.notFound, "cannot read the plan \(path)") }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    package static func parse(_ text: String, file: String) throws(SealbakError) -> BackupPlan {
        var p = PlanReader(file: file)
        return try p.read(text)
    }
}

struct PlanReader {
    let file: String
    let baseDir: String

    init(file: String) {
        self.file = file
        let dir = (file as NSString).deletingLastPathComponent
        baseDir = dir.isEmpty ? "." : dir
    }

    func fail(_ node: Node?, _ message: String) -> SealbakError {
        SealbakError(.usage, "\(file):\(node?.mark?.line ?? 1): \(message)")
    }

    mutating func read(_ text: String) throws(SealbakError) -> BackupPlan {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let e as YamlError {
            throw SealbakError(.usage, "\(file):\(ConfigParser.describe(e).replacingOccurrences(of: "line ", with: "")) (the plan is not valid YAML)")
        } catch { throw SealbakError(.usage, "\(file): \(error)") }
        guard let root, case .mapping(let top) = root else { throw fail(root, "the plan must be a mapping with a components: list") }
        var plan = BackupPlan(file: file)
        let topKeys = ["version", "components", "pack", "pg-bin", "s3"]
        for (k, v) in top {
            let key = try keyName(k)
            switch key {
            case "version":
                guard v.int == 1 else { throw fail(v, "version must be 1") }
            case "components":
                guard case .sequence(let list) = v else { throw fail(v, "components must be a list of components") }
                for item in list { plan.components.append(try component(item)) }
            case "pack":
                try packOptions(v, &plan)
            case "pg-bin":
                plan.pgBin = try strings(v, "pg-bin").map(resolve)
            case "s3":
                try s3Options(v, &plan)
            default:
                throw fail(k, "unknown key \"\(key)\" (expected one of: \(topKeys.joined(separator: ", ")))")
            }
        }
        guard !plan.components.isEmpty else { throw fail(root, "the plan lists no components") }
        var seen = Set<String>()
        for c in plan.components where !seen.insert(c.name).inserted {
            throw SealbakError(.usage, "\(file):\(c.line): two components are named \(c.name)")
        }
        return plan
    }

    func keyName(_ k: Node) throws(SealbakError) -> String {
        guard let s = k.string else { throw fail(k, "keys must be strings") }
        return s
    }

    func string(_ v: Node, _ what: String) throws(SealbakError) -> String {
        guard case .scalar(let s) = v, !s.string.isEmpty else { throw fail(v, "\(what) must be a non-empty string") }
        return s.string
    }

    func strings(_ v: Node, _ what: String) throws(SealbakError) -> [String] {
        if case .scalar = v { return [try string(v, what)] }
        guard case .sequence(let seq) = v else { throw fail(v, "\(what) must be a string or a list of strings") }
        var out: [String] = []
        for x in seq { out.append(try string(x, what)) }
        return out
    }

    func bool(_ v: Node, _ what: String) throws(SealbakError) -> Bool {
        guard let b = v.bool else { throw fail(v, "\(what) must be true or false") }
        return b
    }

    func int(_ v: Node, _ what: String, _ range: ClosedRange<Int>) throws(SealbakError) -> Int {
        guard let i = v.int, range.contains(i) else { throw fail(v, "\(what) must be a whole number in \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        if path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] { return home + path.dropFirst(1) }
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: baseDir, isDirectory: true)).standardizedFileURL.path
    }

    func packOptions(_ v: Node, _ plan: inout BackupPlan) throws(SealbakError) {
        guard case .mapping(let m) = v else { throw fail(v, "pack must be a mapping of options") }
        let known = ["cipher", "compression", "level", "frame-size", "kdf-memory", "kdf-passes", "recipients"]
        for (k, x) in m {
            switch try keyName(k) {
            case "cipher":
                let c = try string(x, "cipher")
                guard ["xchacha20-poly1305", "aes-256-gcm"].contains(c) else { throw fail(x, "cipher must be xchacha20-poly1305 or aes-256-gcm") }
                plan.cipher = c
            case "compression":
                let c = try string(x, "compression")
                guard ["zstd", "zlib", "none"].contains(c) else { throw fail(x, "compression must be zstd, zlib or none") }
                plan.compression = c
            case "level": plan.level = try int(x, "level", 1...19)
            case "frame-size":
                if let i = x.int { plan.frameSize = String(i) } else { plan.frameSize = try string(x, "frame-size") }
            case "kdf-memory": plan.kdfMemory = try int(x, "kdf-memory", 8...(1 << 20))
            case "kdf-passes": plan.kdfPasses = try int(x, "kdf-passes", 1...1000)
            case "recipients": plan.recipients = try strings(x, "recipients")
            case let other: throw fail(k, "unknown pack option \"\(other)\" (expected one of: \(known.joined(separator: ", ")))")
            }
        }
    }

    func s3Options(_ v: Node, _ plan: inout BackupPlan) throws(SealbakError) {
        guard case .mapping(let m) = v else { throw fail(v, "s3 must be a mapping of options") }
        let known = ["endpoint", "region", "addressing", "part-size", "parallel"]
        for (k, x) in m {
            let key = try keyName(k)
            switch key {
            case "endpoint":
                let e = try string(x, "endpoint")
                guard e.hasPrefix("http://") || e.hasPrefix("https://") else { throw fail(x, "endpoint must be an http:// or https:// URL") }
                plan.s3[key] = e
            case "region": plan.s3[key] = try string(x, "region")
            case "addressing":
                let a = try string(x, "addressing")
                guard a == "path" || a == "virtual" else { throw fail(x, "addressing must be path or virtual") }
                plan.s3[key] = a
            case "part-size":
                if let i = x.int { plan.s3[key] = String(i) } else { plan.s3[key] = try string(x, "part-size") }
            case "parallel": plan.s3[key] = String(try int(x, "parallel", 1...64))
            case "access-key-id", "secret-access-key", "session-token":
                throw fail(k, "credentials do not belong in the plan: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --s3-credentials-file")
            default: throw fail(k, "unknown s3 option \"\(key)\" (expected one of: \(known.joined(separator: ", ")))")
            }
        }
    }

    func component(_ node: Node) throws(SealbakError) -> BackupPlan.Component {
        guard case .mapping(let m) = node else { throw fail(node, "each component must be a mapping with name: and kind:") }
        var fields: [String: (Node, Node)] = [:]
        for (k, v) in m {
            let key = try keyName(k)
            if fields[key] != nil { throw fail(k, "\(key) is given twice") }
            fields[key] = (k, v)
        }
        guard let kindNode = fields["kind"]?.1 else { throw fail(node, "the component has no kind: (one of \(BackupPlan.Kind.allCases.map(\.rawValue).joined(separator: ", ")))") }
        guard let kind = BackupPlan.Kind(rawValue: try string(kindNode, "kind")) else {
            throw fail(kindNode, "unknown kind \"\(kindNode.string ?? "")\" (expected one of: \(BackupPlan.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let nameNode = fields["name"]?.1 else { throw fail(node, "the \(kind.rawValue) component has no name:") }
        let name = try string(nameNode, "name")
        do { try SealbakComponents.Component.checkName(name, flag: "name") } catch { throw fail(nameNode, error.message) }
        var c = BackupPlan.Component(name: name, kind: kind, line: node.mark?.line ?? 1)
        let allowed: [String]
        switch kind {
        case .postgres: allowed = ["name", "kind", "url", "password-file", "allow-missing", "restore"]
        case .docs: allowed = ["name", "kind", "path", "exclude", "include", "default-excludes", "restore"]
        case .config: allowed = ["name", "kind", "path", "redact-secrets", "restore"]
        case .vectors, .chroma, .qdrant: allowed = ["name", "kind", "path", "restore"]
        }
        for (key, (k, v)) in fields.sorted(by: { ($0.value.0.mark?.line ?? 0) < ($1.value.0.mark?.line ?? 0) }) {
            guard allowed.contains(key) else {
                throw fail(k, "unknown key \"\(key)\" for a \(kind.rawValue) component (expected one of: \(allowed.joined(separator: ", ")))")
            }
            switch key {
            case "url": c.url = try string(v, "url")
            case "password-file": c.passwordFile = resolve(try string(v, "password-file"))
            case "allow-missing": c.allowMissing = try bool(v, "allow-missing")
            case "path": c.path = resolve(try string(v, "path"))
            case "exclude": c.exclude = try strings(v, "exclude")
            case "include": c.include = try strings(v, "include")
            case "default-excludes": c.defaultExcludes = try bool(v, "default-excludes")
            case "redact-secrets": c.redactSecrets = try bool(v, "redact-secrets")
            case "restore":
                guard case .mapping(let r) = v else { throw fail(v, "restore must be a mapping (\(kind == .postgres ? "url:" : "path:"))") }
                for (rk, rv) in r {
                    let rkey = try keyName(rk)
                    switch (kind, rkey) {
                    case (.postgres, "url"): c.restoreURL = try string(rv, "restore.url")
                    case (.docs, "path"), (.config, "path"), (.vectors, "path"), (.chroma, "path"), (.qdrant, "path"): c.restorePath = resolve(try string(rv, "restore.path"))
                    default: throw fail(rk, "unknown key \"restore.\(rkey)\" for a \(kind.rawValue) component (expected restore.\(kind == .postgres ? "url" : "path"))")
                    }
                }
            default: break
            }
        }
        switch kind {
        case .postgres: if c.url == nil { throw fail(node, "the postgres component \(name) has no url:") }
        default: if c.path == nil { throw fail(node, "the \(kind.rawValue) component \(name) has no path:") }
        }
        return c
    }
}

extension BackupPlan {
    /// The plan as recorded in the archive's metadata: components and options, URLs without passwords.
    package var recorded: String {
        var comps: [[String: Any]] = []
        for c in components {
            var d: [String: Any] = ["name": c.name, "kind": c.kind.rawValue]
            if let u = c.url { d["url"] = Self.withoutPassword(u) }
            if let p = c.path { d["path"] = p }
            if !c.exclude.isEmpty { d["exclude"] = c.exclude }
            if !c.include.isEmpty { d["include"] = c.include }
            if !c.defaultExcludes { d["default-excludes"] = false }
            if c.redactSecrets { d["redact-secrets"] = true }
            if c.allowMissing { d["allow-missing"] = true }
            comps.append(d)
        }
        let doc: [String: Any] = ["file": file, "components": comps]
        return (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// postgresql://user:secret@host/db → postgresql://user@host/db (key=value strings lose password=…).
    package static func withoutPassword(_ url: String) -> String {
        if var c = URLComponents(string: url), c.scheme != nil, c.password != nil {
            c.password = nil
            return c.string ?? url
        }
        return url.split(separator: " ").filter { !$0.lowercased().hasPrefix("password=") }.joined(separator: " ")
    }
}
