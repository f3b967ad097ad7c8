import ArgumentParser
import Foundation
import SealbakArchive
import SealbakFormat
import SealbakKeys

#if canImport(Glibc)
import Glibc
#endif

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the key slots of an archive (only the header is rewritten; see docs/keys.md).",
        discussion: """
            A password change does not revoke anything: a copy of the old file (or of its old header) still opens \
            with the old password. To really revoke a password or key, use sealbak rekey.

            Examples:
              sealbak key list backup.sbk
              sealbak key add backup.sbk --label laptop
              sealbak key add backup.sbk --recovery              # prints a recovery code once
              sealbak key passwd backup.sbk --new-password-command 'pass show backup'
              sealbak key remove backup.sbk --slot 2
            """,
        subcommands: [KeyList.self, KeyAdd.self, KeyPasswd.self, KeyRemove.self]
    )
}

struct NewPasswordOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read the new password from the first line of FILE.", valueName: "FILE"))
    var newPasswordFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Read the new password from the first line of file descriptor N.", valueName: "N")
    )
    var newPasswordFd: Int32?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Read the new password from the first line printed by CMD (sh -c; it must exit 0).",
            valueName: "CMD"
        )
    )
    var newPasswordCommand: String?

    func validate() throws {
        if [newPasswordFile != nil, newPasswordFd != nil, newPasswordCommand != nil].filter({ $0 }).count > 1 {
            throw ValidationError("give only one of --new-password-file, --new-password-fd and --new-password-command")
        }
    }

    /// Whether a new password was given without a prompt.
    var given: Bool { !((try? source())?.isPrompt ?? true) }

    /// --new-password-file, --new-password-fd, --new-password-command, SEALBAK_NEW_PASSWORD,
    /// SEALBAK_NEW_PASSWORD_FILE, SEALBAK_NEW_PASSWORD_COMMAND; else the terminal (asked twice).
    func source() throws -> PasswordSource {
        try validate()
        if let newPasswordFile { return .file(newPasswordFile) }
        if let newPasswordFd { return .fd(newPasswordFd) }
        if let newPasswordCommand { return .command(newPasswordCommand) }
        if getenv("SEALBAK_NEW_PASSWORD") != nil { return .environment("SEALBAK_NEW_PASSWORD") }
        if let file = getenv("SEALBAK_NEW_PASSWORD_FILE") { return .file(String(cString: file)) }
        if let command = getenv("SEALBAK_NEW_PASSWORD_COMMAND") { return .command(String(cString: command)) }
        return .prompt(
            confirm: true,
            alternatives:
                "--new-password-file FILE, --new-password-fd N, --new-password-command CMD, "
                + "SEALBAK_NEW_PASSWORD_FILE or SEALBAK_NEW_PASSWORD"
        )
    }

    func read() throws -> Passphrase {
        try PasswordReader.read(try source(), what: "new password")
    }
}

struct KDFOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Argon2id memory for the new slot (default 256).", valueName: "MIB"))
    var kdfMemory: UInt32?

    @Option(name: .long, help: ArgumentHelp("Argon2id passes for the new slot (default 3).", valueName: "N"))
    var kdfPasses: UInt32?

    @Flag(
        name: .long,
        help: "TEST ONLY: the cheapest Argon2id setting (1 pass, 8 KiB). Anyone can brute-force such a slot."
    )
    var insecureTestKdf = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Allow --kdf-memory above 4096 MiB or --kdf-passes above 10 (readers then need "
                + "--max-kdf-memory/--max-kdf-passes)."
        )
    )
    var allowExpensiveKdf = false

    func validate() throws {
        if let kdfMemory, kdfMemory < 8 || kdfMemory > 1 << 20 {
            throw ValidationError("--kdf-memory must be 8 ... 1048576 MiB")
        }
        if let kdfPasses, kdfPasses < 1 { throw ValidationError("--kdf-passes must be at least 1") }
        if !allowExpensiveKdf, let problem = Self.aboveReadCaps(memoryMiB: kdfMemory ?? 0, passes: kdfPasses ?? 0) {
            throw ValidationError(problem)
        }
    }

    /// Readers refuse slots above 4096 MiB or 10 passes unless told otherwise (`ReadingOptions`); a writer that
    /// goes above them makes an archive sealbak itself will not open by default. Nil when within the caps.
    static func aboveReadCaps(memoryMiB: UInt32, passes: UInt32) -> String? {
        let (maxMemory, maxPasses): (UInt32, UInt32) = (4096, 10)
        guard memoryMiB > maxMemory || passes > maxPasses else { return nil }
        return
            "--kdf-memory \(memoryMiB) / --kdf-passes \(passes) is above what readers accept by default "
            + "(\(maxMemory) MiB, \(maxPasses) passes): "
            + "every later verify, list or unpack would need --max-kdf-memory/--max-kdf-passes. Use lower values, or "
            + "add --allow-expensive-kdf if that is what you want"
    }

    /// The parameters asked for, or nil when none was given (keep the existing ones where that applies).
    var explicit: KDFParameters? {
        if insecureTestKdf { return KDFParameters(opsLimit: 1, memLimitKiB: 8) }
        if kdfMemory == nil && kdfPasses == nil { return nil }
        return KDFParameters(
            opsLimit: kdfPasses ?? KeySlots.defaultKDF.opsLimit,
            memLimitKiB: (kdfMemory.map { $0 * 1024 }) ?? KeySlots.defaultKDF.memLimitKiB
        )
    }

    var parameters: KDFParameters { explicit ?? KeySlots.defaultKDF }
}

