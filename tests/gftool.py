#!/usr/bin/env python3
"""gftool.py - raw-socket clients and servers for the gfproxy test suite.

Every wait is bounded. Subcommands:

  raw       send stdin byte for byte, print what comes back until the peer
            closes (exit 0) or goes quiet for --idle seconds (exit 3)
  sse       GET a path, print the arrival time (ms after the head) of each
            "data:" event
  upload    send a request whose body is SIZE bytes of the /bytes pattern,
            Content-Length or chunked, optionally in timed pieces; print the
            response, the expected sha256, and the peak RSS of a process
  download  GET a path, hash the body (either framing), print length, sha256,
            the expected sha256 of the pattern, and the peak RSS of a process;
            optionally with --method, a --body FILE sent --body-after seconds
            of the response (while it comes) and announced with
            --expect-continue, and reading at most --rate B/s
  pattern-sha256 N   sha256 of the first N bytes of the /bytes pattern
  headers-backend    a tiny HTTP server with canned response heads, for the
            one thing the test peer (tests/peer) cannot do: send arbitrary response fields
  stream-backend     a tiny HTTP server that streams its answer while it is
            still reading the request body, with --gap seconds between chunks
  blackhole          a listener whose backlog is full, so connects hang
"""
import argparse
import hashlib
import os
import select
import socket
import sys
import threading
import time

PERIOD = bytes((i * 31 + 7) & 0xFF for i in range(256))
BLOCK = PERIOD * 256  # 64 KiB, starts at pattern offset 0


def pattern_chunks(n, piece=len(BLOCK)):
    """The /bytes pattern: byte i is (i * 31 + 7) & 0xff."""
    off = 0
    while off < n:
        k = min(piece, n - off, len(BLOCK))
        start = off % 256
        if start + k <= len(BLOCK):
            yield BLOCK[start:start + k]
        else:
            yield (BLOCK + BLOCK)[start:start + k]
        off += k


def pattern_sha256(n):
    h = hashlib.sha256()
    for c in pattern_chunks(n):
        h.update(c)
    return h.hexdigest()


def connect(port, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def vm_hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return -1
    return -1


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            if int(st[st.rindex(")") + 2:].split()[1]) == ppid:
                out.append(int(d))
        except (OSError, ValueError):
            pass
    return out


def rchar(pid):
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler:
    """Peak VmHWM of the children of an activator, sampled while we work."""

    def __init__(self, ssa):
        self.ssa = ssa
        self.peak = -1
        self.last = 0.0

    def sample(self, force=False):
        if not self.ssa:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.05:
            return
        self.last = now
        for pid in children(self.ssa):
            self.peak = max(self.peak, vm_hwm_kb(pid))


class Reader:
    """Buffered reads with an overall deadline, at most rate bytes/s if given."""

    def __init__(self, sock, deadline, sampler=None, rate=0):
        self.s = sock
        self.buf = b""
        self.deadline = deadline
        self.sampler = sampler
        self.rate = rate

    def more(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.s.settimeout(min(left, 0.2) if self.sampler else left)
        try:
            d = self.s.recv(16384 if self.rate else 1 << 20)
        except socket.timeout:
            if self.sampler:
                self.sampler.sample()
                return True
            raise
        if self.sampler:
            self.sampler.sample()
        if not d:
            return False
        self.buf += d
        if self.rate:
            # Small reads, evenly spaced: the sender's writes wait a little each time.
            time.sleep(len(d) / self.rate)
        return True

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.more():
                raise EOFError("closed mid-line")
        i = self.buf.index(b"\r\n")
        l, self.buf = self.buf[:i], self.buf[i + 2:]
        return l

    def take(self, n):
        """Up to n bytes (fewer only at EOF)."""
        while not self.buf:
            if not self.more():
                return b""
        d, self.buf = self.buf[:n], self.buf[n:]
        return d


def read_head(r):
    status = r.line()
    fields = []
    while True:
        l = r.line()
        if not l:
            return status, fields
        name, _, value = l.partition(b":")
        fields.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))


