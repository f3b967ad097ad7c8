import SealbakFormat

/// What opens an archive: a password (or recovery code), or an X25519 identity.
package enum ArchiveSecret: Sendable {
    case password(Passphrase)
    case identity(Identity)

    package func unlock(header: ArchiveHeader, limits: KDFLimits, archive: String) throws -> (MasterKey, KeySlot) {
        switch self {
        case .password(let p): try KeySlots.unlock(header: header, passphrase: p, limits: limits, archive: archive)
        case .identity(let i): try Recipients.unlock(header: header, identity: i, archive: archive)
        }
    }
}
