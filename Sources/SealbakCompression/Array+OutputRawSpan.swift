extension Array where Element == UInt8 {
    /// A new array of at most `byteCapacity` bytes, filled through an `OutputRawSpan` over its uninitialised
    /// storage: one allocation, nothing zero-filled. The array holds exactly the bytes `initializer` appended.
    ///
    /// The raw-byte sibling of the standard library's `init(capacity:initializingWith:)`, whose `OutputSpan<UInt8>`
    /// offers no raw view; the codecs (`AEAD`, `FrameCompressor`, `FrameDecompressor`) write to `OutputRawSpan`.
    package init<E: Error>(
        byteCapacity: Int,
        initializingWith initializer: (inout OutputRawSpan) throws(E) -> Void
    ) throws(E) {
        try self.init(capacity: byteCapacity) { (span: inout OutputSpan<UInt8>) throws(E) in
            try span.withUnsafeMutableBufferPointer { buffer, count throws(E) in
                let raw = UnsafeMutableRawBufferPointer(buffer)
                var output = OutputRawSpan(buffer: raw, initializedCount: 0)
                try initializer(&output)
                count = output.finalize(for: raw)
            }
        }
    }
}
