import Foundation
import SealbakIO
import SealbakPostgres
import SealbakSync

/// A command from a plan (hooks, checks, the `command` kind): an argument vector run without a shell, or a
/// shell line when the plan asks for one (`shell: "…"`). Runs with a timeout; its standard error is kept
/// (the last 64 KiB) for messages and logs.
package struct CommandSpec: Sendable, Equatable {
    package var argv: [String]
    package var timeoutSeconds: Double
    /// Extra environment variables.
    package var environment: [String: String] = [:]

    package init(argv: [String], timeoutSeconds: Double = 600, environment: [String: String] = [:]) {
        self.argv = argv
        self.timeoutSeconds = timeoutSeconds
        self.environment = environment
    }

    /// `sh -c LINE`.
    package init(shell line: String, timeoutSeconds: Double = 600) {
        self.init(argv: ["/bin/sh", "-c", line], timeoutSeconds: timeoutSeconds)
    }

    /// For messages: the command line, arguments with spaces quoted.
    package var display: String {
        argv.map { $0.contains(" ") || $0.isEmpty ? "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" : $0 }
            .joined(separator: " ")
    }

    /// The executable: a path, or looked up in PATH.
    package func executable() throws(SealbakError) -> String {
        guard let first = argv.first, !first.isEmpty else { throw SealbakError(.usage, "an empty command") }
        if first.contains("/") { return first }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        {
            let p = String(dir) + "/" + first
            if access(p, X_OK) == 0 { return p }
        }
        throw SealbakError(
            .unavailable,
            "\(first) (from \(display)) is not found in PATH; give its full path in the plan"
        )
    }

    /// Starts the command in a process group of its own, so that a timeout ends whatever it started too;
    /// `workingDirectory` through `sh -c 'cd DIR && exec …'` (posix_spawn has no portable chdir).
    package func start(
        workingDirectory: String? = nil,
        environment extra: [String: String] = [:],
        stdin: Subprocess.Input,
        stdout: Subprocess.Output
    ) throws(SealbakError) -> RunningCommand {
        let exe = try executable()
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        for (k, v) in extra { env[k] = v }
        let p: Subprocess
        if let workingDirectory {
            p = try Subprocess(
                executable: "/bin/sh",
                arguments: ["-c", "cd -- \"$1\" && shift && exec \"$@\"", "sh", workingDirectory, exe]
                    + argv.dropFirst(),
                environment: env,
                stdin: stdin,
                stdout: stdout,
                processGroup: true
            )
        } else {
            p = try Subprocess(
                executable: exe,
                arguments: Array(argv.dropFirst()),
                environment: env,
                stdin: stdin,
                stdout: stdout,
                processGroup: true
            )
        }
        return RunningCommand(p, timeout: timeoutSeconds, display: display)
    }

    /// Runs the command to its end (or its timeout), feeding `input` on standard input when given.
    package func run(
        workingDirectory: String? = nil,
        environment: [String: String] = [:],
        input: [UInt8]?,
        what: String
    ) throws(SealbakError) -> CommandResult {
        let c = try start(
            workingDirectory: workingDirectory,
            environment: environment,
            stdin: input == nil ? .null : .pipe,
            stdout: .pipe
        )
        do {
            if let input {
                _ = try c.process.writeInput(input.span.bytes)
                c.process.closeStdin()
            }
            var buf = [UInt8](repeating: 0, count: 16384)
            while try fillBytes(&buf, { (out) throws(SealbakError) in try c.process.readOutput(into: &out) }) > 0 {}
        } catch {
            c.kill()
            _ = c.finish()
            throw error
        }
        return c.finish()
    }
}

/// What a finished command did.
package struct CommandResult: Sendable {
    package var status: Subprocess.Status
    package var timedOut: Bool
    /// Standard error, trimmed (at most the last 64 KiB).
    package var errorText: String
}

/// A started command with its timeout watchdog.
package final class RunningCommand: Sendable {
    package let process: Subprocess
    package let display: String
    /// Shared with the watchdog thread.
    private let state = Locked<(timedOut: Bool, done: Bool)>((false, false))
    private let interruptToken = Locked<Int?>(nil)

    init(_ p: Subprocess, timeout: Double, display: String) {
        process = p
        self.display = display
        // The command has a process group of its own (see `start`), so a Ctrl-C no longer reaches it: end it here.
        interruptToken.withLock { $0 = Interrupts.register { p.kill() } }
        guard timeout > 0 else { return }
        Thread.detachNewThread { [weak self] in
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                usleep(50_000)
                guard let self, !self.state.current.done else { return }
            }
            guard let self else { return }
            let fire = self.state.withLock { s -> Bool in
                if !s.done { s.timedOut = true }
                return s.timedOut
            }
            if fire { self.process.kill() }
        }
    }

    package var timedOut: Bool { state.current.timedOut }

    /// Waits for the end; returns the status and standard error.
    package func finish() -> CommandResult {
        let s = process.wait()
        state.withLock { $0.done = true }
        if let token = interruptToken.withLock({ t -> Int? in
            defer { t = nil }
            return t
        }) {
            Interrupts.unregister(token)
        }
        return CommandResult(status: s, timedOut: timedOut, errorText: process.errorOutput)
    }

    package func kill() { process.kill() }
}
