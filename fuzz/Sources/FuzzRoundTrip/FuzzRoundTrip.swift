// libFuzzer entry point for the "roundtrip" target (fuzz/README.md). Build and run with: fuzz/run roundtrip SECONDS
import SealbakTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRoundTrip(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run("roundtrip", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
