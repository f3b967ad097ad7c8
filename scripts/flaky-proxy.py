#!/usr/bin/env python3
"""A small TCP proxy for tests that injects network faults between a client and a server on loopback.

    flaky-proxy.py --listen-port-file F --upstream HOST:PORT --mode MODE [--after-bytes N] [--times K]
                   [--stats-file S]

It listens on 127.0.0.1 on a free port, writes that port to F once listening (atomically: write, then rename), and
forwards each connection to HOST:PORT. Modes:

  pass           plain forwarding.
  drop-upload    the first K connections (K = -1: all) whose client->server traffic exceeds N bytes are cut as
                 soon as exactly N bytes of that direction have been forwarded upstream: both sockets are closed
                 with SO_LINGER 0, so both peers get a TCP RST. Later connections pass.
  drop-download  the same for server->client bytes (HTTP response head included).
  http-503       the first K HTTP requests (one per connection) are answered by the proxy itself with
                 "HTTP/1.1 503 Slow Down", an S3 XML SlowDown error body and "Connection: close"; the request head
                 and its Content-Length body are read first (not the body when the client sent Expect: 100-continue).
                 Later connections are forwarded untouched.

HTTP-level modes (for answers a real store will not give; the request is never altered, because it is signed).
Each request is read whole (head and Content-Length body) and sent upstream on a connection of its own; the
answer is read to its end and given back with "Connection: close". The first K matching requests get the fault:

  range-200      a GET with a Range header: the store's 206 answer is passed on as "200 OK" without its
                 Content-Range (a server that ignores Range).
  range-shift    the same, but the answer keeps 206 with a Content-Range one byte off.
  copy-empty     an UploadPartCopy (PUT with x-amz-copy-source) is answered by the proxy with 200 and a
                 CopyPartResult without an ETag; nothing is copied.
  copy-501       an UploadPartCopy is answered by the proxy with 501 NotImplemented.
  region-301     any request is answered by the proxy with 301 PermanentRedirect naming region --region (none
                 when --region is empty).
  lose-complete  a CompleteMultipartUpload (POST with uploadId) is sent upstream and its answer thrown away:
                 the client's connection is reset (a lost response).
  accept-412     an answer 412 Precondition Failed becomes 200 OK with an empty XML body (a store that accepts
                 but ignores conditional headers).
  http-pass      no fault; only the bookkeeping below.

With --match TEXT, only requests whose request line contains TEXT get a fault or are recorded.
In every HTTP-level mode, each UploadPart and UploadPartCopy is recorded in the stats file's "parts" as
[part number, bytes, 1 if a copy else 0] (the bytes of a copy from its x-amz-copy-source-range).

One line per event goes to stderr. With --stats-file, a JSON object {"connections", "drops", "http503"} is kept
there (rewritten atomically on every change). SIGTERM or SIGINT ends it. Python 3 standard library only.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                 b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")
MAX_HEAD = 64 * 1024


def log(msg):
    sys.stderr.write(f"flaky-proxy: {msg}\n")
    sys.stderr.flush()


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.connections = 0
        self.drops = 0
        self.http503 = 0
        self.faults = 0  # drops, 503s or HTTP faults given so far, checked against --times
        self.http_faults = 0
        self.parts = []
        self.write_stats()

    def write_stats(self):
        path = self.args.stats_file
        if not path:
            return
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"connections": self.connections, "drops": self.drops, "http503": self.http503,
                       "faults": self.http_faults, "parts": self.parts}, f)
        os.replace(tmp, path)

    def new_connection(self):
        with self.lock:
            self.connections += 1
            self.write_stats()
            return self.connections

    def budget_left(self):
        with self.lock:
            return self.args.times < 0 or self.faults < self.args.times

    def take_fault(self, kind):
        """Atomically takes one fault from the --times budget; False once it is spent."""
        with self.lock:
            if self.args.times >= 0 and self.faults >= self.args.times:
                return False
            self.faults += 1
            if kind == "drop":
                self.drops += 1
            elif kind == "503":
                self.http503 += 1
            else:
                self.http_faults += 1
            self.write_stats()
            return True


def set_rst(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


def wait_sent(sock, timeout=1.0):
    """Waits (bounded) until the kernel has sent what we wrote, so that a RST does not throw it away."""
    try:
        import fcntl
        import termios
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
            if left == 0:
                return
            time.sleep(0.005)
    except (ImportError, OSError, AttributeError):
        pass


def abort(*socks):
    for s in socks:
        set_rst(s)
        try:
            s.close()
        except OSError:
            pass


def close_quietly(*socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def pipe(state, cid, client, upstream, drop_dir=None):
    """Forwards both ways until both directions reach EOF. drop_dir: 'up' or 'down' to cut after --after-bytes."""
    n = state.args.after_bytes
    counts = {"up": 0, "down": 0}
    open_src = {client: "up", upstream: "down"}  # source socket -> direction it feeds
    armed = drop_dir is not None  # False once this connection is known to pass
    try:
        while open_src:
            readable, _, _ = select.select(list(open_src), [], [], 1.0)
            for src in readable:
                direction = open_src[src]
                dst = upstream if src is client else client
                try:
                    data = src.recv(65536)
                except OSError as e:
                    log(f"#{cid} {direction} read error: {e}")
                    abort(client, upstream)
                    return
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    del open_src[src]
                    continue
                if armed and direction == drop_dir and counts[direction] + len(data) > n:
                    if state.take_fault("drop"):
                        head = data[:n - counts[direction]]
                        if head:
                            dst.sendall(head)
                        counts[direction] += len(head)
                        wait_sent(dst)
                        abort(client, upstream)
                        log(f"#{cid} dropped ({'upload' if direction == 'up' else 'download'}) after "
                            f"{counts[direction]} bytes forwarded; RST to both sides")
                        return
                    armed = False
                try:
                    dst.sendall(data)
                except OSError as e:
                    log(f"#{cid} {direction} write error: {e}")
                    abort(client, upstream)
                    return
                counts[direction] += len(data)
    except (OSError, ValueError) as e:
        log(f"#{cid} error: {e}")
    finally:
        close_quietly(client, upstream)
    log(f"#{cid} closed (up {counts['up']} bytes, down {counts['down']} bytes)")


def connect_upstream(state, cid):
    host, port = state.args.upstream_addr
    try:
        return socket.create_connection((host, port), timeout=10)
    except OSError as e:
        log(f"#{cid} cannot connect upstream {host}:{port}: {e}")
        return None


def read_request_head(sock):
    """Reads until the end of the HTTP request head; returns (head, rest) or (partial, None) on EOF/error."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return buf, None
        try:
            data = sock.recv(65536)
        except OSError:
            return buf, None
        if not data:
            return buf, None
        buf += data
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]


