// libFuzzer entry point for the "reader" target (fuzz/README.md). Build and run with: fuzz/run reader SECONDS
import SealbakTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run("reader", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
