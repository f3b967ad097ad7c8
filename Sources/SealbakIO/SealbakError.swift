import SealbakFormat

/// The one error type that crosses the archive layer's boundary (modelled on NIO's `FileSystemError`).
///
/// `message` says what failed, where (archive, entry, offset) and what the user can do. It never contains a
/// password, a key or plaintext. `code` selects the documented exit status (docs/exit-codes.md).
package struct SealbakError: Error, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case usage, wrongPassword, wrongIdentity, corrupt, truncated, unsupported, targetExists, io, notFound,
                internalError, interrupted
            case unavailable, toolFailed, restoreMismatch, accessDenied, chain
        }

        private let wrapped: Wrapped
        private init(_ w: Wrapped) { wrapped = w }

        /// Bad arguments or options (exit 64, as swift-argument-parser uses for usage errors).
        package static let usage = Code(.usage)
        /// No key slot opens with the secret given (exit 3).
        package static let wrongPassword = Code(.wrongPassword)
        /// No recipient slot is for the identity given (exit 10).
        package static let wrongIdentity = Code(.wrongIdentity)
        /// The archive was altered or damaged: an authentication tag, MAC or checksum failed (exit 4).
        package static let corrupt = Code(.corrupt)
        /// The archive ends early (exit 5).
        package static let truncated = Code(.truncated)
        /// Made by a newer sealbak, a cipher not available here, or a KDF cost above the cap (exit 6).
        package static let unsupported = Code(.unsupported)
        /// The output exists and `--force` was not given (exit 7).
        package static let targetExists = Code(.targetExists)
        /// Reading or writing failed: disk full, permission denied, I/O error (exit 8).
        package static let io = Code(.io)
        /// An input file or archive does not exist (exit 9).
        package static let notFound = Code(.notFound)
        /// A component's server or tool cannot be used: server unreachable, authentication failed, missing
        /// rights, no suitable pg_dump/pg_restore, an extension missing on the target (exit 11).
        package static let unavailable = Code(.unavailable)
        /// An external tool (pg_dump, pg_restore) failed or stopped early; its own message is shown (exit 12).
        package static let toolFailed = Code(.toolFailed)
        /// A restored component does not match what the archive recorded (row counts, extensions); the
        /// restore was rolled back (exit 13).
        package static let restoreMismatch = Code(.restoreMismatch)
        /// Object storage refused the credentials or the request: unknown access key, wrong secret, no
        /// permission on the bucket (exit 14).
        package static let accessDenied = Code(.accessDenied)
        /// An incremental archive's chain does not fit: a base is missing, or is not the archive it was made
        /// against, or a reference points outside the chain (Spec §14.5, class `chain`; exit 19).
        package static let chain = Code(.chain)
        /// Interrupted by a signal (exit 130).
        package static let interrupted = Code(.interrupted)
        /// A bug in sealbak (exit 1).
        package static let internalError = Code(.internalError)

        package var exitStatus: Int32 {
            switch wrapped {
            case .internalError: 1
            case .usage: 64
            case .wrongPassword: 3
            case .corrupt: 4
            case .truncated: 5
            case .unsupported: 6
            case .targetExists: 7
            case .io: 8
            case .notFound: 9
            case .wrongIdentity: 10
            case .unavailable: 11
            case .toolFailed: 12
            case .restoreMismatch: 13
            case .accessDenied: 14
            case .chain: 19
            case .interrupted: 130
            }
        }

        package var description: String { "\(wrapped)" }
    }

    package var code: Code
    package var message: String
    /// The failure class of Spec §9 when the error comes from reading an archive.
    package var formatClass: FormatError.Class?

    package init(_ code: Code, _ message: String, formatClass: FormatError.Class? = nil) {
        self.code = code
        self.message = message
        self.formatClass = formatClass
    }

    package var description: String { message }

    /// Maps a parser error to the user-facing error, naming the archive and the place.
    package static func format(_ e: FormatError, archive: String, context: String? = nil) -> SealbakError {
        let place = context.map { " in \($0)" } ?? ""
        let at = e.offset.map { " at byte \($0)" } ?? ""
        let m: String
        let code: Code
        switch e.errorClass {
        case .header:
            code = .corrupt
            m =
                "\(archive): invalid header\(at): \(e.message). The file is not a sealbak archive or its header is "
                + "damaged"
        case .key:
            code = .wrongPassword
            m = "\(archive): \(e.message)"
        case .mac:
            code = .corrupt
            m = "\(archive): the header was modified or damaged (header MAC mismatch). Use another copy of the archive"
        case .payload:
            code = .corrupt
            m =
                "\(archive): corrupted or tampered data\(place)\(at): \(e.message). Nothing unverified was written; "
                + "use another copy of the archive"
        case .truncated:
            code = .truncated
            m = "\(archive): the archive is truncated\(place)\(at): \(e.message). Was the copy or upload interrupted?"
        case .trailer:
            code = .corrupt
            m =
                "\(archive): invalid trailer or footer\(at): \(e.message). The archive was altered, truncated or has "
                + "bytes appended"
        case .version:
            code = .unsupported
            m = "\(archive): \(e.message)"
        }
        return SealbakError(code, m, formatClass: e.errorClass)
    }

    package static func io(_ what: String, path: String, errno e: Int32) -> SealbakError {
        let reason = errnoDescription(e)
        let hint: String
        switch e {
        case ENOSPC, EDQUOT: hint = ". Free space on the target file system or choose another location"
        case EACCES, EPERM: hint = ". Check the permissions"
        case EROFS: hint = ". The file system is read-only"
        default: hint = ""
        }
        let code: Code = (e == ENOENT) ? .notFound : .io
        return SealbakError(code, "\(what) \(path): \(reason)\(hint)")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

func errnoDescription(_ e: Int32) -> String {
    String(cString: strerror(e))
}
