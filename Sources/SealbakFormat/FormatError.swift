/// A malformed, non-canonical or out-of-limit encoding found while parsing an archive structure.
///
/// Every parser in this module throws only `FormatError`, so callers (and the fuzzer) can rely on a closed
/// error domain. `offset` is the byte offset inside the structure being parsed (or inside the archive when the
/// caller knows it) and `message` says what was wrong; neither ever contains secret material.
package struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The failure class of Spec §9: which part of the archive is at fault.
    package enum Class: String, Sendable, Hashable, CaseIterable {
        /// The cleartext header is malformed or violates a limit (Spec §3).
        case header
        /// No key slot could be opened with the given secret (Spec §4).
        case key
        /// The header MAC does not verify: the header was altered (Spec §3.3).
        case mac
        /// A frame of the manifest or an entry failed authentication, decompression or decoding (Spec §6–7).
        case payload
        /// The archive ends before its footer (Spec §9).
        case truncated
        /// The trailer or the footer is inconsistent, or bytes follow the footer (Spec §8).
        case trailer
        /// The archive was written by a newer sealbak (unknown version).
        case version
    }

    package var errorClass: Class
    package var message: String
    package var offset: UInt64?

    package init(_ errorClass: Class, _ message: String, offset: UInt64? = nil) {
        self.errorClass = errorClass
        self.message = message
        self.offset = offset
    }

    package var description: String {
        if let offset { return "\(message) (at byte \(offset))" }
        return message
    }

    /// The same error with its offset moved into the message as a position inside decrypted `what`
    /// (so that it is not mistaken for an archive offset).
    package func inPlaintext(_ what: String) -> FormatError {
        guard let offset else { return self }
        return FormatError(errorClass, "\(message) (byte \(offset) of the decrypted \(what))")
    }
}
