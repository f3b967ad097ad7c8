import Foundation
import SealbakCompression
import SealbakFormat
import SealbakIO

/// The zstd dictionary of an archive that declares the dictionary feature (Spec §3.4 bit 2, §7.4): trained by the
/// writer on samples of the small files it packs, kept in the encrypted archive metadata as canonical base64, and
/// used by codec-4 frames (small files and last frames, Spec §6.2), which zstd alone compresses poorly because each
/// starts without history. Document trees shrink by about a quarter with it.
package enum ArchiveDictionary {
    package static let metadataKey = "sealbak.zstd-dictionary"

    /// The dictionary `manifest` holds (an archive that declares the feature must hold one), loaded for reading.
    package static func load(from manifest: Manifest, archive: String) throws -> ZstdDictionary {
        func fail(_ why: String) -> SealbakError {
            SealbakError.format(
                FormatError(.payload, "the archive declares the dictionary feature, but \(why)"),
                archive: archive,
                context: "the manifest"
            )
        }
        guard let text = manifest.metadata[metadataKey] else { throw fail("its metadata has no \(metadataKey)") }
        guard let bytes = decode(text) else { throw fail("\(metadataKey) is not canonical base64") }
        do throws(CompressionError) {
            return try ZstdDictionary(bytes)
        } catch {
            throw fail("\(metadataKey) is not a zstd dictionary: \(error.message)")
        }
    }

    /// RFC 4648 §4 base64 with padding, no line breaks.
    package static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The bytes of canonical base64 text (the one encoding `encode` gives: padding, no other characters, zero
    /// padding bits); nil for anything else.
    package static func decode(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text) else { return nil }
        let bytes = [UInt8](data)
        return encode(bytes) == text ? bytes : nil
    }

    /// Samples of the small files among `files` to train a dictionary on (`ZstdDictionary.train(joined:sizes:)`): up
    /// to `count` files, evenly spaced, at most `perFile` bytes from the start of each, read back to back into one
    /// buffer (one allocation, returned to the system when dropped, so the pack that follows does not keep it).
    /// Files that cannot be read are skipped.
    package static func samples(
        of files: [String],
        count: Int = 2048,
        perFile: Int = 4096
    ) -> (joined: [UInt8], sizes: [Int]) {
        let picked = min(count, files.count)
        var sizes: [Int] = []
        var filled = 0
        let joined = [UInt8](unsafeUninitializedCapacity: picked * perFile) { buffer, initialized in
            for k in 0..<picked {
                let fd = open(files[k * files.count / picked], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
                guard fd >= 0 else { continue }
                let n = read(fd, buffer.baseAddress! + filled, perFile)
                close(fd)
                if n > 0 {
                    sizes.append(n)
                    filled += n
                }
            }
            initialized = filled
        }
        return (joined, sizes)
    }
}
