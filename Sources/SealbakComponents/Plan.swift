import Foundation
import SealbakIO
import Yams

/// A backup plan (`sealbak.yaml`): an application's components and the pack options, so that
/// `sealbak pack OUT --plan sealbak.yaml` and `sealbak restore ARCHIVE --plan sealbak.yaml` need nothing else.
/// Every component flag of `pack` and `restore` has an equivalent here (docs/plan.md, docs/sealbak.example.yaml).
/// Unknown keys and bad values are reported as `FILE:LINE: …`.
package struct BackupPlan: Sendable {
    package enum Kind: String, Sendable, CaseIterable {
        case postgres, mysql, docs, config, vectors, chroma, qdrant, command, sqlite
    }

    /// Commands run around packing and restoring (stop the application, start it again).
    package struct Hooks: Sendable {
        package var beforePack: [CommandSpec] = []
        package var afterPack: [CommandSpec] = []
        package var beforeRestore: [CommandSpec] = []
        package var afterRestore: [CommandSpec] = []
        package init() {}
    }

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
        // checks before the swap (postgres: SQL assertions; folders: commands run in the staged folder)
        package var sqlChecks: [SQLCheck] = []
        package var commandChecks: [CommandSpec] = []
        // command
        package var dump: CommandSpec?
        package var restoreCommand: CommandSpec?
        package var check: CommandSpec?
        package var allowEmpty = false
    }

    package var file: String
    package var components: [Component] = []
    /// `app:` name, description and version, recorded in the archive.
    package var app: [String: String] = [:]
    package var hooks = Hooks()
    package var healthCheck: HealthCheck?
    // Pack options (flags given on the command line win).
    package var cipher: String?
    package var compression: String?
    /// `shuffle: false`: no shuffle codec for vector files, so the archive is format version 1 (`--no-shuffle`).
    package var shuffle: Bool?
    /// `dictionary: false`: no zstd dictionary for small files (`--no-dictionary`).
    package var dictionary: Bool?
    package var level: Int?
    package var frameSize: String?
    package var kdfMemory: Int?
    package var kdfPasses: Int?
    package var recipients: [String] = []
    package var pgBin: [String] = []
    /// Object-storage settings (endpoint, region, addressing, part-size, parallel); never credentials.
    package var s3: [String: String] = [:]
    /// `destination:`, `state-dir:`, `retention:`, `notify:`, `status:`, `password-file:`, `identity:` (sealbak run).
    /// (`schedule:` is read by sealbak schedule.)
    package var operations = Operations()

    /// Reads and checks a plan; relative paths are taken from the plan file's folder.
    package static func load(_ path: String) throws(SealbakError) -> BackupPlan {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SealbakError(.notFound, "cannot read the plan \(path)")
        }
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
            throw SealbakError(
                .usage,
                "\(file):\(ConfigParser.describe(e).replacingOccurrences(of: "line ", with: "")) (the plan is not "
                    + "valid YAML)"
            )
        } catch { throw SealbakError(.usage, "\(file): \(error)") }
        guard let root, case .mapping(let top) = root else {
            throw fail(root, "the plan must be a mapping with a components: list")
        }
        var plan = BackupPlan(file: file)
        let topKeys = [
            "version", "app", "components", "pack", "pg-bin", "s3", "hooks", "health-check",
            "destination", "state-dir", "retention", "notify", "status", "password-file", "identity",
        ]
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
            case "app":
                guard case .mapping(let m) = v else {
                    throw fail(v, "app must be a mapping with name:, description: and version:")
                }
                for (k, x) in m {
                    let key = try keyName(k)
                    guard ["name", "description", "version"].contains(key) else {
                        throw fail(k, "unknown key \"app.\(key)\" (expected one of: name, description, version)")
                    }
                    if let i = x.int {
                        plan.app[key] = String(i)
                    } else if let d = x.float {
                        plan.app[key] = String(d)
                    } else {
                        plan.app[key] = try string(x, "app.\(key)")
                    }
                }
            case "hooks":
                guard case .mapping(let m) = v else {
                    throw fail(v, "hooks must be a mapping of before-pack, after-pack, before-restore, after-restore")
                }
                for (k, x) in m {
                    switch try keyName(k) {
                    case "before-pack": plan.hooks.beforePack = try commands(x, "hooks.before-pack")
                    case "after-pack": plan.hooks.afterPack = try commands(x, "hooks.after-pack")
                    case "before-restore": plan.hooks.beforeRestore = try commands(x, "hooks.before-restore")
                    case "after-restore": plan.hooks.afterRestore = try commands(x, "hooks.after-restore")
                    case let other:
                        throw fail(
                            k,
                            "unknown hook \"\(other)\" (expected one of: before-pack, after-pack, before-restore, "
                                + "after-restore)"
                        )
                    }
                }
            case "health-check":
                plan.healthCheck = try healthCheck(v)
            case "destination": try destination(v, &plan.operations)
            case "state-dir": plan.operations.stateDir = resolve(try string(v, "state-dir"))
            case "retention": plan.operations.retention = try retention(v)
            case "notify": plan.operations.notify = try notify(v)
            case "status": try status(v, &plan.operations)
            case "password-file": plan.operations.passwordFile = resolve(try string(v, "password-file"))
            case "identity": plan.operations.identity = resolve(try string(v, "identity"))
            default:
                throw fail(k, "unknown key \"\(key)\" (expected one of: \(topKeys.joined(separator: ", ")))")
            }
        }
        guard !plan.components.isEmpty else { throw fail(root, "the plan lists no components") }
        var seen = Set<String>()
        for c in plan.components where !seen.insert(c.name).inserted {
            throw SealbakError(.usage, "\(file):\(c.line): two components are named \(c.name)")
        }
        finish(&plan)
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
        guard let i = v.int, range.contains(i) else {
            throw fail(v, "\(what) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }

    /// A command: a string (run by /bin/sh -c), a list (an argument vector, no shell), or a mapping with
    /// `run:` (either form) and `timeout:` (seconds).
    func command(_ v: Node, _ what: String) throws(SealbakError) -> CommandSpec {
        switch v {
        case .scalar:
            return CommandSpec(shell: try string(v, what))
        case .sequence:
            let argv = try strings(v, what)
            guard !argv.isEmpty else { throw fail(v, "\(what) must not be empty") }
            return CommandSpec(argv: argv)
        case .mapping(let m):
            var spec: CommandSpec?
            var timeout: Double?
            var env: [String: String] = [:]
            for (k, x) in m {
                switch try keyName(k) {
                case "run": spec = try command(x, what + ".run")
                case "timeout":
                    guard let t = x.float ?? x.int.map(Double.init), t > 0 else {
                        throw fail(x, "\(what).timeout must be a number of seconds")
                    }
                    timeout = t
                case "env":
                    guard case .mapping(let e) = x else { throw fail(x, "\(what).env must be a mapping") }
                    for (ek, ev) in e { env[try keyName(ek)] = try string(ev, "\(what).env") }
                case let other: throw fail(k, "unknown key \"\(other)\" in \(what) (expected run, timeout, env)")
                }
            }
            guard var s = spec else { throw fail(v, "\(what) has no run:") }
            if let timeout { s.timeoutSeconds = timeout }
            s.environment = env
            return s
        default:
            throw fail(v, "\(what) must be a command: a string, a list of arguments, or a mapping with run:")
        }
    }

    /// One command, or a list of commands (each a string, an argument list or a mapping).
    func commands(_ v: Node, _ what: String) throws(SealbakError) -> [CommandSpec] {
        guard case .sequence(let seq) = v else { return [try command(v, what)] }
        var out: [CommandSpec] = []
        for x in seq { out.append(try command(x, what)) }
        return out
    }

    func healthCheck(_ v: Node) throws(SealbakError) -> HealthCheck {
        guard case .mapping(let m) = v else { throw fail(v, "health-check must be a mapping with url: or command:") }
        var h = HealthCheck()
        for (k, x) in m {
            switch try keyName(k) {
            case "url":
                let u = try string(x, "health-check.url")
                guard u.hasPrefix("http://") || u.hasPrefix("https://") else {
                    throw fail(x, "health-check.url must be an http:// or https:// URL")
                }
                h.url = u
            case "command": h.command = try command(x, "health-check.command")
            case "retries": h.retries = try int(x, "health-check.retries", 0...1000)
            case "interval":
                guard let t = x.float ?? x.int.map(Double.init), t >= 0 else {
                    throw fail(x, "health-check.interval must be a number of seconds")
                }
                h.interval = t
            case "timeout":
                guard let t = x.float ?? x.int.map(Double.init), t > 0 else {
                    throw fail(x, "health-check.timeout must be a number of seconds")
                }
                h.timeout = t
            case let other:
                throw fail(
                    k,
                    "unknown key \"health-check.\(other)\" (expected url, command, retries, interval, timeout)"
                )
            }
        }
        guard (h.url == nil) != (h.command == nil) else {
            throw fail(v, "health-check needs exactly one of url: or command:")
        }
        return h
    }

    func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        if path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] {
            return home + path.dropFirst(1)
        }
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: baseDir, isDirectory: true))
            .standardizedFileURL.path
    }

    func packOptions(_ v: Node, _ plan: inout BackupPlan) throws(SealbakError) {
        guard case .mapping(let m) = v else { throw fail(v, "pack must be a mapping of options") }
        let known = [
            "cipher", "compression", "shuffle", "dictionary", "level", "frame-size", "kdf-memory", "kdf-passes",
            "recipients",
        ]
        for (k, x) in m {
            switch try keyName(k) {
            case "cipher":
                let c = try string(x, "cipher")
                guard ["xchacha20-poly1305", "aes-256-gcm"].contains(c) else {
                    throw fail(x, "cipher must be xchacha20-poly1305 or aes-256-gcm")
                }
                plan.cipher = c
            case "compression":
                let c = try string(x, "compression")
                guard ["zstd", "zlib", "none"].contains(c) else {
                    throw fail(x, "compression must be zstd, zlib or none")
                }
                plan.compression = c
            case "shuffle": plan.shuffle = try bool(x, "shuffle")
            case "dictionary": plan.dictionary = try bool(x, "dictionary")
            case "level": plan.level = try int(x, "level", 1...19)
            case "frame-size":
                if let i = x.int { plan.frameSize = String(i) } else { plan.frameSize = try string(x, "frame-size") }
            case "kdf-memory": plan.kdfMemory = try int(x, "kdf-memory", 8...(1 << 20))
            case "kdf-passes": plan.kdfPasses = try int(x, "kdf-passes", 1...1000)
            case "recipients": plan.recipients = try strings(x, "recipients")
            case let other:
                throw fail(k, "unknown pack option \"\(other)\" (expected one of: \(known.joined(separator: ", ")))")
            }
        }
    }

    func s3Options(_ v: Node, _ plan: inout BackupPlan) throws(SealbakError) {
        guard case .mapping(let m) = v else { throw fail(v, "s3 must be a mapping of options") }
        let known = [
            "endpoint", "region", "addressing", "part-size", "parallel", "server-copy", "uniform-parts", "object-lock",
        ]
        for (k, x) in m {
            let key = try keyName(k)
            switch key {
            case "endpoint":
                let e = try string(x, "endpoint")
                guard e.hasPrefix("http://") || e.hasPrefix("https://") else {
                    throw fail(x, "endpoint must be an http:// or https:// URL")
                }
                plan.s3[key] = e
            case "region": plan.s3[key] = try string(x, "region")
            case "addressing":
                let a = try string(x, "addressing")
                guard a == "path" || a == "virtual" else { throw fail(x, "addressing must be path or virtual") }
                plan.s3[key] = a
            case "part-size":
                if let i = x.int { plan.s3[key] = String(i) } else { plan.s3[key] = try string(x, "part-size") }
            case "parallel": plan.s3[key] = String(try int(x, "parallel", 1...64))
            case "server-copy", "uniform-parts": plan.s3[key] = try bool(x, key) ? "true" : "false"
            case "object-lock": plan.s3[key] = try string(x, "object-lock")
            case "access-key-id", "secret-access-key", "session-token":
                throw fail(
                    k,
                    "credentials do not belong in the plan: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                        + "--s3-credentials-file"
                )
            default: throw fail(k, "unknown s3 option \"\(key)\" (expected one of: \(known.joined(separator: ", ")))")
            }
        }
    }

    func component(_ node: Node) throws(SealbakError) -> BackupPlan.Component {
        guard case .mapping(let m) = node else {
            throw fail(node, "each component must be a mapping with name: and kind:")
        }
        var fields: [String: (Node, Node)] = [:]
        for (k, v) in m {
            let key = try keyName(k)
            if fields[key] != nil { throw fail(k, "\(key) is given twice") }
            fields[key] = (k, v)
        }
        guard let kindNode = fields["kind"]?.1 else {
            throw fail(
                node,
                "the component has no kind: (one of "
                    + "\(BackupPlan.Kind.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        guard let kind = BackupPlan.Kind(rawValue: try string(kindNode, "kind")) else {
            throw fail(
                kindNode,
                "unknown kind \"\(kindNode.string ?? "")\" (expected one of: "
                    + "\(BackupPlan.Kind.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        guard let nameNode = fields["name"]?.1 else { throw fail(node, "the \(kind.rawValue) component has no name:") }
        let name = try string(nameNode, "name")
        do { try SealbakComponents.Component.checkName(name, flag: "name") } catch {
            throw fail(nameNode, error.message)
        }
        var c = BackupPlan.Component(name: name, kind: kind, line: node.mark?.line ?? 1)
        let allowed: [String]
        switch kind {
        case .postgres, .mysql:
            allowed = ["name", "kind", "url", "password-file", "allow-missing", "restore", "checks"]
        case .docs:
            allowed = [
                "name", "kind", "path", "exclude", "include", "default-excludes", "allow-missing", "restore", "checks",
            ]
        case .config: allowed = ["name", "kind", "path", "redact-secrets", "allow-missing", "restore", "checks"]
        case .vectors, .chroma, .qdrant, .sqlite:
            allowed = ["name", "kind", "path", "allow-missing", "restore", "checks"]
        case .command: allowed = ["name", "kind", "dump", "restore", "check", "allow-empty", "allow-missing"]
        }
        for (key, (k, v)) in fields.sorted(by: { ($0.value.0.mark?.line ?? 0) < ($1.value.0.mark?.line ?? 0) }) {
            guard allowed.contains(key) else {
                throw fail(
                    k,
                    "unknown key \"\(key)\" for a \(kind.rawValue) component (expected one of: "
                        + "\(allowed.joined(separator: ", ")))"
                )
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
            case "dump": c.dump = try command(v, "dump")
            case "check": c.check = try command(v, "check")
            case "allow-empty": c.allowEmpty = try bool(v, "allow-empty")
            case "restore" where kind == .command: c.restoreCommand = try command(v, "restore")
            case "checks":
                guard case .sequence(let list) = v else { throw fail(v, "checks must be a list") }
                for item in list {
                    if kind == .postgres || kind == .mysql || kind == .sqlite {
                        guard case .mapping(let m) = item else {
                            throw fail(
                                item,
                                "each check of a \(kind.rawValue) component is a mapping with sql: and expect:"
                            )
                        }
                        var sql: String?
                        var expect: String?
                        for (ck, cv) in m {
                            switch try keyName(ck) {
                            case "sql": sql = try string(cv, "checks.sql")
                            case "expect":
                                if let i = cv.int {
                                    expect = String(i)
                                } else {
                                    expect = try string(cv, "checks.expect")
                                }
                            case let other: throw fail(ck, "unknown key \"\(other)\" in a check (expected sql, expect)")
                            }
                        }
                        guard let sql, let expect else { throw fail(item, "a check needs sql: and expect:") }
                        c.sqlChecks.append(SQLCheck(sql: sql, expect: expect))
                    } else {
                        if case .mapping(let m) = item, let cmd = m.first(where: { $0.key.string == "command" })?.value
                        {
                            c.commandChecks.append(try command(cmd, "checks.command"))
                        } else {
                            throw fail(
                                item,
                                "each check of a \(kind.rawValue) component is a mapping with command: (run in the "
                                    + "restored folder before it is put in place)"
                            )
                        }
                    }
                }
            case "restore":
                guard case .mapping(let r) = v else {
                    throw fail(
                        v,
                        "restore must be a mapping (\(kind == .postgres || kind == .mysql ? "url:" : "path:"))"
                    )
                }
                for (rk, rv) in r {
                    let rkey = try keyName(rk)
                    switch (kind, rkey) {
                    case (.postgres, "url"), (.mysql, "url"): c.restoreURL = try string(rv, "restore.url")
                    case (.docs, "path"), (.config, "path"), (.vectors, "path"), (.chroma, "path"), (.qdrant, "path"),
                        (.sqlite, "path"):
                        c.restorePath = resolve(try string(rv, "restore.path"))
                    default:
                        throw fail(
                            rk,
                            "unknown key \"restore.\(rkey)\" for a \(kind.rawValue) component (expected "
                                + "restore.\(kind == .postgres || kind == .mysql ? "url" : "path"))"
                        )
                    }
                }
            default: break
            }
        }
        switch kind {
        case .postgres, .mysql:
            if c.url == nil { throw fail(node, "the \(kind.rawValue) component \(name) has no url:") }
        case .command:
            if c.dump == nil {
                throw fail(
                    node,
                    "the command component \(name) has no dump: (the command whose standard output is the backup)"
                )
            }
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
            if let x = c.dump { d["dump"] = x.display }
            if let x = c.restoreCommand { d["restore"] = x.display }
            if let x = c.check { d["check"] = x.display }
            comps.append(d)
        }
        let doc: [String: Any] = ["file": file, "components": comps]
        return (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])).map {
            String(decoding: $0, as: UTF8.self)
        } ?? "{}"
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