def read_body(r, fields, sink):
    """Feed the body to sink(bytes); returns 'length', 'chunked' or 'close';
    raises EOFError when the body is cut short."""
    d = dict(fields)
    if d.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(r.line().split(b";")[0], 16)
            if size == 0:
                while r.line():
                    pass
                return "chunked"
            left = size
            while left:
                c = r.take(left)
                if not c:
                    raise EOFError("closed mid-chunk")
                sink(c)
                left -= len(c)
            if r.line() != b"":
                raise ValueError("bad chunk end")
    if "content-length" in d:
        left = int(d["content-length"])
        while left:
            c = r.take(left)
            if not c:
                raise EOFError("closed %d bytes short" % left)
            sink(c)
            left -= len(c)
        return "length"
    while True:
        c = r.take(1 << 20)
        if not c:
            return "close"
        sink(c)


def cmd_raw(a):
    data = sys.stdin.buffer.read()
    s = connect(a.port, a.idle)
    pieces = [data] if not a.split else data.split(a.split.encode())
    for i, p in enumerate(pieces):
        if i and a.split:
            p = a.split.encode() + p
            time.sleep(a.pause)
        s.sendall(p)
    if a.shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    rc = 0
    end = time.monotonic() + a.total
    while True:
        r, _, _ = select.select([s], [], [], min(a.idle, max(0, end - time.monotonic())))
        if not r:
            rc = 3
            break
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            rc = 4
            break
        if not d:
            break
        out += d
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return rc


def cmd_sse(a):
    s = connect(a.port, 10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % a.path).encode())
    r = Reader(s, time.monotonic() + 20)
    status, fields = read_head(r)
    t0 = time.monotonic()
    print("status", status.decode())
    print("framing", dict(fields).get("transfer-encoding", "length"))
    text = b""
    events = []

    def sink(c):
        nonlocal text
        text += c
        while b"\n\n" in text:
            ev, text = text.split(b"\n\n", 1)
            events.append((time.monotonic() - t0, ev))
    read_body(r, fields, sink)
    for t, ev in events:
        print("%d %s" % (t * 1000, ev.decode()))
    return 0


def cmd_upload(a):
    sampler = Sampler(a.ssa)
    s = connect(a.port, 30)
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (a.method, a.path)
    if a.chunked:
        head += "Transfer-Encoding: chunked\r\n"
    else:
        head += "Content-Length: %d\r\n" % a.size
    head += "Connection: close\r\n\r\n"
    s.sendall(head.encode())
    h = hashlib.sha256()
    sent = 0
    next_pause = a.pause_after if a.pause_after else None
    for c in pattern_chunks(a.size, a.piece):
        if next_pause is not None and sent >= next_pause:
            # Stop sending and let the caller look at the backend meanwhile.
            print("paused-at %d" % sent, flush=True)
            sampler.sample(force=True)
            time.sleep(a.pause)
            if a.watch_ssa:
                # What the backend has read so far, while we still hold back the rest.
                print("backend-rchar-at-pause %d" % sum(rchar(p) for p in children(a.watch_ssa)))
            next_pause = None
        h.update(c)
        if a.chunked:
            s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
        else:
            s.sendall(c)
        sent += len(c)
        sampler.sample()
    if a.chunked:
        s.sendall(b"0\r\n\r\n")
    r = Reader(s, time.monotonic() + a.timeout, sampler)
    status, fields = read_head(r)
    body = b""

    def sink(c):
        nonlocal body
        body += c
    read_body(r, fields, sink)
    sampler.sample(force=True)
    print("status", status.decode())
    sys.stdout.write(body.decode(errors="replace"))
    print("expected-length: %d" % a.size)
    print("expected-sha256: %s" % h.hexdigest())
    print("peak-rss-kb: %d" % sampler.peak)
    return 0


def cmd_download(a):
    sampler = Sampler(a.ssa)
    s = connect(a.port, 30)
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (a.method, a.path)
    body = None
    if a.body:
        body = open(a.body, "rb").read()
        head += "Content-Length: %d\r\n" % len(body)
        if a.expect_continue:
            head += "Expect: 100-continue\r\n"
    s.sendall((head + "\r\n").encode())
    r = Reader(s, time.monotonic() + a.timeout, sampler, a.rate)
    status, fields = read_head(r)
    body_at = time.monotonic() + a.body_after
    h = hashlib.sha256()
    n = 0

    def sink(c):
        nonlocal n, body
        h.update(c)
        n += len(c)
        if body is not None and time.monotonic() >= body_at:
            # Only now, while the answer is under way.
            s.sendall(body)
            body = None
    framing = read_body(r, fields, sink)
    sampler.sample(force=True)
    print("status", status.decode())
    print("framing", framing)
    print("length: %d" % n)
    print("sha256: %s" % h.hexdigest())
    if a.expect:
        print("expected-sha256: %s" % pattern_sha256(a.expect))
    print("peak-rss-kb: %d" % sampler.peak)
    return 0