/// Unlocks `archive` for a key change; a remote archive's header is then rewritten through the storage of
/// `reading`'s and `upload`'s flags.
func unlockForEdit(
    _ archive: String,
    password: PasswordOptions,
    reading: ReadingOptions,
    upload: S3UploadOptions
) throws -> KeyEditing.Unlocked {
    let locations = reading.s3.connection(upload: upload).locations
    return try password.withSecret(what: "current password", limits: reading.readOptions.limits) { secret in
        try KeyEditing.unlock(path: archive, in: locations, secret: secret, limits: reading.readOptions.limits)
    }
}

struct KeyList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List key slots (no password needed; nothing secret is shown)."
    )

    @Argument(help: ArgumentHelp("The archive.", valueName: "ARCHIVE"))
    var archive: String

    @OptionGroup(title: "Output") var output: OutputOptions
    @OptionGroup(title: "Object storage") var s3: S3Options

    /// Accepted and not read (no password is needed), so that a wrapper can pass the same options to every command.
    @OptionGroup(visibility: .hidden) var password: PasswordOptions

    func run() throws {
        try reportingErrors(json: output.json ? "key list" : nil) {
            let h = try ArchiveReader.readHeader(try s3.connection().locations.input(archive))
            if output.json {
                JSONOutput.emit(
                    "key list",
                    [
                        "archive": archiveJSON(archive, header: h, manifest: nil), "authenticated": false,
                        "slots": h.slots.map(slotJSON),
                    ]
                )
                return
            }
            print("\(h.slots.count) key slot(s) in \(archive) (header not authenticated without a password):")
            for s in h.slots { print("  " + describeSlot(s)) }
        }
    }
}

func slotTypeName(_ s: KeySlot) -> String {
    switch s.body {
    case .password: s.isRecovery ? "recovery" : "password"
    case .x25519: "x25519"
    case .unknown(let t, _): "type-\(t)"
    }
}

func describeSlot(_ s: KeySlot) -> String {
    switch s.body {
    case .password(let kdf, _, _, _):
        let mem = kdf.memLimitKiB >= 1024 ? "\(kdf.memLimitKiB / 1024) MiB" : "\(kdf.memLimitKiB) KiB"
        return
            "slot \(s.id): \(s.isRecovery ? "recovery code" : "password"), Argon2id \(kdf.opsLimit) passes, \(mem), "
            + "parallelism \(kdf.parallelism), label \"\(s.label)\", created \(formatTime(Int64(s.createdUnix)))"
    case .x25519(let recipient, _, _, _):
        return
            "slot \(s.id): public key \(Recipients.encode(publicKey: recipient)), label \"\(s.label)\", created "
            + "\(formatTime(Int64(s.createdUnix)))"
    case .unknown(let t, _):
        return
            "slot \(s.id): type \(t) (not supported by this sealbak), label \"\(s.label)\", created "
            + "\(formatTime(Int64(s.createdUnix)))"
    }
}

