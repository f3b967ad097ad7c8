// libFuzzer entry point for the "manifest" target (fuzz/README.md). Build and run with: fuzz/run manifest SECONDS
import SealbakTestSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTargets.run("manifest", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
