/// Entry conflicts (Spec §13 rule 9): two entries of one manifest that cannot both be placed in a target
/// without writing through, beside or over one another.
///
/// An entry conflicts with an earlier or later entry whose name is one of its proper ancestors (the bytes before
/// one of its `/` separators) and whose kind is not directory: file `a` and `a/b`; stream `s` and `s/d`;
/// symlink `a` (restorable under rule 5 or skipped by it) and `a/b`, or `a/sub` reached through a link to a
/// directory. Names are compared as bytes, without Unicode normalization, like everywhere in the format.
/// Byte-equal names never get here: the manifest parser rejects them (§7.2, class `payload`).
package struct EntryConflict: Hashable, Sendable {
    /// Manifest index of the non-directory entry that is an ancestor of `inner`.
    package var outer: Int
    /// Manifest index of the entry below it.
    package var inner: Int

    package init(outer: Int, inner: Int) {
        self.outer = outer
        self.inner = inner
    }

    /// The first conflict of `entries`, or nil when there is none: the first entry in manifest order that lies
    /// below a non-directory entry, with the shortest such ancestor. Linear in the total length of the names.
    package static func first(in entries: [ManifestEntry]) -> EntryConflict? {
        var nonDirectories: [[UInt8]: Int] = [:]
        for (i, e) in entries.enumerated() where e.kind != .directory { nonDirectories[Array(e.name.utf8)] = i }
        if nonDirectories.isEmpty { return nil }
        let slash = UInt8(ascii: "/")
        for (i, e) in entries.enumerated() {
            let name = Array(e.name.utf8)
            for (k, b) in name.enumerated() where b == slash {
                if let outer = nonDirectories[Array(name[..<k])] { return EntryConflict(outer: outer, inner: i) }
            }
        }
        return nil
    }
}
