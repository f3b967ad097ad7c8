/// Key-slot types (Spec §4).
package enum KeySlotType: UInt8, Sendable {
    /// A password stretched with Argon2id wraps the master key (Spec §4.2).
    case password = 1
    /// An X25519 public-key recipient (Spec §4.6).
    case x25519 = 2
    /// A recovery code: the body of a password slot, opened only by a well-formed recovery code (Spec §4.5).
    case recovery = 3
}

/// Argon2id parameters stored in a password slot (Spec §4.2).
package struct KDFParameters: Hashable, Sendable {
    package var opsLimit: UInt32
    package var memLimitKiB: UInt32
    package var parallelism: UInt8

    package init(opsLimit: UInt32, memLimitKiB: UInt32, parallelism: UInt8 = 1) {
        self.opsLimit = opsLimit
        self.memLimitKiB = memLimitKiB
        self.parallelism = parallelism
    }

    package var memLimitBytes: UInt64 { UInt64(memLimitKiB) * 1024 }
}

/// One key slot: a way to recover the archive's master key (Spec §4.1).
package struct KeySlot: Hashable, Sendable {
    package enum Body: Hashable, Sendable {
        /// Spec §4.2.
        case password(kdf: KDFParameters, salt: [UInt8], nonce: [UInt8], wrappedKey: [UInt8])
        /// Spec §4.6.
        case x25519(recipient: [UInt8], ephemeral: [UInt8], nonce: [UInt8], wrappedKey: [UInt8])
        /// A slot type this reader does not implement; kept verbatim so the header MAC and re-encoding still hold.
        case unknown(type: UInt8, body: [UInt8])
    }

    package var id: UInt16
    package var createdUnix: UInt64
    package var label: String
    package var body: Body
    /// A `.password` body under slot type 3 (recovery code) instead of 1.
    package var isRecovery: Bool

    package init(id: UInt16, createdUnix: UInt64, label: String, body: Body, isRecovery: Bool = false) {
        self.id = id
        self.createdUnix = createdUnix
        self.label = label
        self.body = body
        self.isRecovery = isRecovery
    }

    package var typeCode: UInt8 {
        switch body {
        case .password: isRecovery ? KeySlotType.recovery.rawValue : KeySlotType.password.rawValue
        case .x25519: KeySlotType.x25519.rawValue
        case .unknown(let t, _): t
        }
    }

    package static let x25519BodyByteCount = 32 + 32 + 24 + 48

    package static let passwordBodyByteCount = 4 + 4 + 1 + 16 + 24 + 48
    package static let saltByteCount = 16
    package static let wrapNonceByteCount = 24
    package static let wrappedKeyByteCount = 48

    /// The associated data that binds a wrapped master key to its archive and slot (Spec §4.2).
    package func wrapAssociatedData(archiveID: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.write(bytes: Array("SBK1slot".utf8))
        w.write(bytes: archiveID)
        w.write(id)
        w.write(typeCode)
        switch body {
        case .password(let kdf, let salt, _, _):
            w.write(kdf.opsLimit)
            w.write(kdf.memLimitKiB)
            w.write(kdf.parallelism)
            w.write(bytes: salt)
        case .x25519(let recipient, let ephemeral, _, _):
            w.write(bytes: recipient)
            w.write(bytes: ephemeral)
        case .unknown:
            break
        }
        return w.bytes
    }
}