def cmd_responses(a):
    """Parse the responses on stdin, one per method given, in order: print
    status, framing and body of each, then how many bytes were left over."""
    data = sys.stdin.buffer.read()
    r = Reader(None, 0)
    r.buf = data
    r.more = lambda: False
    for m in a.methods.split(","):
        try:
            status, fields = read_head(r)
        except EOFError:
            print("missing response for %s" % m)
            return 1
        code = int(status.split()[1])
        body = b""

        def sink(c):
            nonlocal body
            body += c
        if m == "HEAD" or code in (204, 304) or code < 200:
            framing = "none"
        else:
            try:
                framing = read_body(r, fields, sink)
            except EOFError as e:
                framing = "truncated(%s)" % e
        print("%s %d %s %r" % (m, code, framing, body[:120]))
    print("leftover %d" % len(r.buf))
    return 0


def cmd_exec_listener(a):
    """Exec a program with a listening TCP socket where a connection belongs:
    fd 3 with LISTEN_FDS=1 (as systemd without Accept=yes) or stdin."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    fd = 3 if a.fd == 3 else 0
    os.dup2(s.fileno(), fd)
    os.set_inheritable(fd, True)
    env = dict(os.environ)
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    if fd == 3:
        env["LISTEN_FDS"] = "1"
        env["LISTEN_PID"] = str(os.getpid())
    os.execve(a.argv[0], a.argv, env)


def cmd_pattern_sha256(a):
    print(pattern_sha256(a.n))
    return 0


def read_request_head(r, hosts=None):
    """A request head from Reader r: its request line and Content-Length (0
    if none); the values of its Host fields appended to hosts if given."""
    line = r.line()
    length = 0
    while True:
        f = r.line()
        if not f:
            return line, length
        if f.lower().startswith(b"content-length:"):
            length = int(f.split(b":", 1)[1])
        elif hosts is not None and f.lower().startswith(b"host:"):
            hosts.append(f.split(b":", 1)[1].strip())


def connections(lifetime):
    """Listen on a free loopback port, print it, and yield each connection
    accepted, with the end of the lifetime, until that end."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    print(ls.getsockname()[1], flush=True)
    ls.settimeout(lifetime)
    end = time.monotonic() + lifetime
    while time.monotonic() < end:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            break
        yield c, end


def cmd_headers_backend(a):
    """Answer every request on every connection with the file's bytes as the
    response head followed by 'hello\\n' (Content-Length 6 unless the head
    says otherwise). Logs each request line to stderr. With --read-body the
    answer goes out as soon as the head is in, before the request's
    Content-Length body, which is then read and logged as "body N". With
    --cut the head goes alone and the connection closes after it, before
    any body byte. With --require-host each Host is logged as "host VALUE",
    and a request without one gets a 400, as HTTP/1.1 requires."""
    head = open(a.head, "rb").read().replace(b"\n", b"\r\n")
    for c, _ in connections(a.lifetime):
        c.settimeout(5)
        r = Reader(c, time.monotonic() + 5)
        try:
            while True:
                hosts = []
                try:
                    line, length = read_request_head(r, hosts)
                except (EOFError, TimeoutError, socket.timeout):
                    break
                sys.stderr.write("request %s\n" % line.decode("latin-1"))
                if a.require_host:
                    sys.stderr.write("".join("host %s\n" % h.decode("latin-1") for h in hosts))
                sys.stderr.flush()
                if a.require_host and not hosts:
                    c.sendall(b"HTTP/1.1 400 No Host\r\nContent-Length: 0\r\n\r\n")
                    continue
                if a.cut:
                    c.sendall(head + b"\r\n")
                    break
                c.sendall(head + b"\r\n" + b"hello\n")
                if a.read_body:
                    r.deadline = time.monotonic() + 20
                    got = 0
                    while got < length:
                        d = r.take(length - got)
                        if not d:
                            break
                        got += len(d)
                    sys.stderr.write("body %d\n" % got)
                    sys.stderr.flush()
        finally:
            c.close()
    return 0


