import Foundation
import SealbakTestSupport
import Testing

/// Progress on a real terminal: drawn in place, cleared before any other line, summaries with durations; nothing of
/// it when stderr is not a terminal.
@Suite struct ProgressTests {
    static let env = ["SEALBAK_PASSWORD": "progress-\(UUID().uuidString)"]

    /// Runs sealbak with stdout and stderr on a pseudo-terminal; returns what the terminal showed.
    static func onTerminal(_ args: [String], every: Bool = false) throws -> (status: Int?, output: String) {
        struct Driven: Decodable {
            var status: Int?
            var output: String
        }
        let r = try Proc.run(
            "/usr/bin/env",
            ["python3", Proc.root + "/scripts/pty-drive.py", "[]", "--", "env"]
                + (every ? ["SEALBAK_PROGRESS_INTERVAL=0"] : []) + [
                    "SEALBAK_PASSWORD=\(env["SEALBAK_PASSWORD"]!)", Proc.sealbakBinary,
                ] + args
        )
        let d = try JSONDecoder().decode(Driven.self, from: Data(r.stdout.utf8))
        return (d.status, d.output)
    }

    @Test func progressIsDrawnInPlaceAndClearedBeforeTheSummary() throws {
        let dir = try Proc.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/t", withIntermediateDirectories: true)
        for i in 0..<3 {
            try Data(TestArchive.noise(8_000_000, seed: UInt64(i))).write(
                to: URL(fileURLWithPath: dir + "/t/f\(i).bin")
            )
        }
        let clear = "\r\u{1B}[K"
        let pack = try Self.onTerminal(["pack", dir + "/a.sbk", dir + "/t", "--insecure-test-kdf"])
        #expect(pack.status == 0, "\(pack.output)")
        #expect(pack.output.contains(clear + "packing "), "no progress line: \(pack.output.debugDescription)")
        // The summary starts on a cleared line and says how long it took; the current item is named.
        #expect(pack.output.contains(clear + "sealbak: packed 5 entries"), "\(pack.output.debugDescription)")
        #expect(
            pack.output.range(of: #"sealbak: packed .* in [0-9.:]+( s)?\r?\n"#, options: .regularExpression) != nil,
            "\(pack.output.debugDescription)"
        )
        // Drawn at every update (SEALBAK_PROGRESS_INTERVAL=0), it names each item as it starts.
        let every = try Self.onTerminal(["pack", dir + "/e.sbk", dir + "/t", "--insecure-test-kdf"], every: true)
        for i in 0..<3 { #expect(every.output.contains("t/f\(i).bin"), "\(every.output.debugDescription)") }
        #expect(every.output.contains("3 items"), "\(every.output.debugDescription)")
        let unpack = try Self.onTerminal(["unpack", dir + "/a.sbk", "--to", dir + "/o"])
        #expect(
            unpack.status == 0 && unpack.output.contains(clear + "unpacking ")
                && unpack.output.contains(clear + "sealbak: unpacked 5 entries"),
            "\(unpack.output.debugDescription)"
        )
        let verify = try Self.onTerminal(["verify", dir + "/a.sbk"])
        #expect(
            verify.status == 0 && verify.output.contains(clear + "verifying ")
                && verify.output.contains(" verified in "),
            "\(verify.output.debugDescription)"
        )
        // Never wider than the terminal (80 columns here): a wrapped line could not be redrawn in place.
        for line in pack.output.components(separatedBy: clear) where line.hasPrefix("packing ") {
            #expect(line.count < 80, "\(line.debugDescription)")
        }
        // Not on a terminal: no progress, no control characters; the summary still has its duration.
        let plain = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/b.sbk", dir + "/t", "--insecure-test-kdf"],
            env: Self.env
        )
        #expect(
            plain.status == 0 && !plain.stderr.contains("\r") && !plain.stderr.contains("\u{1B}")
                && plain.stderr.contains(" in "),
            "\(plain.stderr.debugDescription)"
        )
        // A tiny input gets no meaningless percentage ("19866.7% of the input").
        try "x".write(toFile: dir + "/tiny", atomically: false, encoding: .utf8)
        let tiny = try Proc.run(
            Proc.sealbakBinary,
            ["pack", dir + "/c.sbk", dir + "/tiny", "--insecure-test-kdf"],
            env: Self.env
        )
        #expect(tiny.status == 0 && !tiny.stderr.contains("% of the input"), "\(tiny.stderr)")
    }
}
