// libFuzzer entry point for the "chunkindex" target (fuzz/README.md). Build and run with: fuzz/run chunkindex SECONDS
import SealbakTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChunkIndex(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run("chunkindex", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
