import Foundation
import SealbakArchive
import SealbakFormat
import SealbakIO

/// The archives in a folder or under an `s3://BUCKET/PREFIX`, each with its cleartext header (no password):
/// what `sealbak ls` shows and `sealbak prune` decides on. Files that are not sealbak archives are listed as
/// such and never deleted.
package enum Catalog {
    package struct Item: Sendable {
        /// Path or URL.
        package var location: String
        package var name: String
        package var size: UInt64
        package var header: ArchiveHeader?
        /// Why `header` is nil.
        package var problem: String?

        /// The time retention uses: the name's timestamp, else the header's creation time.
        package var time: (unix: Int64, source: String)? {
            if let t = RetentionPolicy.timestamp(inName: name) { return (t, "name") }
            if let h = header { return (Int64(h.createdUnix), "header") }
            return nil
        }
    }

    /// For each incremental archive of `items`, the location of the archive it builds on, where that is among them
    /// (found by the archive id in its cleartext base record, Spec §14.1).
    package static func bases(_ items: [Item]) -> [String: String] {
        var byID: [[UInt8]: String] = [:]
        for i in items { if let h = i.header, byID[h.archiveID] == nil { byID[h.archiveID] = i.location } }
        var out: [String: String] = [:]
        for i in items {
            if let b = i.header?.base, !b.isRoot, let base = byID[b.archiveID] { out[i.location] = base }
        }
        return out
    }

    /// Lists `where` (a folder, or `s3://BUCKET/PREFIX` where a prefix ending in `/` is a folder).
    package static func list(_ location: String, client: S3Client?) throws(SealbakError) -> [Item] {
        if ArchiveLocations.isRemote(location) {
            guard let client else { throw SealbakError(.usage, "\(location): no S3 settings") }
            let loc = try S3Location(url: location, allowEmptyKey: true)
            var items: [Item] = []
            for o in try client.list(bucket: loc.bucket, prefix: loc.key) {
                let rest = o.key.dropFirst(loc.key.count)
                // Only this level (no deeper "folders"), and never sealbak's own temporaries.
                if rest.contains("/") || o.key.contains(".sealbak-tmp-") { continue }
                let url = "s3://\(loc.bucket)/\(o.key)"
                var item = Item(
                    location: url,
                    name: String(o.key.split(separator: "/").last ?? Substring(o.key)),
                    size: o.size
                )
                do {
                    let prefixLength = min(o.size, 64 << 10)
                    var bytes = try client.getBytes(
                        S3Location(bucket: loc.bucket, key: o.key),
                        range: 0..<prefixLength,
                        etag: o.etag
                    )
                    if bytes.count >= 12,
                        let declared = try? ArchiveHeader.declaredLength(prefix: Array(bytes[0..<12])),
                        UInt64(declared) > prefixLength, UInt64(declared) <= o.size
                    {
                        bytes = try client.getBytes(
                            S3Location(bucket: loc.bucket, key: o.key),
                            range: 0..<UInt64(declared),
                            etag: o.etag
                        )
                    }
                    item.header = try ArchiveReader.readHeader(InputFile(bytes: bytes, name: url, seekable: true))
                } catch {
                    item.problem = (error as? SealbakError)?.message ?? "\(error)"
                }
                items.append(item)
            }
            return items
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location, isDirectory: &isDir) else {
            throw SealbakError(.notFound, "\(location) does not exist")
        }
        guard isDir.boolValue else {
            throw SealbakError(.usage, "\(location) is not a folder; give the folder that holds the archives")
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: location).sorted() } catch {
            throw SealbakError(.io, "cannot list \(location): \(error.localizedDescription)")
        }
        var items: [Item] = []
        for name in names where !name.hasPrefix(".") {
            let path = location.hasSuffix("/") ? location + name : location + "/" + name
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
                attrs[.type] as? FileAttributeType == .typeRegular
            else { continue }
            var item = Item(location: path, name: name, size: (attrs[.size] as? NSNumber)?.uint64Value ?? 0)
            do {
                item.header = try ArchiveReader.readHeader(try InputFile(path: path))
            } catch {
                item.problem = (error as? SealbakError)?.message ?? "\(error)"
            }
            items.append(item)
        }
        return items
    }

    /// What the store says about a remote archive before it is deleted: its Object Lock and version (nil for a
    /// local file).
    package static func state(_ item: Item, client: S3Client?) throws(SealbakError) -> S3Client.ObjectInfo? {
        guard ArchiveLocations.isRemote(item.location), let client else { return nil }
        return try client.head(try S3Location(url: item.location))
    }

    /// Deletes an archive; in a versioned bucket (`state` has a version) exactly that version, so the space is
    /// freed rather than hidden behind a delete marker.
    package static func delete(_ item: Item, client: S3Client?, state: S3Client.ObjectInfo? = nil) throws(SealbakError)
    {
        if ArchiveLocations.isRemote(item.location) {
            guard let client else { throw SealbakError(.usage, "no S3 settings") }
            try client.delete(try S3Location(url: item.location), versionID: state?.versionID)
        } else if unlink(item.location) != 0 {
            throw SealbakError.io("cannot delete", path: item.location, errno: errno)
        }
    }
}
