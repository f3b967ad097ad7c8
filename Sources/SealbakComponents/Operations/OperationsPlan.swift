import Foundation
import SealbakIO
import SealbakS3
import Yams

/// The plan's operations blocks, read by `sealbak run`, `history`, `status`, `verify --plan` and `drill`
/// (docs/operations.md): where archives go and how they are named, where the run history lives, what retention
/// keeps, whom to tell, and when the plan counts as unhealthy.
package struct Operations: Sendable {
    /// A notification: a command (the run's JSON record on standard input) or a webhook (POSTed as JSON).
    package struct Notify: Sendable {
        package enum Event: String, Sendable, CaseIterable { case success, warning, failure }
        package var on: Set<Event> = [.failure]
        package var command: CommandSpec?
        package var webhook: String?
        /// Seconds the webhook or the command may take (default 30): a hanging receiver never holds up the run.
        package var timeout = 30.0
        package var line: Int = 1
    }

    /// `destination.location`: a folder or `s3://BUCKET/PREFIX/`.
    package var location: String?
    /// `destination.name`: the archive name; `{now}` is the UTC time to the millisecond, `{plan}` the plan's name.
    package var namePattern = "{plan}-{now}.sbk"
    /// `destination.verify`: verify the archive after it was written (needs a way to open it: password-file or
    /// identity).
    package var verify = false
    /// `destination.incremental`: each run builds on the newest archive of the destination (Spec §14).
    package var incremental = false
    /// `destination.full-every`: at most this many archives per chain (the root included); then a full one.
    package var fullEvery = 7
    /// `state-dir`: the history, the lock and the last status; default `.sealbak/<plan name>` beside the plan.
    package var stateDir: String = ""
    /// `password-file`: the archive password for run (pack and verify), verify and drill.
    package var passwordFile: String?
    /// `identity`: an identity file (sealbak keygen) that opens archives packed for `pack.recipients`.
    package var identity: String?
    /// `retention:`; nil when the plan keeps everything.
    package var retention: RetentionPolicy?
    package var notify: [Notify] = []
    /// `status.max-age`: the last success must be younger than this.
    package var maxAge: RetentionDuration?
    /// `status.size-change`: the last archive's size may differ from the one before by at most this fraction.
    package var sizeChange: Double?
    /// `status.prometheus`: a node_exporter textfile written after every run and by `sealbak status`.
    package var prometheus: String?
    /// The plan's name in records and metrics: `app.name`, else the plan file's name without extension.
    package var planName = ""

    package init() {}
}

extension PlanReader {
    func duration(_ v: Node, _ what: String) throws(SealbakError) -> RetentionDuration {
        let text = try string(v, what)
        guard let d = RetentionDuration(text) else {
            throw fail(v, "\(what) must be \(RetentionDuration.help), not \(text)")
        }
        return d
    }

    func destination(_ v: Node, _ ops: inout Operations) throws(SealbakError) {
        if case .scalar = v {
            ops.location = try location(v, "destination")
            return
        }
        guard case .mapping(let m) = v else {
            throw fail(v, "destination must be a folder or s3:// prefix, or a mapping with location:, name:, verify:")
        }
        for (k, x) in m {
            switch try keyName(k) {
            case "location": ops.location = try location(x, "destination.location")
            case "name":
                let n = try string(x, "destination.name")
                guard !n.contains("/"), n.contains("{now}") else {
                    throw fail(
                        x,
                        "destination.name must be a file name with {now} in it (e.g. {plan}-{now}.sbk): {now} gives "
                            + "every run its own name, and retention reads the time from it"
                    )
                }
                ops.namePattern = n
            case "verify": ops.verify = try bool(x, "destination.verify")
            case "incremental": ops.incremental = try bool(x, "destination.incremental")
            case "full-every":
                guard let n = x.int, n >= 1, n <= 1025 else {
                    throw fail(x, "destination.full-every must be a whole number of archives from 1 to 1025")
                }
                ops.fullEvery = Int(n)
            case let other:
                throw fail(
                    k,
                    "unknown key \"destination.\(other)\" (expected location, name, verify, incremental, full-every)"
                )
            }
        }
        guard ops.location != nil else {
            throw fail(v, "destination has no location: (a folder or s3://BUCKET/PREFIX/)")
        }
    }

    private func location(_ v: Node, _ what: String) throws(SealbakError) -> String {
        let s = try string(v, what)
        if s.hasPrefix("s3://") { return s.hasSuffix("/") ? s : s + "/" }
        return resolve(s)
    }

