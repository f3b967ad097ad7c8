import Foundation
import SealbakFormat
import SealbakIO

/// Raw embedding files: NumPy `.npy` and the `.fvecs`/`.ivecs`/`.bvecs` formats of the ANN benchmarks.
package enum VectorFileFormat: String, Sendable {
    case npy, fvecs, ivecs, bvecs

    package static func detect(_ name: String) -> VectorFileFormat? {
        let l = name.lowercased()
        if l.hasSuffix(".npy") { return .npy }
        if l.hasSuffix(".fvecs") { return .fvecs }
        if l.hasSuffix(".ivecs") { return .ivecs }
        if l.hasSuffix(".bvecs") { return .bvecs }
        return nil
    }
}

/// What a vector file holds, read from its header (npy) or its records (*vecs), checked against its size.
package struct VectorFileFacts: Sendable, Equatable {
    package var format: VectorFileFormat
    package var dtype: String
    package var shape: [Int]
    /// Number of vectors (first dimension).
    package var count: Int { shape.first ?? 0 }
    package var dimension: Int { shape.count > 1 ? shape[1...].reduce(1, *) : 1 }

    var metadata: [(String, String)] {
        [
            ("vectors.format", format.rawValue), ("vectors.dtype", dtype),
            ("vectors.shape", shape.map(String.init).joined(separator: "x")),
            ("vectors.count", String(count)), ("vectors.dimension", String(dimension)),
        ]
    }

    /// Reads and checks `path`; the error says what is wrong and where.
    package static func read(_ path: String, format: VectorFileFormat) throws(SealbakError) -> VectorFileFacts {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw SealbakError.io("cannot open", path: path, errno: errno)
        }
        defer { try? h.close() }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        switch format {
        case .npy: return try npy(h, size: size, path: path)
        case .fvecs, .ivecs, .bvecs: return try vecs(h, size: size, path: path, format: format)
        }
    }

    static func npy(_ h: FileHandle, size: Int, path: String) throws(SealbakError) -> VectorFileFacts {
        let head = [UInt8]((try? h.read(upToCount: 12)) ?? Data())
        guard head.count >= 10, head[0] == 0x93, Array(head[1...5]) == Array("NUMPY".utf8) else {
            throw SealbakError(.usage, "\(path) is not a NumPy .npy file (bad magic)")
        }
        let major = head[6]
        let headerLen: Int
        let start: Int
        if major == 1 {
            headerLen = Int(head[8]) | Int(head[9]) << 8
            start = 10
        } else if major == 2 || major == 3, head.count >= 12 {
            headerLen = Int(head[8]) | Int(head[9]) << 8 | Int(head[10]) << 16 | Int(head[11]) << 24
            start = 12
        } else {
            throw SealbakError(.usage, "\(path): .npy version \(major) is not supported")
        }
        guard headerLen < 1 << 20, start + headerLen <= size else {
            throw SealbakError(.usage, "\(path): .npy header length \(headerLen) does not fit the file")
        }
        try? h.seek(toOffset: UInt64(start))
        let header = String(decoding: (try? h.read(upToCount: headerLen)) ?? Data(), as: UTF8.self)
        guard let descr = field(header, "descr"), let shapeText = tuple(header, "shape") else {
            throw SealbakError(.usage, "\(path): cannot read descr and shape from the .npy header")
        }
        let shape = shapeText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard let itemSize = Int(descr.drop { !$0.isNumber }), itemSize > 0 else {
            throw SealbakError(.usage, "\(path): unsupported dtype \(descr)")
        }
        let expected = start + headerLen + shape.reduce(1, *) * itemSize
        guard expected == size else {
            throw SealbakError(
                .usage,
                "\(path): shape \(shape) of \(descr) needs \(expected) bytes, the file has \(size); it is truncated "
                    + "or not a plain array"
            )
        }
        return VectorFileFacts(format: .npy, dtype: descr, shape: shape)
    }

    /// `'descr': '<f4'` → `<f4`.
    static func field(_ header: String, _ name: String) -> String? {
        guard let r = header.range(of: "'\(name)':") else { return nil }
        let rest = header[r.upperBound...].drop { $0 == " " }
        guard let q = rest.first, q == "'" || q == "\"" else { return nil }
        return String(rest.dropFirst().prefix { $0 != q })
    }

    /// `'shape': (1000, 384)` → `1000, 384`.
    static func tuple(_ header: String, _ name: String) -> String? {
        guard let r = header.range(of: "'\(name)':"), let open = header[r.upperBound...].firstIndex(of: "("),
            let close = header[open...].firstIndex(of: ")")
        else { return nil }
        return String(header[header.index(after: open)..<close])
    }

    static func vecs(
        _ h: FileHandle,
        size: Int,
        path: String,
        format: VectorFileFormat
    ) throws(SealbakError) -> VectorFileFacts {
        let item = format == .bvecs ? 1 : 4
        if size == 0 {
            return VectorFileFacts(
                format: format,
                dtype: format == .fvecs ? "float32" : format == .ivecs ? "int32" : "uint8",
                shape: [0, 0]
            )
        }
        guard let first = try? h.read(upToCount: 4), first.count == 4 else {
            throw SealbakError(.usage, "\(path): too short for a \(format.rawValue) record")
        }
        let d = Int(first.withUnsafeBytes { $0.loadUnaligned(as: Int32.self).littleEndian })
        let record = 4 + d * item
        guard d > 0, d < 1 << 20, size % record == 0 else {
            throw SealbakError(
                .usage,
                "\(path): a \(format.rawValue) file of dimension \(d) has records of \(record) bytes, but the file "
                    + "has \(size) bytes"
            )
        }
        let n = size / record
        // Every record must repeat the dimension.
        for k in 1..<max(n, 1) {
            try? h.seek(toOffset: UInt64(k * record))
            guard let b = try? h.read(upToCount: 4), b.count == 4,
                Int(b.withUnsafeBytes { $0.loadUnaligned(as: Int32.self).littleEndian }) == d
            else {
                throw SealbakError(.usage, "\(path): record \(k) does not have dimension \(d)")
            }
        }
        return VectorFileFacts(
            format: format,
            dtype: format == .fvecs ? "float32" : format == .ivecs ? "int32" : "uint8",
            shape: [n, d]
        )
    }
}

