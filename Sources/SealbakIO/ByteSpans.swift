#if canImport(Glibc)
import Glibc
#endif

// Reading into an `OutputSpan<UInt8>`: the caller's buffer, whose free space the callee fills. It is the read side's
// counterpart of handing a sink a `RawSpan`: every byte source (archive inputs, files being packed, dumps, the
// chunk-record producer) appends to one, and appending nothing means the data ended. Pointers stay inside these
// helpers and the functions that call C.

extension OutputSpan where Element == UInt8 {
    /// Appends as many bytes of `bytes` as there is room for; returns how many.
    @discardableResult
    package mutating func appendPrefix(of bytes: Span<UInt8>) -> Int {
        let n = Swift.min(freeCapacity, bytes.count)
        if n == 0 { return 0 }
        withUnsafeMutableBufferPointer { buffer, count in
            bytes.withUnsafeBufferPointer { source in
                UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[count..<count + n]))
                    .copyMemory(
                        from: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: source[0..<n]))
                    )
            }
            count += n
        }
        return n
    }

    /// Appends `count` zero bytes, or as many as there is room for; returns how many.
    package mutating func appendZeros(upTo count: Int) -> Int {
        let n = Swift.min(freeCapacity, count)
        append(repeating: 0, count: n)
        return n
    }

    /// One `read(2)` of `fd` into the free space (at most `limit` bytes), retried on EINTR: the bytes appended, 0 at
    /// the end of the input, or -1 with `errno` set.
    package mutating func appendRead(from fd: Int32, limit: Int = .max) -> Int {
        appendSystemRead { buffer in read(fd, buffer.baseAddress, Swift.min(buffer.count, limit)) }
    }

    /// One `pread(2)` of `fd` at `offset` into the free space (at most `limit` bytes), retried on EINTR: the bytes
    /// appended, 0 at the end of the file, or -1 with `errno` set.
    package mutating func appendRead(from fd: Int32, at offset: UInt64, limit: Int = .max) -> Int {
        appendSystemRead { buffer in pread(fd, buffer.baseAddress, Swift.min(buffer.count, limit), off_t(offset)) }
    }

    private mutating func appendSystemRead(_ call: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        if freeCapacity == 0 { return 0 }
        return withUnsafeMutableBufferPointer { buffer, count in
            while true {
                let n = call(UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[count...])))
                if n < 0 && errno == EINTR { continue }
                if n > 0 { count += n }
                return n
            }
        }
    }
}

/// Fills `buffer` (a caller's array, or part of it) through `fill`, which appends to an output span over it; returns
/// the count appended.
package func fillBytes<E: Error>(
    _ buffer: inout [UInt8],
    from start: Int = 0,
    _ fill: (inout OutputSpan<UInt8>) throws(E) -> Void
) throws(E) -> Int {
    var result: Result<Int, E> = .success(0)
    buffer.withUnsafeMutableBufferPointer { b in
        let region = UnsafeMutableBufferPointer(rebasing: b[start...])
        var out = OutputSpan(buffer: region, initializedCount: 0)
        do throws(E) {
            try fill(&out)
            result = .success(out.finalize(for: region))
        } catch {
            result = .failure(error)
            _ = out.finalize(for: region)
        }
    }
    return try result.get()
}
