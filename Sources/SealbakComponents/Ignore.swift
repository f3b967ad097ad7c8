/// gitignore-style rules (`.sealbakignore` files, `--exclude`/`--include` globs), matched on relative paths.
///
/// The syntax is git's (gitignore(5)): blank lines and `#` comments are skipped; trailing spaces are dropped
/// unless escaped; `!` re-includes; a trailing `/` matches directories only; a pattern with a `/` at its start
/// or middle is anchored to the directory of the file that holds it, otherwise it matches a name at any depth;
/// `*` and `?` never match `/`; `[a-z]`, `[!a-z]` are classes; `**/` matches any number of directories, `/**`
/// everything inside. The last matching rule wins, and, as in git, nothing inside an excluded directory can be
/// re-included (the walk does not enter it).
package struct IgnoreRules: Sendable {
    struct Rule: Sendable {
        var pattern: [UInt8]
        var negated: Bool
        var directoryOnly: Bool
        var anchored: Bool
        /// Directory (relative, no trailing slash, "" for the root) of the file that holds the rule.
        var base: [UInt8]
        /// Where the rule came from, for messages ("docs/.sealbakignore:3").
        var origin: String
    }

    private(set) var rules: [Rule] = []

    package init() {}

    /// Directories and files nobody wants in a backup of a docs tree or an application folder.
    package static let defaultExcludes = [
        ".git/", "node_modules/", "__pycache__/", ".venv/", "venv/", ".mypy_cache/", ".pytest_cache/", ".DS_Store",
        "*.pyc",
    ]

    package static func defaults() -> IgnoreRules {
        var r = IgnoreRules()
        for (i, p) in defaultExcludes.enumerated() { r.add(line: p, base: "", origin: "default exclude \(i + 1)") }
        return r
    }

    /// Adds every rule of a `.sealbakignore` file found in directory `base` (relative to the tree's root).
    package mutating func add(file contents: String, base: String, origin: String) {
        for (n, line) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            add(line: String(line), base: base, origin: "\(origin):\(n + 1)")
        }
    }

    /// Adds one rule; lines that hold no rule (blank, comment) are ignored.
    package mutating func add(line raw: String, base: String, origin: String) {
        var p = Array(raw.utf8)
        if p.last == UInt8(ascii: "\r") { p.removeLast() }
        // Trailing spaces are dropped unless escaped with a backslash.
        while p.last == UInt8(ascii: " ") {
            if p.count >= 2 && p[p.count - 2] == UInt8(ascii: "\\") {
                p.remove(at: p.count - 2)
                break
            }
            p.removeLast()
        }
        if p.isEmpty || p.first == UInt8(ascii: "#") { return }
        var negated = false
        if p.first == UInt8(ascii: "!") {
            negated = true
            p.removeFirst()
        } else if p.starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "!")])
            || p.starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "#")])
        {
            p.removeFirst()
        }
        var directoryOnly = false
        if p.last == UInt8(ascii: "/") {
            directoryOnly = true
            while p.last == UInt8(ascii: "/") { p.removeLast() }
        }
        if p.isEmpty { return }
        let anchored = p.contains(UInt8(ascii: "/"))
        if p.first == UInt8(ascii: "/") { p.removeFirst() }
        rules.append(
            Rule(
                pattern: p,
                negated: negated,
                directoryOnly: directoryOnly,
                anchored: anchored,
                base: Array(base.utf8),
                origin: origin
            )
        )
    }

    /// Whether `path` (relative to the root, `/`-separated) is excluded, and by which rule.
    package func excluded(_ path: String, isDirectory: Bool) -> (Bool, String?) {
        let p = Array(path.utf8)
        for rule in rules.reversed() {
            if rule.directoryOnly && !isDirectory { continue }
            // Rules from a nested .sealbakignore only see paths below their directory, relative to it.
            var rel = p[...]
            if !rule.base.isEmpty {
                guard p.count > rule.base.count, p.starts(with: rule.base), p[rule.base.count] == UInt8(ascii: "/")
                else { continue }
                rel = p[(rule.base.count + 1)...]
            }
            let hit: Bool
            if rule.anchored {
                hit = Glob.match(rule.pattern[...], rel)
            } else {
                let name = rel.lastIndex(of: UInt8(ascii: "/")).map { rel[($0 + 1)...] } ?? rel
                hit = Glob.match(rule.pattern[...], name)
            }
            if hit { return (!rule.negated, rule.origin) }
        }
        return (false, nil)
    }
}

