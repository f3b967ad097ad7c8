/// Counts the rows of every table in a `mysqldump`/`mariadb-dump` SQL stream as it passes through, so that the
/// counts recorded in the archive describe exactly the dumped bytes (Spec/COMPONENTS.md, "mysql").
///
/// It is a streaming lexer of the dump's SQL, fed in chunks of any size (a byte at a time works): it follows
/// strings (`'…'`, `"…"` with backslash escapes and doubled quotes), quoted identifiers (`` `…` ``), comments
/// (`-- `, `#`, `/* */`, and the executable `/*! … */` and `/*M! … */`, whose strings are followed too),
/// `DELIMITER` commands (trigger, routine and event bodies hold `;` and `INSERT` of their own) and parentheses.
/// A statement that starts `INSERT INTO <table> VALUES` adds one row for every parenthesis opened at depth 0, so
/// strings holding `),(`, hex literals, binary escapes and emoji count right. Memory stays bounded (a statement's
/// head of at most 4 KiB).
package struct DumpRowCounter {
    /// Rows per table, in the order tables first appeared in an INSERT.
    package private(set) var rows: [String: Int64] = [:]
    package private(set) var tableOrder: [String] = []
    package private(set) var byteCount: UInt64 = 0
    /// The first bytes of the stream (at most 512), for the header check.
    package private(set) var firstBytes: [UInt8] = []
    /// The last bytes of the stream, for the trailer check.
    private var last: [UInt8] = []

    private enum Lex { case code, squote, dquote, bquote, lineComment, blockComment }
    private enum Phase { case start, head, delimiterCommand, values, other }

    private var lex = Lex.code
    /// Inside `/*! … */` (executable comment): strings are followed, but nothing counts as a statement.
    private var versioned = false
    private var escaped = false
    private var prev: UInt8 = 0
    /// After `/*`: the next byte decides plain or executable comment.
    private var justOpenedComment = false
    /// After `--` in code: whitespace next makes it a comment.
    private var dashDash = false
    private var phase = Phase.start
    private var head: [UInt8] = []
    private var table = ""
    private var depth = 0
    private var delimiter: [UInt8] = [UInt8(ascii: ";")]
    private var tail: [UInt8] = []

    package init() {}

    package var totalRows: Int64 { rows.values.reduce(0, +) }

    package mutating func feed(_ bytes: Span<UInt8>) {
        bytes.withUnsafeBufferPointer { feed(buffer: $0) }
    }

    private mutating func feed(buffer: UnsafeBufferPointer<UInt8>) {
        byteCount += UInt64(buffer.count)
        if firstBytes.count < 512 { firstBytes += buffer.prefix(512 - firstBytes.count) }
        if buffer.count >= 256 {
            last = Array(buffer.suffix(256))
        } else {
            last += buffer
            if last.count > 256 { last.removeFirst(last.count - 256) }
        }
        for b in buffer { step(b) }
    }

    package mutating func feed(_ bytes: [UInt8]) {
        feed(bytes.span)
    }

    /// Whether the stream ended between statements with mysqldump's closing line (`-- Dump completed`).
    package var endedCleanly: Bool {
        guard lex == .code || lex == .lineComment, !versioned, phase == .start || phase == .other && head.isEmpty else {
            return false
        }
        let text = String(decoding: last, as: UTF8.self)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return lines.last?.hasPrefix("-- Dump completed") == true
    }

    /// Why the stream is not a complete dump, or nil.
    package var problem: String? {
        if lex != .code && lex != .lineComment || versioned {
            return "the dump ends inside a string or comment (truncated)"
        }
        if phase == .values || phase == .head { return "the dump ends inside an INSERT statement (truncated)" }
        if !endedCleanly {
            return
                "the dump does not end with mysqldump's \"-- Dump completed\" line (truncated, or made with "
                + "--skip-comments)"
        }
        return nil
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 || b == 12 }

    private mutating func step(_ b: UInt8) {
        switch lex {
        case .squote, .dquote:
            if escaped {
                escaped = false
                note(b)
                return
            }
            if b == UInt8(ascii: "\\") {
                escaped = true
                note(b)
                return
            }
            if (lex == .squote && b == UInt8(ascii: "'")) || (lex == .dquote && b == UInt8(ascii: "\"")) { lex = .code }
            note(b)
        case .bquote:
            if b == UInt8(ascii: "`") { lex = .code }
            note(b)
        case .lineComment:
            if b == 10 { lex = .code }
        case .blockComment:
            if justOpenedComment {
                justOpenedComment = false
                if b == UInt8(ascii: "!") || b == UInt8(ascii: "M") {
                    // Executable comment: followed as code (strings matter), never a statement of its own.
                    versioned = true
                    lex = .code
                    prev = 0
                    return
                }
            }
            if prev == UInt8(ascii: "*") && b == UInt8(ascii: "/") {
                lex = .code
                prev = 0
                return
            }
            prev = b
        case .code:
            code(b)
        }
    }

    /// A byte inside a string or quoted identifier: part of the statement's head while it is read.
    private mutating func note(_ b: UInt8) {
        guard !versioned else { return }
        if phase == .head || phase == .delimiterCommand { appendHead(b) }
        prev = 0
    }

    private mutating func code(_ b: UInt8) {
        if dashDash {
            dashDash = false
            if Self.isSpace(b) {
                lex = .lineComment
                if b == 10 { lex = .code }
                return
            }
            codeByte(UInt8(ascii: "-"))
            codeByte(UInt8(ascii: "-"))
        }
        if versioned {
            switch b {
            case UInt8(ascii: "'"): lex = .squote
            case UInt8(ascii: "\""): lex = .dquote
            case UInt8(ascii: "`"): lex = .bquote
            case UInt8(ascii: "/") where prev == UInt8(ascii: "*"):
                versioned = false
                prev = 0
                return
            default: break
            }
            prev = b
            return
        }
        if phase == .delimiterCommand {
            if b == 10 {
                let text = head.drop { Self.isSpace($0) }.dropFirst(9).drop { Self.isSpace($0) }
                var d = Array(text)
                while let l = d.last, Self.isSpace(l) { d.removeLast() }
                if !d.isEmpty { delimiter = d }
                endStatement()
            } else {
                appendHead(b)
            }
            return
        }
        switch b {
        case UInt8(ascii: "-") where prev == UInt8(ascii: "-") && phase != .values:
            // "--" then whitespace starts a comment; the first "-" was held back.
            prev = 0
            dashDash = true
            return
        case UInt8(ascii: "-") where phase != .values:
            if prev == UInt8(ascii: "/") { codeByte(prev) }
            prev = b
            return
        case UInt8(ascii: "*") where prev == UInt8(ascii: "/"):
            lex = .blockComment
            justOpenedComment = true
            prev = 0
            return
        case UInt8(ascii: "/"):
            if prev == UInt8(ascii: "-") { codeByte(prev) }
            prev = b
            return
        default:
            break
        }
        if prev == UInt8(ascii: "-") { codeByte(prev) }
        if prev == UInt8(ascii: "/") { codeByte(prev) }
        prev = 0
        if b == UInt8(ascii: "#") && phase != .values {
            lex = .lineComment
            return
        }
        codeByte(b)
    }

    /// A byte of SQL outside strings and comments.
    private mutating func codeByte(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "'"): lex = .squote
        case UInt8(ascii: "\""): lex = .dquote
        case UInt8(ascii: "`"): lex = .bquote
        default: break
        }
        // The delimiter ends a statement (only outside strings: quotes were handled above).
        if lex == .code {
            // The usual one-byte delimiter needs no tail (this runs for every byte of a hex literal).
            if delimiter.count == 1 {
                if b == delimiter[0] {
                    endStatement()
                    return
                }
            } else {
                tail.append(b)
                if tail.count > delimiter.count { tail.removeFirst(tail.count - delimiter.count) }
                if tail == delimiter {
                    endStatement()
                    return
                }
            }
        } else if !tail.isEmpty {
            tail.removeAll()
        }
        switch phase {
        case .start:
            if Self.isSpace(b) { return }
            phase = .head
            appendHead(b)
        case .head:
            appendHead(b)
            guard lex == .code else { return }
            if b == UInt8(ascii: "(") {
                if let t = Self.insertTable(head) {
                    table = t
                    if rows[t] == nil {
                        rows[t] = 0
                        tableOrder.append(t)
                    }
                    rows[t]! += 1
                    depth = 1
                    phase = .values
                } else {
                    phase = .other
                }
                head.removeAll()
            } else if !Self.couldBeInteresting(head) {
                phase = .other
                head.removeAll()
            } else if b == 10 && Self.startsWith(head, "DELIMITER") && head.count > 9 {
                // "DELIMITER x" ended by this newline.
                phase = .delimiterCommand
                code(10)
            } else if Self.isSpace(b) && head.count == 10 && Self.startsWith(head, "DELIMITER") {
                phase = .delimiterCommand
            }
        case .values:
            guard lex == .code else { return }
            if b == UInt8(ascii: "(") {
                if depth == 0 { rows[table]! += 1 }
                depth += 1
            } else if b == UInt8(ascii: ")") {
                depth = max(0, depth - 1)
            }
        case .other, .delimiterCommand:
            return
        }
    }

    private mutating func appendHead(_ b: UInt8) {
        if head.count < 4096 {
            head.append(b)
        } else if phase == .head {
            phase = .other
            head.removeAll()
        }
    }

    private mutating func endStatement() {
        phase = .start
        head.removeAll()
        depth = 0
        tail.removeAll()
        prev = 0
    }

    private static func startsWith(_ head: [UInt8], _ word: String) -> Bool {
        let w = Array(word.utf8)
        guard head.count >= w.count else { return false }
        for i in 0..<w.count where head[i] | 0x20 != w[i] | 0x20 { return false }
        return true
    }

    /// Whether a statement starting with `head` may still be an INSERT or a DELIMITER command.
    private static func couldBeInteresting(_ head: [UInt8]) -> Bool {
        for word in ["INSERT", "DELIMITER"] {
            let w = Array(word.utf8)
            let n = min(head.count, w.count)
            var same = true
            for i in 0..<n where head[i] | 0x20 != w[i] | 0x20 {
                same = false
                break
            }
            if same && (head.count <= w.count || isSpace(head[w.count])) { return true }
        }
        return false
    }

    /// `INSERT INTO `t` VALUES (` (also without backquotes) → t; nil for any other statement.
    static func insertTable(_ head: [UInt8]) -> String? {
        var i = 0
        func spaces() -> Bool {
            let s = i
            while i < head.count && isSpace(head[i]) { i += 1 }
            return i > s
        }
        func word(_ w: String) -> Bool {
            let bytes = Array(w.utf8)
            guard i + bytes.count <= head.count else { return false }
            for (k, c) in bytes.enumerated() where head[i + k] | 0x20 != c | 0x20 { return false }
            i += bytes.count
            return true
        }
        _ = spaces()
        guard word("INSERT"), spaces(), word("INTO"), spaces(), i < head.count else { return nil }
        var name: [UInt8] = []
        if head[i] == UInt8(ascii: "`") {
            i += 1
            while i < head.count {
                if head[i] == UInt8(ascii: "`") {
                    if i + 1 < head.count && head[i + 1] == UInt8(ascii: "`") {
                        name.append(head[i])
                        i += 2
                        continue
                    }
                    break
                }
                name.append(head[i])
                i += 1
            }
            guard i < head.count else { return nil }
            i += 1
        } else {
            while i < head.count,
                head[i] == UInt8(ascii: "_") || head[i] == UInt8(ascii: "$")
                    || (head[i] | 0x20 >= 97 && head[i] | 0x20 <= 122) || (head[i] >= 48 && head[i] <= 57)
                    || head[i] >= 0x80
            {
                name.append(head[i])
                i += 1
            }
        }
        guard !name.isEmpty else { return nil }
        _ = spaces()
        guard word("VALUES") else { return nil }
        _ = spaces()
        guard i == head.count - 1, head[i] == UInt8(ascii: "(") else { return nil }
        return String(decoding: name, as: UTF8.self)
    }
}
