import ArgumentParser
import SealbakIO
import SealbakKeys

#if canImport(Glibc)
import Glibc
#endif

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an X25519 identity file and print its public key.",
        discussion: """
            Give the public key to machines that write backups: sealbak pack OUT PATH --recipient PUBKEY. They can \
            write archives they cannot read; only the identity opens them (--identity FILE on unpack, verify, list). \
            The identity file is protected by a password (Argon2id) unless --no-password is given.

            Examples:
              sealbak keygen -o ~/.sealbak/id                        # prints the public key (sbkpk1...)
              sealbak pack 's3://backups/{now}.sbk' --plan app.yaml --recipient sbkpk1...   # on the server
              sealbak unpack s3://backups/2026-11-30T02:00:00.000Z.sbk --to ./r --identity ~/.sealbak/id
            """
    )

    @Option(name: .shortAndLong, help: ArgumentHelp("The identity file to create (mode 0600).", valueName: "IDENTITY"))
    var output: String

    @Flag(
        name: .long,
        help: "Store the secret key without a password (for unattended restores; protect the file otherwise)."
    )
    var noPassword = false

    @Flag(name: .long, help: "Replace IDENTITY if it exists.")
    var force = false

    @OptionGroup(title: "Output") var report: OutputOptions
    @OptionGroup(title: "Passwords") var password: PasswordOptions
    @OptionGroup var kdf: KDFOptions

    func run() throws {
        try reportingErrors(json: report.json ? "keygen" : nil) {
            try password.refuseIdentity("the identity to create is -o/--output")
            let out = try AtomicOutput(path: output, overwrite: force, mode: 0o600)
            // The identity file's password: the password options, SEALBAK_IDENTITY_PASSWORD, or a prompt (the same
            // sources that --identity reads it from).
            let pass =
                noPassword
                ? nil
                : try PasswordReader.read(
                    try password.identitySource(confirm: true),
                    what: "password for the identity file"
                )
            let identity = Identity.generate()
            do {
                try out.write(Array(try identity.fileText(passphrase: pass, kdf: kdf.parameters).utf8))
                try out.commit()
            } catch {
                out.abandon()
                throw error
            }
            if report.json {
                return JSONOutput.emit(
                    "keygen",
                    [
                        "identity": self.output, "public_key": Recipients.encode(publicKey: identity.publicKey),
                        "password_protected": !noPassword,
                    ]
                )
            }
            print(Recipients.encode(publicKey: identity.publicKey))
            printError(
                "sealbak: wrote the identity to \(output)\(noPassword ? " (not password-protected)" : ""); the line "
                    + "above is its public key"
            )
        }
    }
}