def answer_503(state, cid, client, head, rest):
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    expect_continue = headers.get("expect", "").lower() == "100-continue"
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        length = 0
    client.settimeout(10)
    if not expect_continue:
        got = len(rest)
        while got < length:
            data = client.recv(min(65536, length - got))
            if not data:
                break
            got += len(data)
    response = (b"HTTP/1.1 503 Slow Down\r\n"
                b"Content-Type: application/xml\r\n"
                b"Content-Length: " + str(len(SLOWDOWN_BODY)).encode() + b"\r\n"
                b"Retry-After: 1\r\n"
                b"Connection: close\r\n\r\n" + SLOWDOWN_BODY)
    client.sendall(response)
    log(f"#{cid} 503 sent for {lines[0]}")
    # Half-close, then drain what the client still sends (e.g. a chunked body) so that close() does not RST.
    try:
        client.shutdown(socket.SHUT_WR)
        client.settimeout(2)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and client.recv(65536):
            pass
    except OSError:
        pass



HTTP_MODES = ["http-pass", "range-200", "range-shift", "copy-empty", "copy-501", "region-301", "lose-complete", "accept-412"]


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers


def read_exact(sock, n, first=b""):
    buf = first
    while len(buf) < n:
        data = sock.recv(min(65536, n - len(buf)))
        if not data:
            break
        buf += data
    return buf


