import ArgumentParser
import Foundation
import SealbakArchive
import SealbakFormat
import SealbakIO
import SealbakKeys
import SealbakS3

struct ConsolidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consolidate",
        abstract:
            "Write an incremental archive's content as one full archive, so that the older links of its chain can go.",
        discussion: """
            Reads ARCHIVE through its chain (every referenced chunk verified) and writes everything it holds to OUT \
            as an archive that needs no other file. OUT gets the password ARCHIVE was opened with and ARCHIVE's \
            recipients; other passwords and recovery codes of ARCHIVE are not carried over (add them again with \
            sealbak key add). With --chained, OUT starts a new chain that later `pack --base OUT` runs build on. \
            OUT is verified completely before it is given its name.

            Examples:
              sealbak consolidate nightly-2026-11-30.sbk full-2026-11-30.sbk
              sealbak consolidate s3://bkp/app/app-2026-11-30T0300.sbk s3://bkp/app/app-full.sbk --chained
            """
    )

    @Argument(help: ArgumentHelp("The incremental archive (a file or s3:// object).", valueName: "ARCHIVE"))
    var archive: String

    @Argument(
        help: ArgumentHelp("The full archive to write ({now} becomes the UTC time).", valueName: "OUT"),
        transform: { RetentionPolicy.expandName($0) }
    )
    var output: String

    @Flag(name: .long, help: "Make OUT the root of a new chain (later `pack --base OUT` builds on it).")
    var chained = false

    @Flag(name: .long, help: "Replace OUT if it exists.")
    var force = false

    @Flag(name: [.short, .long], help: "No summary on stderr.")
    var quiet = false

    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var kdf: KDFOptions
    @OptionGroup var reading: ReadingOptions
    @OptionGroup(title: "Object storage uploads") var s3Upload: S3UploadOptions
    @OptionGroup(title: "Output") var report: OutputOptions

    func run() throws {
        try reportingErrors(json: report.json ? "consolidate" : nil) {
            let locations = reading.s3.connection(upload: s3Upload).locations
            let out = try locations.output(output, overwrite: force, staged: true)
            let started = Date()
            do {
                let (summary, reader) = try password.withSecret(limits: reading.readOptions.limits) { secret in
                    let reader = try openArchive(archive, in: locations, password: password, reading: reading)
                    var options = WriteOptions()
                    if let k = kdf.explicit { options.kdf = k }
                    if let threads = reading.threads { options.threads = max(1, threads) }
                    if chained { options.chain = .root(random: options.random) }
                    let summary = try Consolidate.copy(
                        from: reader,
                        passwords: passwordSlots(secret),
                        recipients: recipientKeys(reader.header),
                        options: options,
                        sink: { try out.write($0) }
                    )
                    // Everything again, from what was written, before it gets its name.
                    let check = try ArchiveReader(
                        input: try out.readBack(),
                        secret: secret,
                        options: reading.readOptions
                    )
                    if check.isChained { try check.attachChain(catalog: nil) { _, _ in check } }
                    try check.readAll(into: DiscardSink())
                    return (summary, reader)
                }
                try out.commit()
                if report.json {
                    JSONOutput.emit(
                        "consolidate",
                        [
                            "archive": archive, "output": output, "id": hex(summary.archiveID),
                            "entries": summary.entries, "bytes_in": summary.plaintextBytes,
                            "bytes_out": summary.archiveBytes, "chain_read": reader.chain?.bases.map(\.name) ?? [],
                        ]
                    )
                } else if !quiet {
                    printError(
                        "sealbak: consolidated \(archive) (and \(reader.chain?.bases.count ?? 0) base archive(s)) "
                            + "into \(output): \(summary.entries) entries, \(formatBytes(summary.plaintextBytes)) in "
                            + "\(formatBytes(summary.archiveBytes)), verified, in "
                            + "\(formatDuration(Date().timeIntervalSince(started)))"
                    )
                }
            } catch {
                out.abandon()
                throw error
            }
        }
    }
}

/// The password slot a copy gets: the password the original was opened with (not a recovery code, which is bound
/// to its own slot), none for an identity.
func passwordSlots(_ secret: ArchiveSecret) -> [PasswordSlotSpec] {
    guard case .password(let p) = secret, case .notACode = RecoveryCode.parse(p) else { return [] }
    return [PasswordSlotSpec(passphrase: p)]
}

/// The public keys of an archive's recipient slots (cleartext in its header, Spec §4.6).
func recipientKeys(_ header: ArchiveHeader) -> [[UInt8]] {
    header.slots.compactMap { s in
        if case .x25519(let recipient, _, _, _) = s.body { return recipient }
        return nil
    }
}
