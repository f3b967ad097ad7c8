import ArgumentParser
import Foundation
import SealbakFormat
import SealbakIO

#if canImport(Glibc)
import Glibc
#endif

/// `sealbak cat ARCHIVE ENTRY…`: entries' contents to standard output (restic's `dump`), e.g. one config file or a
/// database dump piped into its tool.
struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write entries' contents to standard output, verified as they stream.",
        discussion: """
            Each frame is authenticated before its bytes are written, so nothing forged or reordered ever reaches the
            output. The entry's length and SHA-256 are checked when it ends: if the archive is truncated or damaged
            past the point already written, sealbak exits non-zero (4 or 5) and the output must not be used, like a
            failed download. Use unpack to get files only once everything is verified.

            Examples:
              sealbak cat backup.sbk config/app/.env
              sealbak cat backup.sbk postgres/rag.dump | pg_restore --list
              sealbak cat s3://bucket/nightly/2026-11-30.sbk docs/notes/README.md | less
            """
    )

    @Argument(help: ArgumentHelp("The archive (- for standard input).", valueName: "ARCHIVE"))
    var archive: String

    @Argument(help: ArgumentHelp("Entry names, as sealbak list shows them; written in this order.", valueName: "ENTRY"))
    var entries: [String]

    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions

    func validate() throws {
        if entries.isEmpty { throw ValidationError("name at least one entry (see sealbak list ARCHIVE)") }
    }

    func run() throws {
        try reportingErrors {
            let reader = try openArchive(archive, in: reading.locations, password: password, reading: reading)
            let manifest = reader.manifest.entries
            var order: [Int] = []
            for name in entries {
                guard let i = manifest.indices.first(where: { Array(manifest[$0].name.utf8) == Array(name.utf8) })
                else {
                    throw SealbakError(.notFound, "\(archive): no entry named \(displayName(name)); see sealbak list")
                }
                guard manifest[i].kind != .directory && manifest[i].kind != .symlink else {
                    throw SealbakError(
                        .usage,
                        "\(displayName(name)) is a "
                            + "\(manifest[i].kind == .directory ? "directory" : "symbolic link"), not a file; use "
                            + "unpack --only \(displayName(name))"
                    )
                }
                order.append(i)
            }
            let sink = StdoutSink(wanted: Set(order))
            if reader.input.isSeekable {
                for i in order { try reader.readEntry(i, into: sink) }
            } else if order == order.sorted() && Set(order).count == order.count {
                try reader.readAll(into: sink)  // standard input is read once, in archive order
            } else {
                throw SealbakError(
                    .usage,
                    "an archive on standard input is read once, front to back: name its entries in archive order (as "
                        + "sealbak list shows them), each once"
                )
            }
        }
    }
}

/// Writes the wanted entries' verified plaintext to file descriptor 1.
private final class StdoutSink: EntrySink {
    let wanted: Set<Int>
    init(wanted: Set<Int>) { self.wanted = wanted }
    func wants(_ index: Int) -> Bool { wanted.contains(index) }
    func begin(_ index: Int) throws {}
    func write(_ index: Int, _ bytes: [UInt8]) throws {
        try writeAll(fd: 1, bytes.span.bytes, path: "standard output")
    }
    func end(_ index: Int, size: UInt64, sha256: [UInt8]) throws {}
}

/// Which entries an `--only NAME` selects: the entry NAME and everything under it; or, when NAME holds `*`, `?` or `[`,
/// every entry the pattern matches (fnmatch(3); `*` also matches `/`, as in tar) and everything under a matched folder.
enum EntrySelection {
    static func matching(_ name: String, in names: [String]) -> [Int] {
        var wanted = Array(name.utf8)
        while wanted.count > 1 && wanted.last == UInt8(ascii: "/") { wanted.removeLast() }
        let isPattern = wanted.contains {
            $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[")
        }
        // Byte comparison: "a/" + combining mark must not match a directory "a".
        let bytes = names.map { Array($0.utf8) }
        var roots: [[UInt8]] = []
        if isPattern {
            let pattern = wanted.map { CChar(bitPattern: $0) } + [0]
            roots = bytes.filter { n in
                (n.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer {
                    fnmatch(pattern, $0.baseAddress, 0) == 0
                }
            }
        } else {
            roots = [wanted]
        }
        let prefixes = roots.map { $0 + [UInt8(ascii: "/")] }
        let exact = Set(roots)
        return bytes.indices.filter { i in exact.contains(bytes[i]) || prefixes.contains { bytes[i].starts(with: $0) } }
    }
}
