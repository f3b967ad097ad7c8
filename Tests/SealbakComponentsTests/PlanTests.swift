import Foundation
import SealbakComponents
import Testing

@Suite struct PlanTests {
    @Test func theAnnotatedExampleParses() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("docs/sealbak.example.yaml").path
        let plan = try BackupPlan.load(example)
        #expect(
            plan.components.map(\.name) == [
                "main-db", "knowledge-base", "app-config", "embeddings", "vector-store", "app-db", "cache", "wordpress",
            ]
        )
        #expect(
            plan.components.map(\.kind) == [.postgres, .docs, .config, .vectors, .chroma, .sqlite, .command, .mysql]
        )
        #expect(
            plan.components[7].sqlChecks.count == 1
                && plan.components[7].restoreURL == "mysql://wp@127.0.0.1:3306/wordpress"
        )
        #expect(
            plan.components[6].dump?.argv == ["redis-cli", "-p", "6379", "--rdb", "-"]
                && plan.components[6].dump?.timeoutSeconds == 900
        )
        #expect(plan.components[6].restoreCommand?.argv.first == "sh" && plan.components[6].check != nil)
        #expect(
            plan.hooks.beforePack.map(\.argv) == [["/bin/sh", "-c", "systemctl stop ragapp-worker"]]
                && plan.hooks.afterRestore.map(\.argv) == [["systemctl", "start", "ragapp"]]
        )
        #expect(plan.healthCheck?.url == "http://127.0.0.1:8080/healthz" && plan.healthCheck?.retries == 10)
        #expect(
            plan.components[0].sqlChecks.count == 1
                && plan.components[1].commandChecks.map(\.argv) == [["test", "-f", "index.md"]]
        )
        #expect(plan.app["name"] == "ragapp")
        #expect(
            plan.operations.location == "/var/backups/ragapp" && plan.operations.verify
                && plan.operations.retention?.daily == 14 && plan.operations.notify.count == 2
                && plan.operations.maxAge?.seconds == 26 * 3600
        )
        #expect(
            plan.components[1].exclude == ["*.tmp", "drafts/"]
                && plan.components[1].path?.hasSuffix("/docs/docs") == true
        )
        #expect(plan.compression == "zstd" && plan.level == 3 && plan.kdfMemory == 256)
        #expect(plan.components[0].restoreURL == "postgresql://app@127.0.0.1:5432/app")
        #expect(
            plan.components[5].sqlChecks == [
                SQLCheck(sql: "select count(*) from pragma_foreign_key_check", expect: "0")
            ] && plan.components[5].path?.hasSuffix("/docs/data/app.db") == true
        )
    }

    @Test(arguments: [
        (
            "components:\n  - name: a\n    kind: docs\n    pth: ./x\n",
            "p.yaml:4: unknown key \"pth\" for a docs component (expected one of: name, kind, path, exclude, "
                + "include, default-excludes, allow-missing, restore, checks)"
        ),
        (
            "components:\n  - name: a\n    kind: mongo\n    path: x\n",
            "p.yaml:3: unknown kind \"mongo\" (expected one of: postgres, mysql, docs, config, vectors, chroma, "
                + "qdrant, command, sqlite)"
        ),
        ("components:\n  - name: a\n    kind: docs\n", "p.yaml:2: the docs component a has no path:"),
        (
            "components:\n  - name: a\n    kind: postgres\n    url: postgresql://h/db\n    allow-missing: maybe\n",
            "p.yaml:5: allow-missing must be true or false"
        ),
        (
            "components:\n  - {name: a, kind: docs, path: x}\n  - {name: a, kind: config, path: y}\n",
            "p.yaml:3: two components are named a"
        ),
        (
            "compnents: []\n",
            "p.yaml:1: unknown key \"compnents\" (expected one of: version, app, components, pack, pg-bin, s3, "
                + "hooks, health-check, destination, state-dir, retention, notify, status, password-file, identity)"
        ),
        (
            "pack:\n  level: 42\ncomponents:\n  - {name: a, kind: docs, path: x}\n",
            "p.yaml:2: level must be a whole number in 1...19"
        ),
        (
            "pack:\n  cipher: rot13\ncomponents:\n  - {name: a, kind: docs, path: x}\n",
            "p.yaml:2: cipher must be xchacha20-poly1305 or aes-256-gcm"
        ),
        (
            "components:\n  - name: a/b\n    kind: docs\n    path: x\n",
            "p.yaml:2: name: \"a/b\" cannot name a component; give NAME=PATH with a NAME without /"
        ),
        (
            "components:\n  - name: a\n    kind: docs\n    path: x\n    restore: {url: y}\n",
            "p.yaml:5: unknown key \"restore.url\" for a docs component (expected restore.path)"
        ),
        (
            "s3:\n  addressing: sideways\ncomponents:\n  - {name: a, kind: docs, path: x}\n",
            "p.yaml:2: addressing must be path or virtual"
        ),
        (
            "s3:\n  secret-access-key: abc\ncomponents:\n  - {name: a, kind: docs, path: x}\n",
            "p.yaml:2: credentials do not belong in the plan: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                + "--s3-credentials-file"
        ),
        (
            "s3:\n  endpoint: ftp://x\ncomponents:\n  - {name: a, kind: docs, path: x}\n",
            "p.yaml:2: endpoint must be an http:// or https:// URL"
        ),
        (
            "components: [\n",
            "p.yaml:2:1: did not find expected node content while parsing a flow node (the plan is not valid YAML)"
        ),
    ])
    func badPlansAreReportedWithFileAndLine(_ text: String, _ expected: String) {
        do {
            _ = try BackupPlan.parse(text, file: "p.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.message == expected)
        }
    }

    @Test func theRecordedPlanHoldsNoPassword() throws {
        let plan = try BackupPlan.parse(
            "components:\n  - {name: db, kind: postgres, url: \"postgresql://app:s3cret-pw@db/app\"}\n",
            file: "p.yaml"
        )
        #expect(!plan.recorded.contains("s3cret-pw") && plan.recorded.contains("app@db"))
        #expect(BackupPlan.withoutPassword("host=db password=xyz user=a") == "host=db user=a")
    }
}
