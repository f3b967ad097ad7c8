import Foundation
import SealbakIO
import Testing

@testable import SealbakComponents

/// The outcome record of Spec/COMPONENTS.md: the example there is exactly what sealbak writes and reads.
@Suite struct OutcomeTests {
    static let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Spec/COMPONENTS.md")

    @Test func theSpecExampleIsWhatSealbakWrites() throws {
        let text = try String(contentsOf: Self.spec, encoding: .utf8)
        let example = try #require(text.split(separator: "\n").first { $0.hasPrefix("{\"components\":") }).description
        var o = CaptureOutcome()
        o.components = [
            .init(
                kind: "postgres",
                name: "app",
                status: .failed,
                reason:
                    "pg_dump for app failed (exit status 1): pg_dump: error: Dumping the contents of table "
                    + "\"chunks\" failed",
                bytes: 1_048_576
            ),
            .init(kind: "docs", name: "kb", status: .ok, reason: nil, bytes: 4096),
        ]
        #expect(String(decoding: o.encoded(), as: UTF8.self) == example)
        let back = try CaptureOutcome.decode(Array(example.utf8))
        #expect(back == o)
        #expect(back.incomplete.map(\.name) == ["app"])
        // Unknown keys are ignored; a record that does not parse is refused as corrupt.
        #expect(
            try CaptureOutcome.decode(Array("{\"version\":1,\"components\":[],\"warnings\":[],\"future\":true}".utf8))
                .components.isEmpty
        )
        #expect(throws: SealbakError.self) { try CaptureOutcome.decode(Array("{\"components\":[".utf8)) }
    }
}
