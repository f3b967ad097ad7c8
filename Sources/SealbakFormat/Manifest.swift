/// What an entry is and how it is restored (Spec §7.2).
package enum EntryKind: UInt8, Sendable, CaseIterable {
    /// A regular file; its stream is the file's content.
    case file = 1
    /// A directory; its stream is empty.
    case directory = 2
    /// A symbolic link; its stream is empty and `linkTarget` holds the target.
    case symlink = 3
    /// Bytes taken from a pipe (stdin or a producer); restored as a regular file.
    case stream = 4

    package var name: String {
        switch self {
        case .file: "file"
        case .directory: "directory"
        case .symlink: "symlink"
        case .stream: "stream"
        }
    }
}

/// String key/value pairs attached to the archive or to an entry (Spec §7.3). Keys are kept sorted.
package struct Metadata: Hashable, Sendable, Sequence {
    package private(set) var pairs: [(key: String, value: String)] = []

    package init() {}

    package init(_ dict: [String: String]) {
        for (k, v) in dict { self[k] = v }
    }

    package subscript(key: String) -> String? {
        get { pairs.first { $0.key == key }?.value }
        set {
            if let i = pairs.firstIndex(where: { $0.key == key }) {
                if let newValue { pairs[i].value = newValue } else { pairs.remove(at: i) }
            } else if let newValue {
                pairs.append((key, newValue))
                pairs.sort { $0.key.utf8Precedes($1.key) }
            }
        }
    }

    package var isEmpty: Bool { pairs.isEmpty }
    package var count: Int { pairs.count }
    package func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { pairs.makeIterator() }

    package static func == (a: Metadata, b: Metadata) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    package func hash(into h: inout Hasher) {
        for p in pairs {
            h.combine(p.key)
            h.combine(p.value)
        }
    }

    func encode(into w: inout ByteWriter) {
        w.write(UInt16(truncatingIfNeeded: pairs.count))
        for p in pairs {
            let k = Array(p.key.utf8)
            let v = Array(p.value.utf8)
            w.write(UInt8(truncatingIfNeeded: k.count))
            w.write(bytes: k)
            w.write(UInt32(truncatingIfNeeded: v.count))
            w.write(bytes: v)
        }
    }

    static func parse(_ r: inout ByteReader) throws(FormatError) -> Metadata {
        let start = UInt64(r.offset)
        let count = Int(try r.readUInt16("metadata count"))
        if count > FormatV1.maxMetadataPairs {
            throw FormatError(
                .payload,
                "metadata has \(count) pairs, the limit is \(FormatV1.maxMetadataPairs)",
                offset: start
            )
        }
        var m = Metadata()
        var previous: [UInt8]? = nil
        for _ in 0..<count {
            let keyOffset = UInt64(r.offset)
            let keyLength = Int(try r.readUInt8("metadata key length"))
            if keyLength == 0 || keyLength > FormatV1.maxMetadataKeyByteCount {
                throw FormatError(
                    .payload,
                    "metadata key length \(keyLength) is outside 1...\(FormatV1.maxMetadataKeyByteCount)",
                    offset: keyOffset
                )
            }
            let key = try r.readUTF8(keyLength, "metadata key", errorClass: .payload)
            let keyBytes = Array(key.utf8)
            if let previous, !previous.lexicographicallyPrecedes(keyBytes) {
                throw FormatError(.payload, "metadata keys are not strictly ascending (\"\(key)\")", offset: keyOffset)
            }
            previous = keyBytes
            let valueOffset = UInt64(r.offset)
            let valueLength = Int(try r.readUInt32("metadata value length"))
            if valueLength > FormatV1.maxMetadataValueByteCount {
                throw FormatError(
                    .payload,
                    "metadata value of \(valueLength) bytes exceeds \(FormatV1.maxMetadataValueByteCount)",
                    offset: valueOffset
                )
            }
            let value = try r.readUTF8(valueLength, "metadata value", errorClass: .payload)
            m.pairs.append((key, value))
        }
        return m
    }
}

/// One entry of the manifest (Spec §7.2). Its data is stream number `index` of the archive.
package struct ManifestEntry: Hashable, Sendable {
    package var kind: EntryKind
    package var name: String
    package var mode: UInt32
    package var mtimeSeconds: Int64
    package var mtimeNanoseconds: UInt32
    package var linkTarget: String
    package var metadata: Metadata

    package init(
        kind: EntryKind,
        name: String,
        mode: UInt32 = 0o644,
        mtimeSeconds: Int64 = 0,
        mtimeNanoseconds: UInt32 = 0,
        linkTarget: String = "",
        metadata: Metadata = Metadata()
    ) {
        self.kind = kind
        self.name = name
        self.mode = mode
        self.mtimeSeconds = mtimeSeconds
        self.mtimeNanoseconds = mtimeNanoseconds
        self.linkTarget = linkTarget
        self.metadata = metadata
    }
}

