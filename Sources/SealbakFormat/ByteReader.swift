/// A cursor over bytes that reads little-endian integers and length-prefixed fields.
///
/// Modelled on NIO's `ByteBuffer` reading API, but every read that runs out of bytes throws a `FormatError`
/// of the class given at construction, carrying the offset at which the read started.
package struct ByteReader {
    package let bytes: [UInt8]
    package private(set) var offset: Int
    package let end: Int
    private let shortClass: FormatError.Class

    /// - Parameters:
    ///   - bytes: the whole buffer.
    ///   - errorClass: class used for reads past the end (usually the class of the structure parsed).
    package init(_ bytes: [UInt8], range: Range<Int>? = nil, errorClass: FormatError.Class) {
        self.bytes = bytes
        let r = range ?? 0..<bytes.count
        self.offset = r.lowerBound
        self.end = r.upperBound
        self.shortClass = errorClass
    }

    package var remaining: Int { end - offset }
    package var isAtEnd: Bool { offset == end }

    private func need(_ n: Int, _ what: String) throws(FormatError) {
        if n < 0 || n > remaining {
            throw FormatError(shortClass, "\(what): needs \(n) bytes, only \(remaining) left", offset: UInt64(offset))
        }
    }

    package mutating func readUInt8(_ what: String) throws(FormatError) -> UInt8 {
        try need(1, what)
        defer { offset += 1 }
        return bytes[offset]
    }

    package mutating func readUInt16(_ what: String) throws(FormatError) -> UInt16 {
        UInt16(truncatingIfNeeded: try readLE(2, what))
    }

    package mutating func readUInt32(_ what: String) throws(FormatError) -> UInt32 {
        UInt32(truncatingIfNeeded: try readLE(4, what))
    }

    package mutating func readUInt64(_ what: String) throws(FormatError) -> UInt64 {
        try readLE(8, what)
    }

    package mutating func readInt64(_ what: String) throws(FormatError) -> Int64 {
        Int64(bitPattern: try readLE(8, what))
    }

    private mutating func readLE(_ n: Int, _ what: String) throws(FormatError) -> UInt64 {
        try need(n, what)
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += n
        return v
    }

    package mutating func readBytes(_ n: Int, _ what: String) throws(FormatError) -> [UInt8] {
        try need(n, what)
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    /// Reads `n` bytes that must be valid UTF-8.
    package mutating func readUTF8(
        _ n: Int,
        _ what: String,
        errorClass: FormatError.Class
    ) throws(FormatError) -> String {
        let start = offset
        let raw = try readBytes(n, what)
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw FormatError(errorClass, "\(what) is not valid UTF-8", offset: UInt64(start))
        }
        return s
    }

    /// Throws unless every byte has been consumed (Spec §2: trailing bytes are rejected).
    package func expectEnd(_ what: String, errorClass: FormatError.Class) throws(FormatError) {
        if !isAtEnd {
            throw FormatError(
                errorClass,
                "\(remaining) unexpected trailing bytes after \(what)",
                offset: UInt64(offset)
            )
        }
    }
}

/// Appends little-endian integers and byte strings (Spec §2).
package struct ByteWriter {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    package mutating func write(_ v: UInt8) { bytes.append(v) }
    package mutating func write(_ v: UInt16) { writeLE(UInt64(v), 2) }
    package mutating func write(_ v: UInt32) { writeLE(UInt64(v), 4) }
    package mutating func write(_ v: UInt64) { writeLE(v, 8) }
    package mutating func write(_ v: Int64) { writeLE(UInt64(bitPattern: v), 8) }
    package mutating func write(bytes b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }
    package mutating func write(utf8 s: String) { bytes.append(contentsOf: Array(s.utf8)) }

    private mutating func writeLE(_ v: UInt64, _ n: Int) {
        for i in 0..<n { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
}

extension Array where Element == UInt8 {
    /// Little-endian encoding helpers used for nonces and associated data.
    package static func le(_ v: UInt64, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }
    }
}
