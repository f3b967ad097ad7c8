// libFuzzer entry point for the "header" target (fuzz/README.md). Build and run with: fuzz/run header SECONDS
import SealbakTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHeader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run("header", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