def cmd_stream_backend(a):
    """Answer each request at once with a chunked 200 whose body is the /bytes
    pattern, streamed as fast as the connection takes it while a second thread
    reads the request's Content-Length body, and ended once that is all in.
    Logs "body L sha256 HEX streamed N" to stderr for each."""
    # Whole 64 KiB chunks, built once.
    chunk = b"%x\r\n" % len(BLOCK) + BLOCK + b"\r\n"
    for c, end in connections(a.lifetime):
        r = Reader(c, end)
        try:
            while True:
                try:
                    _, length = read_request_head(r)
                except (EOFError, TimeoutError, socket.timeout):
                    break
                h = hashlib.sha256()
                got = [0]

                def read_body():
                    try:
                        while got[0] < length:
                            d = r.take(length - got[0])
                            if not d:
                                break
                            h.update(d)
                            got[0] += len(d)
                    except OSError:
                        pass
                reader = threading.Thread(target=read_body, daemon=True)
                reader.start()
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                sent = 0
                while reader.is_alive() and time.monotonic() < end:
                    c.sendall(chunk)
                    sent += len(BLOCK)
                    time.sleep(a.gap)
                c.sendall(b"0\r\n\r\n")
                sys.stderr.write("body %d sha256 %s streamed %d\n" % (got[0], h.hexdigest(), sent))
                sys.stderr.flush()
        except OSError:
            pass
        finally:
            c.close()
    return 0


def cmd_blackhole(a):
    """Print a port whose connects hang: backlog full, never accepted."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    # Fill the accept queue; later SYNs are dropped and connect() hangs.
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        try:
            f.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(f)
    time.sleep(0.2)
    print(port, flush=True)
    time.sleep(a.lifetime)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("raw")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--idle", type=float, default=5)
    q.add_argument("--total", type=float, default=20)
    q.add_argument("--shut", action="store_true")
    q.add_argument("--split", help="send the input in pieces, split before this string")
    q.add_argument("--pause", type=float, default=0.5)
    q = sub.add_parser("sse")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--path", required=True)
    q = sub.add_parser("upload")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--path", required=True)
    q.add_argument("--method", default="POST")
    q.add_argument("--size", type=int, required=True)
    q.add_argument("--chunked", action="store_true")
    q.add_argument("--piece", type=int, default=65536)
    q.add_argument("--pause-after", type=int, default=0)
    q.add_argument("--pause", type=float, default=1.0)
    q.add_argument("--watch-ssa", type=int, default=0)
    q.add_argument("--ssa", type=int, default=0)
    q.add_argument("--timeout", type=float, default=300)
    q = sub.add_parser("download")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--path", required=True)
    q.add_argument("--method", default="GET")
    q.add_argument("--body")
    q.add_argument("--body-after", type=float, default=0)
    q.add_argument("--rate", type=float, default=0)
    q.add_argument("--expect-continue", action="store_true")
    q.add_argument("--expect", type=int, default=0)
    q.add_argument("--ssa", type=int, default=0)
    q.add_argument("--timeout", type=float, default=300)
    q = sub.add_parser("responses")
    q.add_argument("--methods", required=True)
    q = sub.add_parser("exec-listener")
    q.add_argument("--fd", type=int, choices=(0, 3), required=True)
    q.add_argument("argv", nargs="+")
    q = sub.add_parser("pattern-sha256")
    q.add_argument("n", type=int)
    q = sub.add_parser("headers-backend")
    q.add_argument("--head", required=True)
    q.add_argument("--lifetime", type=float, default=30)
    q.add_argument("--read-body", action="store_true")
    q.add_argument("--cut", action="store_true")
    q.add_argument("--require-host", action="store_true")
    q = sub.add_parser("stream-backend")
    q.add_argument("--lifetime", type=float, default=60)
    q.add_argument("--gap", type=float, default=0)
    q = sub.add_parser("blackhole")
    q.add_argument("--lifetime", type=float, default=30)
    a = p.parse_args()
    return globals()["cmd_" + a.cmd.replace("-", "_")](a)


if __name__ == "__main__":
    sys.exit(main())
