import Foundation
import SealbakArchive
import SealbakCrypto
import SealbakFormat
import SealbakTestSupport
import Testing

/// Spec §12: the committed vectors read as described, the invalid ones fail with their labelled class, and the
/// generator still produces exactly the committed bytes.
@Suite struct SpecVectorTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Spec/vectors")

    static func json(_ path: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
    }

    static func names(_ sub: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(sub).path)) ?? []
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    @Test func enoughVectorsAreCommitted() {
        #expect(Self.names("valid").count >= 10)
        #expect(Self.names("invalid").count >= 25)
    }

    @Test(arguments: names("valid"))
    func validVectorReadsAsDescribed(_ name: String) throws {
        let meta = try Self.json(Self.dir.appendingPathComponent("valid/\(name).json"))
        let bytes = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("valid/\(name).sbk")))
        let expected = meta["entries"] as! [[String: Any]]
        var secrets: [ArchiveSecret] = (meta["passwords"] as! [String]).map { .password(Passphrase(string: $0)) }
        for id in meta["identities"] as? [[String: String]] ?? [] {
            let secret = SecureBytes(copying: Vectors.unhex(id["x25519_secret_key"]!))
            #expect(Recipients.encode(publicKey: X25519.publicKey(secret)) == id["public_key"])
            secrets.append(.identity(Identity(secret: secret, publicKey: X25519.publicKey(secret))))
        }
        #expect(!secrets.isEmpty)
        for secret in secrets {
            let back = try TestReader.readAll(bytes, secret: secret)
            #expect(back.manifest.entries.count == expected.count)
            for (i, e) in expected.enumerated() {
                #expect(back.manifest.entries[i].name == e["name"] as! String)
                #expect(back.manifest.entries[i].kind.name == e["kind"] as! String)
                #expect(back.data[i].count == e["size"] as! Int)
                #expect(SHA256Hasher.hash(back.data[i]).map { String(format: "%02x", $0) }.joined() == e["sha256"] as! String)
                #expect(back.trailer.entries[i].sha256 == SHA256Hasher.hash(back.data[i]))
            }
        }
    }

    @Test(arguments: names("invalid"))
    func invalidVectorFailsWithItsClass(_ name: String) throws {
        let meta = try Self.json(Self.dir.appendingPathComponent("invalid/\(name).json"))
        let bytes = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("invalid/\(name).sbk")))
        let got = TestReader.failureClass(bytes, password: meta["password"] as! String)
        #expect(got?.rawValue == meta["expected_error"] as? String, "\(name): \(meta["description"] ?? "")")
    }

    @Test func generatorReproducesCommittedVectors() throws {
        for v in Vectors.valid() {
            let committed = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("valid/\(v.name).sbk")))
            #expect(try v.build() == committed, "valid/\(v.name).sbk is stale: run scripts/gen-vectors")
        }
        for v in try Vectors.invalid() {
            let committed = try [UInt8](Data(contentsOf: Self.dir.appendingPathComponent("invalid/\(v.name).sbk")))
            #expect(v.bytes == committed, "invalid/\(v.name).sbk is stale: run scripts/gen-vectors")
        }
    }
}