/// Glob matching on bytes with git's wildmatch rules for `*`, `?`, `[...]` and `**`.
package enum Glob {
    package static func match(_ pattern: String, _ text: String) -> Bool {
        match(Array(pattern.utf8)[...], Array(text.utf8)[...])
    }

    static func match(_ p: ArraySlice<UInt8>, _ t: ArraySlice<UInt8>) -> Bool {
        var pi = p.startIndex
        var ti = t.startIndex
        while pi < p.endIndex {
            let c = p[pi]
            switch c {
            case UInt8(ascii: "*"):
                let doubleStar = pi + 1 < p.endIndex && p[pi + 1] == UInt8(ascii: "*")
                if doubleStar {
                    // "**" is special only as a whole path component: "**/x", "x/**", "x/**/y".
                    let atStart = pi == p.startIndex || p[pi - 1] == UInt8(ascii: "/")
                    var after = pi + 2
                    while after < p.endIndex && p[after] == UInt8(ascii: "*") { after += 1 }
                    let atEnd = after == p.endIndex || p[after] == UInt8(ascii: "/")
                    if atStart && atEnd {
                        if after == p.endIndex { return true }  // "x/**": everything below
                        // "**/rest": rest matches here or after any number of directories.
                        let rest = p[(after + 1)...]
                        var k = ti
                        while true {
                            if match(rest, t[k...]) { return true }
                            guard let slash = t[k...].firstIndex(of: UInt8(ascii: "/")) else { return false }
                            k = slash + 1
                        }
                    }
                    pi = after
                } else {
                    pi += 1
                }
                // "*": any run of bytes without "/".
                var k = ti
                while true {
                    if match(p[pi...], t[k...]) { return true }
                    if k == t.endIndex || t[k] == UInt8(ascii: "/") { return false }
                    k += 1
                }
            case UInt8(ascii: "?"):
                guard ti < t.endIndex, t[ti] != UInt8(ascii: "/") else { return false }
                pi += 1
                ti += 1
            case UInt8(ascii: "["):
                guard ti < t.endIndex, t[ti] != UInt8(ascii: "/"), let (ok, next) = matchClass(p, pi, t[ti]) else {
                    // An unterminated "[" is an ordinary character.
                    if ti < t.endIndex && t[ti] == c && matchClass(p, pi, 0) == nil {
                        pi += 1
                        ti += 1
                        continue
                    }
                    return false
                }
                if !ok { return false }
                pi = next
                ti += 1
            case UInt8(ascii: "\\") where pi + 1 < p.endIndex:
                guard ti < t.endIndex, t[ti] == p[pi + 1] else { return false }
                pi += 2
                ti += 1
            default:
                guard ti < t.endIndex, t[ti] == c else { return false }
                pi += 1
                ti += 1
            }
        }
        return ti == t.endIndex
    }

    /// Matches `[...]` at `p[start]` against `byte`; nil if the class is not terminated.
    static func matchClass(_ p: ArraySlice<UInt8>, _ start: Int, _ byte: UInt8) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.endIndex && (p[i] == UInt8(ascii: "!") || p[i] == UInt8(ascii: "^")) {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while i < p.endIndex {
            var lo = p[i]
            if lo == UInt8(ascii: "]") && !first { return (matched != negate, i + 1) }
            first = false
            if lo == UInt8(ascii: "\\") && i + 1 < p.endIndex {
                i += 1
                lo = p[i]
            }
            if i + 2 < p.endIndex && p[i + 1] == UInt8(ascii: "-") && p[i + 2] != UInt8(ascii: "]") {
                var hi = p[i + 2]
                var skip = 3
                if hi == UInt8(ascii: "\\") && i + 3 < p.endIndex {
                    hi = p[i + 3]
                    skip = 4
                }
                if lo <= byte && byte <= hi { matched = true }
                i += skip
            } else {
                if lo == byte { matched = true }
                i += 1
            }
        }
        return nil
    }
}