/// The base record of a chained archive's header (`FormatFeatures.chained`): which archive it builds on.
///
/// 50 bytes between the last key slot and the header MAC: `base_archive_id` [16], `base_trailer_sha256` [32],
/// `chain_depth` u16. A root of a chain has all three zero; any other archive has depth 1...1024, a non-zero
/// base archive id (not its own) and a non-zero hash.
package struct BaseRecord: Sendable, Hashable {
    /// The archive_id of the base archive (16 bytes).
    package var archiveID: [UInt8]
    /// The SHA-256 of the base archive's trailer (32 bytes).
    package var trailerSHA256: [UInt8]
    /// 0 for the root of a chain; otherwise one more than the base archive's depth.
    package var depth: UInt16

    package static let byteCount = 50
    package static let trailerSHA256ByteCount = 32

    /// The record of an archive that starts a chain: everything zero.
    package static let root = BaseRecord(
        archiveID: [UInt8](repeating: 0, count: FormatV1.archiveIDByteCount),
        trailerSHA256: [UInt8](repeating: 0, count: trailerSHA256ByteCount),
        depth: 0
    )

    package init(archiveID: [UInt8], trailerSHA256: [UInt8], depth: UInt16) {
        self.archiveID = archiveID
        self.trailerSHA256 = trailerSHA256
        self.depth = depth
    }

    package var isRoot: Bool { depth == 0 }

    /// The 50 bytes as they appear in the header.
    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.write(bytes: archiveID)
        w.write(bytes: trailerSHA256)
        w.write(depth)
        return w.bytes
    }

    /// Reads the record from `r` and checks its rules against the header's own `archiveID` (class `header`):
    /// depth 0 ⇔ base id all zero ⇔ hash all zero; depth ≤ `FormatV1.maxChainDepth`; base id ≠ own id.
    fileprivate static func read(
        _ r: inout ByteReader,
        ownArchiveID: [UInt8]
    ) throws(FormatError) -> BaseRecord {
        let start = UInt64(r.offset)
        let id = try r.readBytes(FormatV1.archiveIDByteCount, "base archive id")
        let hash = try r.readBytes(trailerSHA256ByteCount, "base trailer SHA-256")
        let depth = try r.readUInt16("chain depth")
        let idIsZero = id.allSatisfy { $0 == 0 }
        let hashIsZero = hash.allSatisfy { $0 == 0 }
        if depth == 0 && !(idIsZero && hashIsZero) {
            let field = idIsZero ? "base trailer hash" : "base archive id"
            throw FormatError(
                .header,
                "base record of a chain root (depth 0) has a non-zero \(field)",
                offset: idIsZero ? start + 16 : start
            )
        }
        if depth != 0 && (idIsZero || hashIsZero) {
            let field = idIsZero ? "base archive id" : "base trailer hash"
            throw FormatError(
                .header,
                "base record at chain depth \(depth) has an all-zero \(field)",
                offset: idIsZero ? start : start + 16
            )
        }
        if depth > FormatV1.maxChainDepth {
            throw FormatError(
                .header,
                "chain depth \(depth) exceeds the maximum \(FormatV1.maxChainDepth)",
                offset: start + 48
            )
        }
        if depth != 0 && id == ownArchiveID {
            throw FormatError(.header, "the base archive id is the archive's own id", offset: start)
        }
        return BaseRecord(archiveID: id, trailerSHA256: hash, depth: depth)
    }
}

