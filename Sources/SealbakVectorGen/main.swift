// Regenerates Spec/vectors: `swift run SealbakVectorGen [DIR]` (scripts/gen-vectors). Deterministic.
import Foundation
import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakTestSupport

let fm = FileManager.default
if CommandLine.arguments.count > 2 && CommandLine.arguments[1] == "--fuzz-seeds" {
    // Seed corpora for fuzz/run, one folder per target.
    let root = CommandLine.arguments[2]
    var count = 0
    for (target, inputs) in try FuzzTargets.seeds() {
        let d = "\(root)/\(target)"
        try? fm.removeItem(atPath: d)
        try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
        for (i, input) in inputs.enumerated() {
            try Data(input).write(to: URL(fileURLWithPath: "\(d)/seed-\(i)"))
            count += 1
        }
    }
    print("wrote \(count) fuzz seeds to \(root)")
    exit(0)
}
let dir = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Spec/vectors"
for sub in ["valid", "invalid", "conflict"] {
    let d = "\(dir)/\(sub)"
    try? fm.removeItem(atPath: d)
    try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
}

func writeJSON(_ object: [String: Any], to path: String) throws {
    let data = try JSONSerialization.data(
        withJSONObject: object,
        options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    )
    try (String(decoding: data, as: UTF8.self) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
}

for v in Vectors.valid() {
    let bytes = try v.build()
    try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/valid/\(v.name).sbk"))
    let header = try ArchiveHeader.parse(Array(bytes.prefix(Int(bytes[10]) | Int(bytes[11]) << 8)))
    // Version-2 vectors only (Spec §12): the version-1 JSON files stay as they were.
    let codecs = header.version > 1 ? try ValidVector.frameCodecs(bytes, password: v.passwords[0]) : nil
    var entries: [[String: Any]] = v.entries.map { e in
        var d: [String: Any] = [
            "name": e.name, "kind": e.kind.name, "size": e.data.count, "sha256": hex(SHA256Hasher.hash(e.data)),
            "mode": String(e.mode, radix: 8), "mtime": Int(TestArchive.fixedTime),
        ]
        if e.kind == .symlink { d["link"] = e.link }
        if !e.metadata.isEmpty {
            d["metadata"] = Dictionary(uniqueKeysWithValues: e.metadata.map { ($0.key, $0.value) })
        }
        return d
    }
    var extra: [String: Any] = [:]
    if let codecs {
        for i in entries.indices { entries[i]["frame_codecs"] = codecs[i] }
        extra = ["format_version": Int(header.version), "flags": Int(header.features.rawValue)]
    }
    // Chained vectors (Spec §14): depth and base, the kinds of every entry's records, and the archive metadata as
    // stored (the writer adds the chunk key and the chunking parameters).
    if let base = header.base {
        let kinds = try Vectors.recordKinds(bytes, password: v.passwords[0])
        for i in entries.indices { entries[i]["records"] = kinds[i] }
        extra["chain"] = ["depth": Int(base.depth), "base": v.chainBase.map { "\($0.name).sbk" } ?? NSNull()]
        let reader = try ArchiveReader(
            input: InputFile(bytes: bytes, name: v.name, seekable: true),
            secret: .password(Passphrase(string: v.passwords[0]))
        )
        extra["metadata"] = Dictionary(uniqueKeysWithValues: reader.manifest.metadata.map { ($0.key, $0.value) })
    }
    // Dictionary vectors (Spec §7.4): the archive metadata as stored (the dictionary in base64) and its id.
    if header.features.contains(.dictionary) {
        let reader = try ArchiveReader(
            input: InputFile(bytes: bytes, name: v.name, seekable: true),
            secret: .password(Passphrase(string: v.passwords[0]))
        )
        extra["metadata"] = Dictionary(uniqueKeysWithValues: reader.manifest.metadata.map { ($0.key, $0.value) })
        extra["dictionary_id"] = Int(reader.dictionary!.id)
    }
    try writeJSON(
        extra.merging([
            "name": v.name, "description": v.description, "file": "\(v.name).sbk",
            "passwords": v.openWith ?? v.passwords,
            "cipher_suite": v.options.suite.name, "compression": v.compressionName,
            "frame_size": 1 << Int(v.options.frameSizeLog2),
            "kdf": ["algorithm": "argon2id13", "opslimit": 1, "memlimit_kib": 8, "parallelism": 1],
            "archive_sha256": hex(SHA256Hasher.hash(bytes)), "archive_size": bytes.count,
            "identities": v.identities.map {
                [
                    "x25519_secret_key": $0,
                    "public_key": Recipients.encode(
                        publicKey: X25519.publicKey(SecureBytes(copying: Vectors.unhex($0)))
                    ),
                ]
            },
            "metadata": Dictionary(uniqueKeysWithValues: v.metadata.map { ($0.key, $0.value) }),
            "entries": entries,
        ]) { a, _ in a },
        to: "\(dir)/valid/\(v.name).json"
    )
}
for v in try Vectors.invalid() {
    try Data(v.bytes).write(to: URL(fileURLWithPath: "\(dir)/invalid/\(v.name).sbk"))
    var json: [String: Any] = [
        "name": v.name, "description": v.description, "file": "\(v.name).sbk", "base": v.base, "password": v.password,
        "expected_error": v.expected.rawValue,
    ]
    if let r = v.randomAccess {
        json["random_access_error"] = r.expected.rawValue
        json["random_access_failing_entries"] = r.failingEntries
    }
    if let k = v.keyFailure { json["key_failure"] = k.rawValue }
    if let base = v.chainBase { json["chain"] = ["base": base] }
    try writeJSON(json, to: "\(dir)/invalid/\(v.name).json")
}
for v in Vectors.conflicts() {
    try Data(try v.build()).write(to: URL(fileURLWithPath: "\(dir)/conflict/\(v.name).sbk"))
    try writeJSON(
        [
            "name": v.name, "description": v.description, "file": "\(v.name).sbk", "password": Vectors.password,
            "expected_error": "conflict",
            "conflict": [
                "outer": v.entries[v.outer].name, "outer_index": v.outer, "inner": v.entries[v.inner].name,
                "inner_index": v.inner,
            ],
            "entries": v.entries.map { e -> [String: Any] in
                var d: [String: Any] = ["name": e.name, "kind": e.kind.name, "size": e.data.count]
                if e.kind == .symlink { d["link"] = e.link }
                return d
            },
        ],
        to: "\(dir)/conflict/\(v.name).json"
    )
}
print(
    "wrote \(Vectors.valid().count) valid, \(try Vectors.invalid().count) invalid and \(Vectors.conflicts().count) "
        + "conflict vectors to \(dir)"
)
