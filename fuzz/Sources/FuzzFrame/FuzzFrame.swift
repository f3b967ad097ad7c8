// libFuzzer entry point for the "frame" target (fuzz/README.md). Build and run with: fuzz/run frame SECONDS
import SealbakTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run("frame", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