    func retention(_ v: Node) throws(SealbakError) -> RetentionPolicy {
        guard case .mapping(let m) = v else {
            throw fail(
                v,
                "retention must be a mapping (keep-within, keep-last, keep-daily, keep-weekly, keep-monthly, "
                    + "keep-yearly)"
            )
        }
        var p = RetentionPolicy()
        for (k, x) in m {
            switch try keyName(k) {
            case "keep-within": p.within = try duration(x, "retention.keep-within")
            case "keep-last": p.last = try int(x, "retention.keep-last", 0...100_000)
            case "keep-daily": p.daily = try int(x, "retention.keep-daily", 0...100_000)
            case "keep-weekly": p.weekly = try int(x, "retention.keep-weekly", 0...100_000)
            case "keep-monthly": p.monthly = try int(x, "retention.keep-monthly", 0...100_000)
            case "keep-yearly": p.yearly = try int(x, "retention.keep-yearly", 0...100_000)
            case let other:
                throw fail(
                    k,
                    "unknown key \"retention.\(other)\" (expected keep-within, keep-last, keep-daily, keep-weekly, "
                        + "keep-monthly, keep-yearly)"
                )
            }
        }
        guard !p.isEmpty else {
            throw fail(
                v,
                "retention keeps nothing: give at least one keep- rule (remove retention: to keep every archive)"
            )
        }
        return p
    }

    func notify(_ v: Node) throws(SealbakError) -> [Operations.Notify] {
        guard case .sequence(let list) = v else {
            throw fail(v, "notify must be a list of {on:, command:} or {on:, webhook:}")
        }
        var out: [Operations.Notify] = []
        for item in list {
            guard case .mapping(let m) = item else {
                throw fail(item, "each notify entry is a mapping with on: and command: or webhook:")
            }
            var n = Operations.Notify(line: item.mark?.line ?? 1)
            for (k, x) in m {
                switch try keyName(k) {
                case "on":
                    var events = Set<Operations.Notify.Event>()
                    for e in try strings(x, "notify.on") {
                        guard let ev = Operations.Notify.Event(rawValue: e) else {
                            throw fail(x, "notify.on: unknown event \(e) (expected success, warning, failure)")
                        }
                        events.insert(ev)
                    }
                    n.on = events
                case "command": n.command = try command(x, "notify.command")
                case "timeout":
                    guard let t = x.float ?? x.int.map(Double.init), t > 0, t <= 3600 else {
                        throw fail(x, "notify.timeout must be a number of seconds (1 to 3600)")
                    }
                    n.timeout = t
                case "webhook":
                    let u = try string(x, "notify.webhook")
                    guard u.hasPrefix("http://") || u.hasPrefix("https://") else {
                        throw fail(x, "notify.webhook must be an http:// or https:// URL")
                    }
                    n.webhook = u
                case let other:
                    throw fail(k, "unknown key \"notify.\(other)\" (expected on, command, webhook, timeout)")
                }
            }
            guard (n.command == nil) != (n.webhook == nil) else {
                throw fail(item, "a notify entry needs exactly one of command: or webhook:")
            }
            out.append(n)
        }
        return out
    }

    func status(_ v: Node, _ ops: inout Operations) throws(SealbakError) {
        guard case .mapping(let m) = v else {
            throw fail(v, "status must be a mapping (max-age, size-change, prometheus)")
        }
        for (k, x) in m {
            switch try keyName(k) {
            case "max-age": ops.maxAge = try duration(x, "status.max-age")
            case "size-change":
                guard let f = x.float ?? x.int.map(Double.init), f > 0 else {
                    throw fail(x, "status.size-change must be a fraction above 0, e.g. 0.5 for ±50%")
                }
                ops.sizeChange = f
            case "prometheus": ops.prometheus = resolve(try string(x, "status.prometheus"))
            case let other: throw fail(k, "unknown key \"status.\(other)\" (expected max-age, size-change, prometheus)")
            }
        }
    }

    /// Defaults that depend on the whole plan (its name, the state folder).
    func finish(_ plan: inout BackupPlan) {
        let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        plan.operations.planName = plan.app["name"] ?? (stem.isEmpty ? "sealbak" : stem)
        if plan.operations.stateDir.isEmpty {
            plan.operations.stateDir = resolve(".sealbak/" + Operations.safeName(plan.operations.planName))
        }
    }
}

extension Operations {
    /// `name` with anything but letters, digits, `.`, `-` and `_` replaced by `_` (for file names and labels).
    package static func safeName(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
    }

    /// The archive name for a run at `now`.
    package func archiveName(now: Date) -> String {
        RetentionPolicy.expandName(
            namePattern.replacingOccurrences(of: "{plan}", with: Operations.safeName(planName)),
            now: now
        )
    }

    /// Whether `name` was made from `namePattern` (retention only considers the plan's own archives).
    package func matches(_ name: String) -> Bool {
        let pattern = namePattern.replacingOccurrences(of: "{plan}", with: Operations.safeName(planName))
        guard let r = pattern.range(of: "{now}") else { return name == pattern }
        let head = String(pattern[..<r.lowerBound])
        let tail = String(pattern[r.upperBound...])
        guard name.hasPrefix(head), name.hasSuffix(tail), name.count > head.count + tail.count else { return false }
        let middle = name.dropFirst(head.count).dropLast(tail.count)
        return middle.allSatisfy { $0.isNumber || "-T.Z:".contains($0) }
            && RetentionPolicy.timestamp(inName: String(middle)) != nil
    }

    /// `location` joined with `name`.
    package func archiveLocation(_ name: String) -> String? {
        guard let location else { return nil }
        return location.hasSuffix("/") ? location + name : location + "/" + name
    }
}