/// `--vectors [NAME=]PATH`: a vector file or a folder of them, packed as `vectors/NAME/…`.
package enum VectorsComponent {
    package struct Summary: Sendable {
        package var files = 0
        package var vectorFiles = 0
        package var vectors = 0
        package var bytes: UInt64 = 0
        package var broken: [String] = []
    }

    @discardableResult
    package static func add(argument: String, to plan: inout PackPlan) throws(SealbakError) -> (String, Summary) {
        let (name, p) = try Component.argument(argument, flag: "--vectors") { ($0 as NSString).deletingPathExtension }
        let root = "vectors/\(name)"
        let first = plan.entries.count
        let stats = try Component.addFileOrTree(
            p,
            root: root,
            flag: "--vectors",
            filter: DefaultExcludesFilter(),
            to: &plan
        )
        var s = Summary()
        s.bytes = stats.bytes
        for i in first..<plan.entries.count where plan.entries[i].kind == .file {
            s.files += 1
            guard let format = VectorFileFormat.detect(plan.entries[i].name), case .file(let fsPath) = plan.sources[i]
            else { continue }
            var m = plan.entries[i].metadata
            do {
                let facts = try VectorFileFacts.read(fsPath, format: format)
                s.vectorFiles += 1
                s.vectors += facts.count
                for (k, v) in facts.metadata { m[k] = v }
            } catch {
                // Packed anyway (it is what the user has), flagged, and not shape-checked on restore.
                m["vectors.error"] = error.message
                s.broken.append(error.message)
            }
            plan.setMetadata(m, at: i)
        }
        var m = Component.metadata(
            kind: "vectors",
            name: name,
            source: URL(fileURLWithPath: p).standardizedFileURL.path
        )
        m["vectors.files"] = String(s.files)
        m["vectors.vector-files"] = String(s.vectorFiles)
        m["vectors.vectors"] = String(s.vectors)
        m["vectors.bytes"] = String(s.bytes)
        m["vectors.invalid"] = String(s.broken.count)
        plan.setMetadata(m, at: first)
        return (name, s)
    }

    /// Re-reads restored vector files; each must have the recorded dtype and shape.
    package static func checkRestored(root: String, manifest: Manifest, component: TreeComponent) -> [String] {
        var problems: [String] = []
        for i in component.indices where manifest.entries[i].kind == .file {
            let e = manifest.entries[i]
            guard let format = e.metadata["vectors.format"].flatMap(VectorFileFormat.init(rawValue:)) else { continue }
            let rel = String(e.name.dropFirst(component.rootName.count + 1))
            do {
                let f = try VectorFileFacts.read(root + "/" + rel, format: format)
                let shape = f.shape.map(String.init).joined(separator: "x")
                if f.dtype != e.metadata["vectors.dtype"] || shape != e.metadata["vectors.shape"] {
                    problems.append(
                        "\(rel): \(f.dtype) \(shape), recorded \(e.metadata["vectors.dtype"] ?? "?") "
                            + "\(e.metadata["vectors.shape"] ?? "?")"
                    )
                }
            } catch {
                problems.append("\(rel): \(error.message)")
            }
        }
        return problems
    }
}
