#if canImport(Glibc)
import Glibc
#endif
import SealbakCrypto

/// Where a password comes from (docs/usage.md "Passwords"). Never from argv.
package enum PasswordSource: Sendable {
    case file(String)
    case fd(Int32)
    case environment(String)
    case prompt(confirm: Bool)
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
            return Passphrase(SecureBytes(count: n) { buf in buf.copyMemory(from: UnsafeRawBufferPointer(start: p, count: n)) })
        case .prompt(let confirm):
            let tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
            if tty < 0 {
                throw SealbakError(.usage, "no \(what) given and no terminal to ask on; use --password-file FILE, --password-fd N or the SEALBAK_PASSWORD variable")
            }
            defer { close(tty) }
            let first = try prompt(tty: tty, text: "Enter \(what): ")
            if confirm {
                let second = try prompt(tty: tty, text: "Repeat \(what): ")
                if !first.bytes.isEqual(to: second.bytes) { throw SealbakError(.usage, "the two \(what)s differ; nothing was written") }
            }
            return first
        }
    }

    private static func prompt(tty: Int32, text: String) throws(SealbakError) -> Passphrase {
        _ = text.withCString { write(tty, $0, strlen($0)) }
        var old = termios()
        let haveTermios = tcgetattr(tty, &old) == 0
        if haveTermios {
            var quiet = old
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(tty, TCSAFLUSH, &quiet)
        }
        defer {
            if haveTermios { tcsetattr(tty, TCSAFLUSH, &old) }
            _ = write(tty, "\n", 1)
        }
        return try readLine(fd: tty, name: "the terminal")
    }

    /// Reads one line byte by byte (so nothing past the newline is consumed from a shared descriptor).
    private static func readLine(fd: Int32, name: String) throws(SealbakError) -> Passphrase {
        var length = 0
        var failure: SealbakError?
        let buffer = SecureBytes(count: maxLength) { buf in
            var byte: UInt8 = 0
            while length < maxLength {
                let n = Glibc.read(fd, &byte, 1)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = SealbakError.io("cannot read the password from", path: name, errno: errno)
                    return
                }
                if n == 0 || byte == 0x0A { break }
                buf[length] = byte
                length += 1
            }
            if length == maxLength { failure = SealbakError(.usage, "the password from \(name) is longer than \(maxLength) bytes") }
            if length > 0 && buf[length - 1] == 0x0D { length -= 1 }
            byte = 0
        }
        if let failure { throw failure }
        if length == 0 { throw SealbakError(.usage, "the password from \(name) is empty; an empty password is not allowed") }
        let exact = buffer.withUnsafeBytes { src in
            SecureBytes(count: length) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[0..<length])) }
        }
        return Passphrase(exact)
    }
}