/// The cleartext header (Spec §3): everything a reader learns before it has a key.
package struct ArchiveHeader: Hashable, Sendable {
    /// The required features (Spec §3.4). They fix the format version: none is version 1 (flags 0), any is
    /// version 2 with these bits in flags, so a header cannot encode a version that disagrees with them.
    package var features: FormatFeatures
    package var cipherSuite: CipherSuite
    package var frameSizeLog2: UInt8
    package var archiveID: [UInt8]
    package var createdUnix: UInt64
    package var slots: [KeySlot]
    /// The base record, between the last key slot and the MAC: present exactly when `features` contains
    /// `.chained` (`validate` and `parse` enforce it).
    package var base: BaseRecord?
    /// The 32-byte MAC that closes the header (Spec §3.3). Zero-filled until sealed.
    package var mac: [UInt8]

    package init(
        features: FormatFeatures = [],
        cipherSuite: CipherSuite,
        frameSizeLog2: UInt8,
        archiveID: [UInt8],
        createdUnix: UInt64,
        slots: [KeySlot],
        base: BaseRecord? = nil,
        mac: [UInt8] = [UInt8](repeating: 0, count: FormatV1.headerMACByteCount)
    ) {
        self.features = features
        self.cipherSuite = cipherSuite
        self.frameSizeLog2 = frameSizeLog2
        self.archiveID = archiveID
        self.createdUnix = createdUnix
        self.slots = slots
        self.base = base
        self.mac = mac
    }

    package var frameSize: Int { 1 << Int(frameSizeLog2) }

    /// The format version the header is written with: 1 without features, 2 with (Spec §3.4).
    package var version: UInt16 { features.formatVersion }

    /// Encoded length of the whole header, MAC included.
    package var byteCount: Int { encodedWithoutMAC().count + FormatV1.headerMACByteCount }

    /// The bytes the header MAC covers: offset 0 up to the MAC (Spec §3.3), the base record included.
    package func encodedWithoutMAC() -> [UInt8] {
        var slotBytes = ByteWriter()
        for slot in slots {
            slotBytes.write(slot.typeCode)
            slotBytes.write(UInt8(0))
            slotBytes.write(slot.id)
            slotBytes.write(slot.createdUnix)
            let label = Array(slot.label.utf8)
            slotBytes.write(UInt8(truncatingIfNeeded: label.count))
            slotBytes.write(bytes: label)
            let body: [UInt8]
            switch slot.body {
            case .password(let kdf, let salt, let nonce, let wrapped):
                var b = ByteWriter(capacity: KeySlot.passwordBodyByteCount)
                b.write(kdf.opsLimit)
                b.write(kdf.memLimitKiB)
                b.write(kdf.parallelism)
                b.write(bytes: salt)
                b.write(bytes: nonce)
                b.write(bytes: wrapped)
                body = b.bytes
            case .x25519(let recipient, let ephemeral, let nonce, let wrapped):
                body = recipient + ephemeral + nonce + wrapped
            case .unknown(_, let raw):
                body = raw
            }
            slotBytes.write(UInt16(truncatingIfNeeded: body.count))
            slotBytes.write(bytes: body)
        }
        let baseBytes = base?.encoded() ?? []
        let total =
            FormatV1.fixedHeaderByteCount + slotBytes.bytes.count + baseBytes.count + FormatV1.headerMACByteCount
        var w = ByteWriter(capacity: total)
        w.write(bytes: FormatV1.magic)
        w.write(version)
        w.write(UInt16(truncatingIfNeeded: total))
        w.write(features.rawValue)
        w.write(cipherSuite.rawValue)
        w.write(frameSizeLog2)
        w.write(bytes: archiveID)
        w.write(createdUnix)
        w.write(UInt8(truncatingIfNeeded: slots.count))
        w.write(bytes: slotBytes.bytes)
        w.write(bytes: baseBytes)
        return w.bytes
    }

    /// The complete header bytes, MAC included.
    package func encoded() -> [UInt8] { encodedWithoutMAC() + mac }

    /// Checks the writer-side limits that `parse` enforces, so a writer never emits what a reader rejects.
    package func validate() throws(FormatError) {
        if features.contains(.chained) != (base != nil) {
            throw FormatError(
                .header,
                features.contains(.chained)
                    ? "a chained header needs a base record" : "a base record needs the chained feature"
            )
        }
        let bytes = encoded()
        let parsed = try ArchiveHeader.parse(bytes)
        if parsed != self { throw FormatError(.header, "header does not round-trip") }
    }

    /// Reads the header length from the first 12 bytes, or nil when fewer are available.
    ///
    /// - Throws: a `.header` error for a wrong magic, a `.version` error for a newer version.
    package static func declaredLength(prefix: [UInt8]) throws(FormatError) -> Int? {
        try declaredVersionAndLength(prefix: prefix)?.length
    }

    /// Spec §3.1 steps 1–2: magic, version (1 or 2), header_length from the first 12 bytes; nil when fewer.
    private static func declaredVersionAndLength(prefix: [UInt8]) throws(FormatError) -> (version: UInt16, length: Int)?
    {
        if prefix.count < 12 {
            if !prefix.isEmpty && !FormatV1.magic.starts(with: prefix.prefix(8)) {
                throw FormatError(.header, "not a sealbak archive (bad magic)", offset: 0)
            }
            return nil
        }
        var r = ByteReader(prefix, range: 0..<12, errorClass: .truncated)
        let magic = try r.readBytes(8, "magic")
        if magic != FormatV1.magic {
            throw FormatError(.header, "not a sealbak archive (bad magic)", offset: 0)
        }
        let version = try r.readUInt16("version")
        if version == 0 {
            throw FormatError(.header, "invalid format version 0", offset: 8)
        }
        if version > FormatV1.newestVersion {
            throw FormatError(
                .version,
                "archive format version \(version) was made by a newer sealbak; this sealbak reads versions 1 and "
                    + "\(FormatV1.newestVersion). Upgrade sealbak to read it",
                offset: 8
            )
        }
        let length = Int(try r.readUInt16("header length"))
        let minimum = FormatV1.fixedHeaderByteCount + FormatV1.headerMACByteCount
        if length < minimum {
            throw FormatError(.header, "header length \(length) is below the minimum \(minimum)", offset: 10)
        }
        return (version, length)
    }

    /// Spec §3.1 step 4 for flags, §3.4: version 1 has flags 0; version 2 declares at least one feature, and only
    /// features this implementation has (an unknown bit is a newer sealbak's, class `version`, checked first).
    private static func requiredFeatures(version: UInt16, flags: UInt16) throws(FormatError) -> FormatFeatures {
        if version == FormatV1.version {
            if flags != 0 {
                throw FormatError(.header, "reserved header flags are set (\(flags)) in a version-1 header", offset: 12)
            }
            return []
        }
        let unknown = flags & ~FormatFeatures.implemented.rawValue
        if unknown != 0 {
            let bit = unknown.trailingZeroBitCount
            throw FormatError(
                .version,
                "archive uses feature bit \(bit) (flags 0x\(String(flags, radix: 16))), made by a newer sealbak; "
                    + "this sealbak implements \(Self.implementedDescription). Upgrade sealbak to read it",
                offset: 12
            )
        }
        if flags == 0 {
            throw FormatError(
                .header,
                "a version-2 header must declare at least one feature, its flags are 0",
                offset: 12
            )
        }
        return FormatFeatures(rawValue: flags)
    }

    /// Parses exactly one header; `bytes` must hold the header and nothing else (Spec §3).
    package static func parse(_ bytes: [UInt8]) throws(FormatError) -> ArchiveHeader {
        guard let (version, length) = try declaredVersionAndLength(prefix: Array(bytes.prefix(12))) else {
            throw FormatError(.truncated, "archive ends inside the header", offset: UInt64(bytes.count))
        }
        if bytes.count < length {
            throw FormatError(
                .truncated,
                "archive ends inside the header (\(bytes.count) of \(length) bytes)",
                offset: UInt64(bytes.count)
            )
        }
        if bytes.count > length {
            throw FormatError(.header, "header is followed by unexpected bytes", offset: UInt64(length))
        }
        var r = ByteReader(bytes, range: 12..<(length - FormatV1.headerMACByteCount), errorClass: .header)
        let features = try requiredFeatures(version: version, flags: try r.readUInt16("header flags"))
        let suiteOffset = UInt64(r.offset)
        let suiteRaw = try r.readUInt8("cipher suite")
        guard let suite = CipherSuite(rawValue: suiteRaw) else {
            throw FormatError(.header, "unknown cipher suite \(suiteRaw)", offset: suiteOffset)
        }
        let fsOffset = UInt64(r.offset)
        let fsLog2 = try r.readUInt8("frame size")
        guard (FormatV1.minFrameSizeLog2...FormatV1.maxFrameSizeLog2).contains(fsLog2) else {
            throw FormatError(.header, "frame size 2^\(fsLog2) is outside 2^12...2^24", offset: fsOffset)
        }
        let archiveID = try r.readBytes(FormatV1.archiveIDByteCount, "archive id")
        let created = try r.readUInt64("creation time")
        let countOffset = UInt64(r.offset)
        let slotCount = Int(try r.readUInt8("slot count"))
        guard (FormatV1.minSlotCount...FormatV1.maxSlotCount).contains(slotCount) else {
            throw FormatError(.header, "slot count \(slotCount) is outside 1...32", offset: countOffset)
        }
        var slots: [KeySlot] = []
        var lastID: UInt16 = 0
        for _ in 0..<slotCount {
            let slotOffset = UInt64(r.offset)
            let type = try r.readUInt8("slot type")
            // Field order (Spec §4.1): the type byte is checked before anything that follows it.
            if type == 0 { throw FormatError(.header, "slot type 0 is invalid", offset: slotOffset) }
            let slotFlags = try r.readUInt8("slot flags")
            if slotFlags != 0 { throw FormatError(.header, "reserved slot flags are set", offset: slotOffset + 1) }
            let id = try r.readUInt16("slot id")
            if id <= lastID {
                throw FormatError(
                    .header,
                    "slot ids must be non-zero and strictly increasing (found \(id) after \(lastID))",
                    offset: slotOffset + 2
                )
            }
            lastID = id
            let created = try r.readUInt64("slot creation time")
            let labelLength = Int(try r.readUInt8("slot label length"))
            if labelLength > FormatV1.maxLabelByteCount {
                throw FormatError(
                    .header,
                    "slot label of \(labelLength) bytes exceeds \(FormatV1.maxLabelByteCount)",
                    offset: slotOffset + 12
                )
            }
            let label = try r.readUTF8(labelLength, "slot label", errorClass: .header)
            let bodyOffset = UInt64(r.offset)
            let bodyLength = Int(try r.readUInt16("slot body length"))
            let body: KeySlot.Body
            switch KeySlotType(rawValue: type) {
            case .password, .recovery:
                if bodyLength != KeySlot.passwordBodyByteCount {
                    throw FormatError(
                        .header,
                        "password slot body is \(bodyLength) bytes, expected \(KeySlot.passwordBodyByteCount)",
                        offset: bodyOffset
                    )
                }
                let ops = try r.readUInt32("opslimit")
                let mem = try r.readUInt32("memlimit")
                let par = try r.readUInt8("parallelism")
                if ops < FormatV1.minOpsLimit || mem < FormatV1.minMemLimitKiB {
                    throw FormatError(
                        .header,
                        "Argon2id parameters below the minimum (opslimit \(ops), memlimit \(mem) KiB)",
                        offset: bodyOffset + 2
                    )
                }
                if par != 1 {
                    throw FormatError(
                        .header,
                        "Argon2id parallelism \(par) is not supported (must be 1)",
                        offset: bodyOffset + 10
                    )
                }
                let salt = try r.readBytes(KeySlot.saltByteCount, "salt")
                let nonce = try r.readBytes(KeySlot.wrapNonceByteCount, "wrap nonce")
                let wrapped = try r.readBytes(KeySlot.wrappedKeyByteCount, "wrapped key")
                body = .password(
                    kdf: KDFParameters(opsLimit: ops, memLimitKiB: mem, parallelism: par),
                    salt: salt,
                    nonce: nonce,
                    wrappedKey: wrapped
                )
            case .x25519:
                if bodyLength != KeySlot.x25519BodyByteCount {
                    throw FormatError(
                        .header,
                        "X25519 slot body is \(bodyLength) bytes, expected \(KeySlot.x25519BodyByteCount)",
                        offset: bodyOffset
                    )
                }
                let recipient = try r.readBytes(32, "recipient public key")
                let ephemeral = try r.readBytes(32, "ephemeral public key")
                let nonce = try r.readBytes(KeySlot.wrapNonceByteCount, "wrap nonce")
                let wrapped = try r.readBytes(KeySlot.wrappedKeyByteCount, "wrapped key")
                body = .x25519(recipient: recipient, ephemeral: ephemeral, nonce: nonce, wrappedKey: wrapped)
            case nil:
                body = .unknown(type: type, body: try r.readBytes(bodyLength, "slot body"))
            }
            slots.append(
                KeySlot(
                    id: id,
                    createdUnix: created,
                    label: label,
                    body: body,
                    isRecovery: type == KeySlotType.recovery.rawValue
                )
            )
        }
        var base: BaseRecord?
        if features.contains(.chained) {
            if r.remaining != BaseRecord.byteCount {
                throw FormatError(
                    .header,
                    "the key slots must end \(BaseRecord.byteCount) bytes before the header MAC, where the base record "
                        + "of a chained archive sits; \(r.remaining) bytes are left",
                    offset: UInt64(r.offset)
                )
            }
            base = try BaseRecord.read(&r, ownArchiveID: archiveID)
        }
        try r.expectEnd("the last key slot", errorClass: .header)
        let mac = Array(bytes[(length - FormatV1.headerMACByteCount)..<length])
        return ArchiveHeader(
            features: features,
            cipherSuite: suite,
            frameSizeLog2: fsLog2,
            archiveID: archiveID,
            createdUnix: created,
            slots: slots,
            base: base,
            mac: mac
        )
    }

    /// "feature bits 0 (shuffle) and 1 (chained)", for the message of an unknown bit.
    private static var implementedDescription: String {
        let bits = (0..<16).filter { FormatFeatures.implemented.rawValue & (1 << $0) != 0 }
            .map { "\($0) (\(FormatFeatures.name(ofBit: $0)))" }
        let list = bits.count <= 1 ? bits.joined() : bits.dropLast().joined(separator: ", ") + " and " + bits.last!
        return bits.count == 1 ? "feature bit \(list) only" : "feature bits \(list)"
    }
}