def read_to_eof(sock):
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def simple_response(status, reason, body, extra=b""):
    return (f"HTTP/1.1 {status} {reason}\r\n".encode() + b"Content-Type: application/xml\r\n" + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def matches(mode, request_line, headers):
    method, target = (request_line.split(" ") + ["", ""])[:2]
    query = target.partition("?")[2]
    if mode in ("range-200", "range-shift"):
        return method == "GET" and "range" in headers
    if mode in ("copy-empty", "copy-501"):
        return method == "PUT" and "x-amz-copy-source" in headers
    if mode == "lose-complete":
        return method == "POST" and "uploadId=" in query
    return True


def rewrite_answer(mode, answer):
    """The upstream answer, changed as the mode says (or None: unchanged)."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    status_line, headers = parse_head(head + b"\r\n")
    parts = status_line.split(" ")
    status = parts[1] if len(parts) > 1 else ""
    lines = [l for l in head.decode("latin-1").split("\r\n")[1:] if l.lower().split(":")[0].strip() != "connection"]
    if mode == "range-200" and status == "206":
        lines = [l for l in lines if not l.lower().startswith("content-range:")]
        status_line = "HTTP/1.1 200 OK"
    elif mode == "range-shift" and status == "206" and "content-range" in headers:
        first_last, _, total = headers["content-range"].removeprefix("bytes ").partition("/")
        a, _, b = first_last.partition("-")
        lines = [l for l in lines if not l.lower().startswith("content-range:")]
        lines.append(f"Content-Range: bytes {int(a) + 1}-{int(b) + 1}/{total}")
    elif mode == "accept-412" and status == "412":
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult></CompleteMultipartUploadResult>'
        lines = [l for l in lines if not l.lower().startswith("content-length:")]
        lines.append(f"Content-Length: {len(body)}")
        status_line = "HTTP/1.1 200 OK"
    else:
        return None
    lines.append("Connection: close")
    return ("\r\n".join([status_line] + lines) + "\r\n\r\n").encode("latin-1") + body


def record_part(state, request_line, headers, length):
    method, target = (request_line.split(" ") + ["", ""])[:2]
    query = dict(p.partition("=")[::2] for p in target.partition("?")[2].split("&") if p)
    if method != "PUT" or "partNumber" not in query:
        return
    copy = "x-amz-copy-source" in headers
    if copy:
        a, _, b = headers.get("x-amz-copy-source-range", "bytes=0--1").removeprefix("bytes=").partition("-")
        length = int(b) - int(a) + 1
    with state.lock:
        state.parts.append([int(query["partNumber"]), length, 1 if copy else 0])
        state.write_stats()


def handle_http(state, cid, client):
    """One request per client connection: see the HTTP-level modes in the module doc."""
    mode = state.args.mode
    client.settimeout(30)
    head, rest = read_request_head(client)
    if rest is None:
        close_quietly(client)
        return
    request_line, headers = parse_head(head)
    body = read_exact(client, int(headers.get("content-length", "0") or 0), rest)
    selected = state.args.match in request_line
    if selected:
        record_part(state, request_line, headers, len(body))
    hit = selected and matches(mode, request_line, headers) and state.budget_left()
    if hit and mode in ("copy-empty", "copy-501", "region-301") and state.take_fault("http"):
        if mode == "copy-empty":
            answer = simple_response(200, "OK", b'<?xml version="1.0" encoding="UTF-8"?>\n<CopyPartResult><ETag></ETag></CopyPartResult>')
        elif mode == "copy-501":
            answer = simple_response(501, "Not Implemented", b"<Error><Code>NotImplemented</Code><Message>A header you provided "
                                     b"implies functionality that is not implemented</Message></Error>")
        else:
            region = state.args.region.encode()  # empty: a redirect that names no region
            answer = simple_response(301, "Moved Permanently", b"<Error><Code>PermanentRedirect</Code><Message>The bucket you are "
                                     b"attempting to access must be addressed using the specified endpoint.</Message>" +
                                     (b"<Region>" + region + b"</Region>" if region else b"") + b"</Error>",
                                     b"x-amz-bucket-region: " + region + b"\r\n" if region else b"")
        log(f"#{cid} {mode}: answered {request_line} itself")
        client.sendall(answer)
        close_quietly(client)
        return
    upstream = connect_upstream(state, cid)
    if upstream is None:
        abort(client)
        return
    lines = [l for l in head.decode("latin-1").split("\r\n")[:-2] if l.lower().split(":")[0].strip() != "connection"]
    upstream.sendall(("\r\n".join(lines + ["Connection: close"]) + "\r\n\r\n").encode("latin-1") + body)
    upstream.settimeout(120)
    answer = read_to_eof(upstream)
    close_quietly(upstream)
    if hit and mode == "lose-complete" and state.take_fault("http"):
        log(f"#{cid} lose-complete: {request_line} done upstream, answer thrown away")
        abort(client)
        return
    changed = rewrite_answer(mode, answer) if hit else None
    if changed is not None and state.take_fault("http"):
        log(f"#{cid} {mode}: answer to {request_line} rewritten")
        answer = changed
    client.sendall(answer)
    wait_sent(client)
    close_quietly(client)


def handle(state, client, addr):
    cid = state.new_connection()
    log(f"#{cid} opened from {addr[0]}:{addr[1]}")
    mode = state.args.mode
    try:
        if mode in HTTP_MODES:
            handle_http(state, cid, client)
            return
        if mode == "http-503" and state.budget_left():
            head, rest = read_request_head(client)
            if rest is None:
                log(f"#{cid} closed before a complete request head ({len(head)} bytes)")
                close_quietly(client)
                return
            if state.take_fault("503"):
                try:
                    answer_503(state, cid, client, head, rest)
                except OSError as e:
                    log(f"#{cid} error while answering 503: {e}")
                close_quietly(client)
                return
            upstream = connect_upstream(state, cid)
            if upstream is None:
                abort(client)
                return
            upstream.sendall(head + rest)
            upstream.settimeout(None)
            pipe(state, cid, client, upstream)
            return
        upstream = connect_upstream(state, cid)
        if upstream is None:
            abort(client)
            return
        upstream.settimeout(None)
        drop_dir = {"drop-upload": "up", "drop-download": "down"}.get(mode)
        if drop_dir and not state.budget_left():
            drop_dir = None
        pipe(state, cid, client, upstream, drop_dir)
    except Exception as e:  # keep the proxy alive whatever one connection does
        log(f"#{cid} error: {e!r}")
        close_quietly(client)


def main():
    p = argparse.ArgumentParser(description="TCP proxy on 127.0.0.1 that injects faults (for tests).")
    p.add_argument("--listen-port-file", required=True)
    p.add_argument("--upstream", required=True, help="HOST:PORT")
    p.add_argument("--mode", required=True, choices=["pass", "drop-upload", "drop-download", "http-503"] + HTTP_MODES)
    p.add_argument("--region", default="eu-west-1", help="the region region-301 names")
    p.add_argument("--match", default="", help="HTTP-level modes: only requests whose request line contains this")
    p.add_argument("--after-bytes", type=int, default=0, help="bytes forwarded before a drop (default 0)")
    p.add_argument("--times", type=int, default=-1, help="how many drops / 503s (default -1: no limit)")
    p.add_argument("--stats-file")
    args = p.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if not host or not port.isdigit():
        p.error("--upstream must be HOST:PORT")
    args.upstream_addr = (host.strip("[]"), int(port))
    if args.after_bytes < 0:
        p.error("--after-bytes must be >= 0")

    def stop(signum, _frame):
        log(f"signal {signum}, exiting")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    state = State(args)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    port = srv.getsockname()[1]
    tmp = f"{args.listen_port_file}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.listen_port_file)
    log(f"listening on 127.0.0.1:{port} -> {args.upstream}, mode {args.mode}, after-bytes {args.after_bytes}, "
        f"times {args.times}")
    try:
        while True:
            client, addr = srv.accept()
            threading.Thread(target=handle, args=(state, client, addr), daemon=True).start()
    finally:
        srv.close()


if __name__ == "__main__":
    main()
