/// Byte order of names: the order the manifest sorts entries in, and the one every listing and plan uses. Compared
/// on the UTF-8 bytes in place; `Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))` made two arrays per
/// comparison, which sorting 8,000 names paid 200,000 times.
extension String {
    /// Whether this string's UTF-8 bytes sort before `other`'s.
    package func utf8Precedes(_ other: String) -> Bool {
        var a = self
        var b = other
        return a.withUTF8 { x in b.withUTF8 { y in precedes(x, y) } }
    }
}

extension Array where Element == UInt8 {
    /// Whether these bytes sort before `other` (a proper prefix sorts first).
    package func bytesPrecede(_ other: [UInt8]) -> Bool {
        withUnsafeBufferPointer { x in other.withUnsafeBufferPointer { y in precedes(x, y) } }
    }
}

private func precedes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    let n = Swift.min(x.count, y.count)
    var i = 0
    while i < n {
        if x[i] != y[i] { return x[i] < y[i] }
        i += 1
    }
    return x.count < y.count
}