/// The decrypted manifest (Spec §7): archive metadata and the list of entries, in stream order.
package struct Manifest: Hashable, Sendable {
    package var metadata: Metadata
    package var entries: [ManifestEntry]

    package init(metadata: Metadata = Metadata(), entries: [ManifestEntry] = []) {
        self.metadata = metadata
        self.entries = entries
    }

    package func encoded() -> [UInt8] {
        var w = ByteWriter()
        metadata.encode(into: &w)
        w.write(UInt32(truncatingIfNeeded: entries.count))
        for e in entries {
            w.write(e.kind.rawValue)
            w.write(UInt8(0))
            let name = Array(e.name.utf8)
            w.write(UInt16(truncatingIfNeeded: name.count))
            w.write(bytes: name)
            w.write(e.mode)
            w.write(e.mtimeSeconds)
            w.write(e.mtimeNanoseconds)
            let link = Array(e.linkTarget.utf8)
            w.write(UInt16(truncatingIfNeeded: link.count))
            w.write(bytes: link)
            e.metadata.encode(into: &w)
        }
        return w.bytes
    }

    /// Checks every rule `parse` enforces; writers call this before emitting the manifest.
    package func validate() throws(FormatError) {
        let parsed = try Manifest.parse(encoded())
        if parsed != self { throw FormatError(.payload, "manifest does not round-trip") }
    }

    /// Parses a complete manifest plaintext (Spec §7.1); every byte must be consumed.
    package static func parse(_ bytes: [UInt8]) throws(FormatError) -> Manifest {
        if UInt64(bytes.count) > FormatV1.maxManifestByteCount {
            throw FormatError(.payload, "manifest of \(bytes.count) bytes exceeds \(FormatV1.maxManifestByteCount)")
        }
        var r = ByteReader(bytes, errorClass: .payload)
        let metadata = try Metadata.parse(&r)
        let countOffset = UInt64(r.offset)
        let count = try r.readUInt32("entry count")
        if count > FormatV1.maxEntryCount {
            throw FormatError(
                .payload,
                "manifest lists \(count) entries, the limit is \(FormatV1.maxEntryCount)",
                offset: countOffset
            )
        }
        // Each entry takes at least 25 bytes; refuse counts the remaining bytes cannot hold before allocating.
        if Int(count) > r.remaining / 25 {
            throw FormatError(
                .payload,
                "manifest lists \(count) entries but holds only \(r.remaining) more bytes",
                offset: countOffset
            )
        }
        var entries: [ManifestEntry] = []
        entries.reserveCapacity(Int(count))
        // Names are unique as byte strings (NFC and NFD spellings are different files on Linux).
        var seen = Set<[UInt8]>()
        for _ in 0..<count {
            let entryOffset = UInt64(r.offset)
            let kindRaw = try r.readUInt8("entry kind")
            guard let kind = EntryKind(rawValue: kindRaw) else {
                if kindRaw == 0 { throw FormatError(.payload, "entry kind 0 is invalid", offset: entryOffset) }
                throw FormatError(
                    .version,
                    "entry kind \(kindRaw) was made by a newer sealbak; upgrade sealbak to read it",
                    offset: entryOffset
                )
            }
            let flags = try r.readUInt8("entry flags")
            if flags != 0 { throw FormatError(.payload, "reserved entry flags are set", offset: entryOffset + 1) }
            let nameLength = Int(try r.readUInt16("name length"))
            let name = try r.readUTF8(nameLength, "entry name", errorClass: .payload)
            if let problem = EntryName.problem(name) {
                throw FormatError(
                    .payload,
                    "entry name \"\(name.debugDescription.dropFirst().dropLast())\" is not canonical: \(problem)",
                    offset: entryOffset + 4
                )
            }
            if !seen.insert(Array(name.utf8)).inserted {
                throw FormatError(.payload, "entry name \"\(name)\" appears twice", offset: entryOffset + 4)
            }
            let modeOffset = UInt64(r.offset)
            let mode = try r.readUInt32("mode")
            if mode > 0o7777 {
                throw FormatError(
                    .payload,
                    "mode \(String(mode, radix: 8)) has bits outside 0o7777",
                    offset: modeOffset
                )
            }
            let seconds = try r.readInt64("mtime seconds")
            let nanosOffset = UInt64(r.offset)
            let nanos = try r.readUInt32("mtime nanoseconds")
            if nanos >= 1_000_000_000 {
                throw FormatError(.payload, "mtime nanoseconds \(nanos) out of range", offset: nanosOffset)
            }
            let linkOffset = UInt64(r.offset)
            let linkLength = Int(try r.readUInt16("link target length"))
            if linkLength > FormatV1.maxLinkByteCount {
                throw FormatError(
                    .payload,
                    "link target of \(linkLength) bytes exceeds \(FormatV1.maxLinkByteCount)",
                    offset: linkOffset
                )
            }
            let link = try r.readUTF8(linkLength, "link target", errorClass: .payload)
            if kind == .symlink {
                if link.isEmpty || link.utf8.contains(0) {
                    throw FormatError(
                        .payload,
                        "symlink \"\(name)\" has an empty or NUL-containing target",
                        offset: linkOffset
                    )
                }
            } else if !link.isEmpty {
                throw FormatError(.payload, "only symlinks carry a link target", offset: linkOffset)
            }
            let metadata = try Metadata.parse(&r)
            entries.append(
                ManifestEntry(
                    kind: kind,
                    name: name,
                    mode: mode,
                    mtimeSeconds: seconds,
                    mtimeNanoseconds: nanos,
                    linkTarget: link,
                    metadata: metadata
                )
            )
        }
        try r.expectEnd("the last manifest entry", errorClass: .payload)
        return Manifest(metadata: metadata, entries: entries)
    }
}

/// Canonical entry names (Spec §7.2): relative, '/'-separated, no empty, "." or ".." component, no NUL.
package enum EntryName {
    /// Why `name` is not canonical, or nil when it is.
    package static func problem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "empty" }
        if bytes.count > FormatV1.maxNameByteCount { return "longer than \(FormatV1.maxNameByteCount) bytes" }
        if bytes.contains(0) { return "contains NUL" }
        if bytes.first == UInt8(ascii: "/") { return "absolute" }
        for component in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if component.isEmpty { return "empty path component" }
            if component.elementsEqual([UInt8(ascii: ".")])
                || component.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")])
            {
                return "\".\" or \"..\" component"
            }
        }
        return nil
    }
}
