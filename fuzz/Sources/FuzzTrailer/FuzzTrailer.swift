// libFuzzer entry point for the "trailer" target (fuzz/README.md). Build and run with: fuzz/run trailer SECONDS
import SealbakTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTrailer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run("trailer", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
