// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "sealbak",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sealbak", targets: ["SealbakCLI"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"]), .brew(["libsodium"])]
        ),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // OpenSSL's libcrypto, for SHA-256 only (SHA-NI accelerated).
        .systemLibrary(
            name: "COpenSSLCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl"])]
        ),
        // libpq, PostgreSQL's client library (connections, queries, snapshots; pg_dump/pg_restore do the data).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        // SQLite, for the online backup of a Chroma store's chroma.sqlite3 and its collection counts.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        // MariaDB Connector/C, the MySQL/MariaDB client library (facts, counts, staging and swap; the dump tools do the
        // data).
        .systemLibrary(
            name: "CMariaDB",
            pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"]), .brew(["mariadb-connector-c"])]
        ),
        // Tiny C shims for libc functions Swift cannot import (syncfs).
        .target(name: "CSealbakShims"),
        // libcurl, the HTTP client for object storage (TLS, proxies, keep-alive), behind non-variadic wrappers.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),

        // The one lock idiom (`Locked`), shared by every target that keeps state across threads.
        .target(name: "SealbakSync", swiftSettings: strict),
        // Pure Swift: byte layouts of Spec/FORMAT.md (and the metadata keys of Spec/COMPONENTS.md), no C, no
        // Foundation,
        // no I/O (fuzzable alone).
        .target(name: "SealbakFormat", swiftSettings: strict),
        // libsodium: AEADs, Argon2id, KDF, MAC, SHA-256, wiped key memory.
        .target(
            name: "SealbakCrypto",
            dependencies: ["SealbakSync", "CSodium", "COpenSSLCrypto"],
            swiftSettings: strict
        ),
        // zstd and zlib, one frame at a time, bounded output.
        .target(name: "SealbakCompression", dependencies: ["CZstd", "CZlib"], swiftSettings: strict),
        // Local I/O and the process around it: SealbakError, interrupts and fault points, archive inputs (one protocol,
        // one type per backend) and atomic output, tree walking for pack, staged extraction; remote storage is passed
        // in.
        .target(
            name: "SealbakIO",
            dependencies: ["SealbakSync", "SealbakFormat", "CSealbakShims"],
            swiftSettings: strict
        ),
        // Keys: master key and password slots, X25519 recipients and identity files, recovery codes, password sources.
        .target(
            name: "SealbakKeys",
            dependencies: ["SealbakFormat", "SealbakCrypto", "SealbakIO"],
            swiftSettings: strict
        ),
        // The codec: streaming writer/reader, parallel frame pipeline, one frame walker, verification, rekey, key
        // editing.
        .target(
            name: "SealbakArchive",
            dependencies: [
                "SealbakFormat", "SealbakCrypto", "SealbakCompression", "SealbakIO", "SealbakKeys", "SealbakSync",
                "CSealbakShims",
            ],
            swiftSettings: strict
        ),
        // PostgreSQL component: consistent pg_dump into an entry, verified restore into a live server.
        .target(
            name: "SealbakPostgres",
            dependencies: ["SealbakSync", "SealbakIO", "SealbakCrypto", "SealbakFormat", "CLibPQ", "CSealbakShims"],
            swiftSettings: strict
        ),
        // MySQL/MariaDB component: mariadb-dump with rows counted in the stream, verified restore and table swap.
        // (Reuses SealbakPostgres's Subprocess for the tools.)
        .target(
            name: "SealbakMySQL",
            dependencies: ["SealbakIO", "SealbakCrypto", "SealbakFormat", "SealbakPostgres", "CMariaDB"],
            swiftSettings: strict
        ),
        // The other components: docs trees with ignore rules, configs, vector files, vector stores.
        .target(
            name: "SealbakComponents",
            dependencies: [
                "SealbakSync", "SealbakArchive", "SealbakIO", "SealbakFormat", "SealbakPostgres", "SealbakMySQL",
                "SealbakS3", "CSealbakShims", "CSQLite", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        // S3-compatible object storage: SigV4, streaming multipart upload, ranged reads, retries, retention.
        .target(
            name: "SealbakS3",
            dependencies: ["SealbakSync", "SealbakArchive", "SealbakIO", "SealbakCrypto", "SealbakFormat", "CCurl"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "SealbakCLI",
            dependencies: [
                "SealbakSync", "SealbakArchive", "SealbakIO", "SealbakKeys", "SealbakPostgres", "SealbakComponents",
                "SealbakS3", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Test vectors, archive builders and corruption helpers shared by tests, the vector generator and fuzzers.
        .target(
            name: "SealbakTestSupport",
            dependencies: ["SealbakSync", "SealbakArchive", "SealbakIO", "SealbakKeys"],
            swiftSettings: strict
        ),
        // Regenerates Spec/vectors deterministically (scripts/gen-vectors).
        .executableTarget(
            name: "SealbakVectorGen",
            dependencies: ["SealbakTestSupport", "SealbakIO", "SealbakKeys"],
            swiftSettings: strict
        ),

        // libFuzzer targets (fuzz/run builds them with the fuzzer and AddressSanitizer; a plain build makes inert
        // executables).
        .executableTarget(name: "FuzzHeader", dependencies: ["SealbakTestSupport"], path: "fuzz/Sources/FuzzHeader"),
        .executableTarget(
            name: "FuzzManifest",
            dependencies: ["SealbakTestSupport"],
            path: "fuzz/Sources/FuzzManifest"
        ),
        .executableTarget(name: "FuzzTrailer", dependencies: ["SealbakTestSupport"], path: "fuzz/Sources/FuzzTrailer"),
        .executableTarget(name: "FuzzFrame", dependencies: ["SealbakTestSupport"], path: "fuzz/Sources/FuzzFrame"),
        .executableTarget(name: "FuzzReader", dependencies: ["SealbakTestSupport"], path: "fuzz/Sources/FuzzReader"),
        .executableTarget(
            name: "FuzzRoundTrip",
            dependencies: ["SealbakTestSupport"],
            path: "fuzz/Sources/FuzzRoundTrip"
        ),
        .executableTarget(
            name: "FuzzChunkRecords",
            dependencies: ["SealbakTestSupport"],
            path: "fuzz/Sources/FuzzChunkRecords"
        ),
        .executableTarget(
            name: "FuzzChunkIndex",
            dependencies: ["SealbakTestSupport"],
            path: "fuzz/Sources/FuzzChunkIndex"
        ),

        .testTarget(name: "SealbakFormatTests", dependencies: ["SealbakFormat"], swiftSettings: strict),
        // Known-answer tests of every primitive (RFC and specification vectors) and tamper refusal of the AEADs.
        .testTarget(name: "SealbakCryptoTests", dependencies: ["SealbakCrypto", "SealbakSync"], swiftSettings: strict),
        // Frame (de)compression: bombs, windows, truncations, malformed headers.
        .testTarget(name: "SealbakCompressionTests", dependencies: ["SealbakCompression"], swiftSettings: strict),
        .testTarget(
            name: "SealbakArchiveTests",
            dependencies: ["SealbakArchive", "SealbakIO", "SealbakKeys", "SealbakTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SealbakCLITests",
            dependencies: ["SealbakArchive", "SealbakKeys", "SealbakTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SealbakComponentsTests",
            dependencies: ["SealbakComponents", "SealbakIO", "SealbakS3", "SealbakTestSupport"],
            swiftSettings: strict
        ),
        // Real PostgreSQL servers (started by scripts/pg-servers): pack, restore, failure paths.
        // SigV4 against the published vectors, retention rules, and a real SeaweedFS (scripts/s3-server).
        .testTarget(
            name: "SealbakS3Tests",
            dependencies: ["SealbakS3", "SealbakIO", "SealbakTestSupport"],
            swiftSettings: strict
        ),
        // A real MariaDB server (scripts/mysql-servers): pack, restore, swap, failure paths; the dump row counter.
        .testTarget(
            name: "SealbakMySQLTests",
            dependencies: ["SealbakMySQL", "SealbakTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SealbakPostgresTests",
            dependencies: ["SealbakArchive", "SealbakIO", "SealbakKeys", "SealbakPostgres", "SealbakTestSupport"],
            swiftSettings: strict
        ),
    ]
)
