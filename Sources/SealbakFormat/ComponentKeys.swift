/// The metadata keys of Spec/COMPONENTS.md, defined once (the component engine adds the kind-independent
/// ones in SealbakComponents; each kind's own keys sit next to these).
package enum ComponentKeys {
    package static let kind = "component"
    package static let name = "component.name"
    package static let status = "component.status"
    package static let reason = "component.reason"
    package static let source = "component.source"

    package static let pgDatabase = "postgres.database"
    package static let pgServerVersion = "postgres.server-version"
    package static let pgEncoding = "postgres.encoding"
    package static let pgDumpTool = "postgres.pg-dump"
    package static let pgFormat = "postgres.format"
    package static let pgTables = "postgres.tables"
    package static let pgRows = "postgres.rows"
    package static let pgLargeObjects = "postgres.large-objects"
    package static let pgExtensions = "postgres.extensions"
    package static let pgVectorColumns = "postgres.vector-columns"
    /// The complete facts as JSON, split over `postgres.facts`, `postgres.facts.2`, … when over 1 MiB.
    package static let pgFacts = "postgres.facts"
}
