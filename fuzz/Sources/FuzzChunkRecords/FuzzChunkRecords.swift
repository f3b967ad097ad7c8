// libFuzzer entry point for the "chunkrecords" target (fuzz/README.md). Run with: fuzz/run chunkrecords SECONDS
import SealbakTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChunkRecords(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run("chunkrecords", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