struct KeyAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a password slot (asks for an existing password first)."
    )

    @Argument(help: ArgumentHelp("The archive.", valueName: "ARCHIVE"))
    var archive: String

    @Option(name: .long, help: "A label for the new slot (shown by key list; not secret).")
    var label: String?

    @Flag(
        name: .long,
        help: "Create a recovery code instead of a password: printed once, usable wherever a password is."
    )
    var recovery = false

    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var newPassword: NewPasswordOptions
    @OptionGroup var kdf: KDFOptions
    @OptionGroup var reading: ReadingOptions
    @OptionGroup(title: "Object storage uploads") var s3Upload: S3UploadOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    func validate() throws {
        if (label ?? "").utf8.count > FormatV1.maxLabelByteCount {
            throw ValidationError("--label is limited to 64 bytes")
        }
    }

    func run() throws {
        try reportingErrors(json: output.json ? "key add" : nil) {
            let u = try unlockForEdit(archive, password: password, reading: reading, upload: s3Upload)
            if recovery {
                let (id, code) = try KeyEditing.addRecoveryCode(
                    u,
                    label: label ?? "recovery code",
                    kdf: kdf.explicit ?? KeySlots.recoveryKDF
                )
                // Asked for with --json, the code is in the document (shown only this once, as on the terminal).
                if output.json {
                    return JSONOutput.emit(
                        "key add",
                        ["archive": archive, "slot": Int(id), "type": "recovery", "recovery_code": code]
                    )
                }
                print(
                    "Recovery code for \(archive) (key slot \(id)). Write it down and keep it somewhere safe; it is "
                        + "shown only this once:"
                )
                print("")
                print("    \(code)")
                print("")
                print("Use it wherever a password is asked for. A mistyped character is reported as a typo.")
                return
            }
            let new = try newPassword.read()
            let id = try KeyEditing.addPassword(u, passphrase: new, label: label ?? "", kdf: kdf.parameters)
            if output.json { JSONOutput.emit("key add", ["archive": archive, "slot": Int(id), "type": "password"]) }
            printError("sealbak: added key slot \(id) to \(archive) (only the header was rewritten)")
        }
    }
}

struct KeyPasswd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd",
        abstract: "Change the password of one slot (default: the slot the current password opens).",
        discussion: "Old copies of the archive still open with the old password; use sealbak rekey to revoke it."
    )

    @Argument(help: ArgumentHelp("The archive.", valueName: "ARCHIVE"))
    var archive: String

    @Option(name: .long, help: ArgumentHelp("The slot to change.", valueName: "ID"))
    var slot: UInt16?

    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var newPassword: NewPasswordOptions
    @OptionGroup var kdf: KDFOptions
    @OptionGroup var reading: ReadingOptions
    @OptionGroup(title: "Object storage uploads") var s3Upload: S3UploadOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    func run() throws {
        try reportingErrors(json: output.json ? "key passwd" : nil) {
            let u = try unlockForEdit(archive, password: password, reading: reading, upload: s3Upload)
            let id = slot ?? u.openedSlot.id
            let new = try newPassword.read()
            try KeyEditing.changePassword(u, slot: id, passphrase: new, kdf: kdf.explicit)
            if output.json { JSONOutput.emit("key passwd", ["archive": archive, "slot": Int(id)]) }
            printError(
                "sealbak: changed the password of key slot \(id) of \(archive). Copies of the old file still open "
                    + "with the old password; sealbak rekey revokes it"
            )
        }
    }
}

struct KeyRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a key slot (never the last one that opens the archive)."
    )

    @Argument(help: ArgumentHelp("The archive.", valueName: "ARCHIVE"))
    var archive: String

    @Option(name: .long, help: ArgumentHelp("The slot to remove.", valueName: "ID"))
    var slot: UInt16

    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var reading: ReadingOptions
    @OptionGroup(title: "Object storage uploads") var s3Upload: S3UploadOptions
    @OptionGroup(title: "Output") var output: OutputOptions

    func run() throws {
        try reportingErrors(json: output.json ? "key remove" : nil) {
            let u = try unlockForEdit(archive, password: password, reading: reading, upload: s3Upload)
            try KeyEditing.removeSlot(u, slot: slot)
            if output.json { JSONOutput.emit("key remove", ["archive": archive, "slot": Int(slot)]) }
            printError(
                "sealbak: removed key slot \(slot) from \(archive). Copies of the old file still open with that key; "
                    + "sealbak rekey revokes it"
            )
        }
    }
}

/// A key slot as JSON (docs/json.md "slot"); nothing secret.
func slotJSON(_ s: KeySlot) -> [String: Any] {
    var d: [String: Any] = [
        "id": Int(s.id), "label": s.label, "created": JSONOutput.time(Int64(s.createdUnix)), "type": slotTypeName(s),
    ]
    if case .password(let kdf, _, _, _) = s.body {
        d["kdf"] = [
            "algorithm": "argon2id", "passes": Int(kdf.opsLimit), "memory_kib": Int(kdf.memLimitKiB),
            "parallelism": Int(kdf.parallelism),
        ]
    }
    if case .x25519(let recipient, _, _, _) = s.body { d["public_key"] = Recipients.encode(publicKey: recipient) }
    return d
}
