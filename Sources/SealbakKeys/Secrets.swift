import SealbakCrypto
import SealbakIO

#if canImport(Glibc)
import Glibc
#endif

/// Where a password comes from (docs/usage.md "Passwords"). Never from argv.
package enum PasswordSource: Sendable {
    case file(String)
    case fd(Int32)
    case environment(String)
    /// `sh -c COMMAND`; the first line of its standard output (a password manager: `pass show backup`).
    case command(String)
    /// The terminal, without echo. `alternatives` names the other sources, for the message when there is no terminal.
    case prompt(
        confirm: Bool,
        alternatives: String =
            "--password-file FILE, --password-fd N, --password-command CMD, SEALBAK_PASSWORD_FILE or SEALBAK_PASSWORD"
    )

    /// Whether a wrong password can be asked for again (only a person at a terminal can give another one).
    package var isPrompt: Bool { if case .prompt = self { true } else { false } }
}

package enum PasswordReader {
    static let maxLength = 4096

    /// Reads the password into guarded memory. Only the first line counts; a trailing "\n" or "\r\n" is dropped.
    package static func read(_ source: PasswordSource, what: String = "password") throws(SealbakError) -> Passphrase {
        switch source {
        case .file(let path):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw SealbakError.io("cannot open the password file", path: path, errno: errno) }
            defer { close(fd) }
            return try readLine(fd: fd, name: path)
        case .fd(let n):
            return try readLine(fd: n, name: "file descriptor \(n)")
        case .environment(let name):
            guard let p = getenv(name) else { throw SealbakError(.usage, "\(name) is not set") }
            let n = strlen(p)
            if n == 0 { throw SealbakError(.usage, "\(name) is empty; an empty password is not allowed") }
            return Passphrase(
                SecureBytes(count: n) { buf in buf.copyMemory(from: UnsafeRawBufferPointer(start: p, count: n)) }
            )
        case .command(let command):
            return try fromCommand(command, what: what)
        case .prompt(let confirm, let alternatives):
            let tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
            if tty < 0 {
                throw SealbakError(.usage, "no \(what) given and no terminal to ask on; use \(alternatives)")
            }
            defer { close(tty) }
            let first = try prompt(tty: tty, text: "Enter \(what): ")
            if confirm {
                let second = try prompt(tty: tty, text: "Repeat \(what): ")
                if !first.bytes.isEqual(to: second.bytes) {
                    throw SealbakError(.usage, "the two \(what)s differ; nothing was written")
                }
            }
            return first
        }
    }

    private static func prompt(tty: Int32, text: String) throws(SealbakError) -> Passphrase {
        var old = termios()
        let haveTermios = tcgetattr(tty, &old) == 0
        var restoreToken: Int?
        if haveTermios {
            // Ctrl-C at the prompt ends the process from the interrupt handler, past this function's `defer`: the
            // handler must give the terminal its echo back too, or the user's shell is left typing blind.
            let saved = old
            restoreToken = Interrupts.register {
                var t = saved
                tcsetattr(tty, TCSAFLUSH, &t)
                _ = write(tty, "\n", 1)
            }
            var quiet = old
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(tty, TCSAFLUSH, &quiet)
        }
        // Asked only once echo is off: what is typed after the prompt appears is never shown.
        _ = text.withCString { write(tty, $0, strlen($0)) }
        defer {
            if haveTermios { tcsetattr(tty, TCSAFLUSH, &old) }
            restoreToken.map(Interrupts.unregister)
            _ = write(tty, "\n", 1)
        }
        return try readLine(fd: tty, name: "the terminal")
    }

    /// Runs `sh -c command` with the terminal and environment of sealbak, reads the first line of its output into
    /// guarded memory, and requires it to exit 0. Its standard error passes through (a password manager's messages).
    private static func fromCommand(_ command: String, what: String) throws(SealbakError) -> Passphrase {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 {
            throw SealbakError.io("cannot create a pipe for the password command", path: "pipe", errno: errno)
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // dup2 onto 1 clears it for the child's stdout
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = ["/bin/sh", "-c", command].map { (w: String) in strdup(w) } + [nil]
        defer { for p in argv { free(p) } }
        let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, environ)
        close(fds[1])
        if rc != 0 {
            close(fds[0])
            throw SealbakError(
                .unavailable,
                "cannot start the \(what) command (/bin/sh): \(String(cString: strerror(rc)))"
            )
        }
        let child = pid
        let token = Interrupts.register { kill(child, SIGTERM) }
        defer { Interrupts.unregister(token) }
        let result: Result<Passphrase, SealbakError>
        do throws(SealbakError) {
            result = .success(try readLine(fd: fds[0], name: "the \(what) command"))
        } catch {
            result = .failure(error)
        }
        // The rest of its output (a password manager may print more lines) is read and dropped, so the command is not
        // killed by SIGPIPE half way; past 1 MiB it is cut off.
        var drained = 0
        var sink = [UInt8](repeating: 0, count: 4096)
        while drained < 1 << 20 {
            let n = Glibc.read(fds[0], &sink, sink.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            drained += n
        }
        wipe(&sink)  // the extra lines may hold secrets too (a username, a URL)
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        if !exited || code != 0 {
            let how = exited ? "exited with status \(code)" : "was killed by signal \(status & 0x7f)"
            throw SealbakError(
                .unavailable,
                "the \(what) command \(how); nothing was read from it. Run it yourself to see why"
            )
        }
        return try result.get()
    }

    /// Reads one line byte by byte (so nothing past the newline is consumed from a shared descriptor).
    private static func readLine(fd: Int32, name: String) throws(SealbakError) -> Passphrase {
        var length = 0
        let buffer = try SecureBytes(count: maxLength) { buf throws(SealbakError) in
            var byte: UInt8 = 0
            defer { byte = 0 }
            while length < maxLength {
                let n = Glibc.read(fd, &byte, 1)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SealbakError.io("cannot read the password from", path: name, errno: errno)
                }
                if n == 0 || byte == 0x0A { break }
                buf[length] = byte
                length += 1
            }
            if length == maxLength {
                throw SealbakError(.usage, "the password from \(name) is longer than \(maxLength) bytes")
            }
            if length > 0 && buf[length - 1] == 0x0D { length -= 1 }
        }
        if length == 0 {
            throw SealbakError(.usage, "the password from \(name) is empty; an empty password is not allowed")
        }
        let exact = buffer.withUnsafeBytes { src in
            SecureBytes(count: length) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<length])) }
        }
        return Passphrase(exact)
    }
}
