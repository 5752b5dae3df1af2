"""rawcase - the raw-socket side of the conformance suite, for what
varnishtest cannot express: checking trailer bytes, relaying an upgraded
connection, half-closing a socket.

A case is a script that builds a Case, plays the backend on a plain
listening socket and the client on a plain connected one, and calls
Case.finish(). tests/conformance/run passes PX_PORT, PX_PROXY and PX_ERRLOG.
Any failed check raises CaseFailure; main() turns it into exit status 1.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time


class CaseFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CaseFailure(what)


class Reader:
    """Buffered reads with a deadline on every wait."""

    def __init__(self, sock, timeout=5.0):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout

    def _more(self, what):
        self.sock.settimeout(self.timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise CaseFailure("timed out waiting for %s (have %r)" % (what, self.buf[:200]))
        except ConnectionResetError:
            raise CaseFailure("connection reset waiting for %s (have %r)" % (what, self.buf[:200]))
        if not data:
            raise CaseFailure("EOF waiting for %s (have %r)" % (what, self.buf[:200]))
        self.buf += data

    def until(self, marker, what=None):
        while marker not in self.buf:
            self._more(what or repr(marker))
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exactly(self, n, what="bytes"):
        while len(self.buf) < n:
            self._more(what)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self):
        return self.until(b"\r\n")[:-2]

    def head(self):
        """A message head: (start line, [(name, value)])."""
        raw = self.until(b"\r\n\r\n", "a message head")
        lines = raw[:-4].split(b"\r\n")
        fields = []
        for l in lines[1:]:
            name, _, value = l.partition(b":")
            fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        return lines[0].decode("latin-1"), fields

    def chunked(self):
        """A chunked body: (data, [(name, value)] trailers)."""
        body = b""
        while True:
            size_line = self.line()
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body += self.exactly(size, "chunk data")
            check(self.exactly(2, "CRLF after chunk") == b"\r\n", "chunk not followed by CRLF")
        trailers = []
        while True:
            l = self.line()
            if l == b"":
                break
            name, _, value = l.partition(b":")
            trailers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        return body, trailers

    def eof(self, what="EOF"):
        """Nothing more, then EOF."""
        self.sock.settimeout(self.timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise CaseFailure("timed out waiting for %s" % what)
        except ConnectionResetError:
            data = b""
        check(self.buf == b"" and data == b"", "expected %s, got %r" % (what, self.buf + data))


class HostileUpstream:
    """A scripted backend on its own listening socket, in a thread: for each
    request it reads (head, and a Content-Length body), it sends whatever
    answer(conn_no, req_no, start_line, fields) returns, raw bytes that may
    break every rule (a list may mix them with pauses in seconds, and end
    with None to close after them), or closes the connection when that is
    None. Every
    request is recorded as (conn_no, req_no, start_line, fields) in
    self.requests, so a case can assert what reached the upstream and on
    which connection."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.raw = {}       # conn_no -> every byte received on it
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.1)
        conn_no = 0
        while not self.stop:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._conn, args=(s, conn_no), daemon=True).start()
            conn_no += 1

    def _conn(self, s, conn_no):
        r = Reader(s, timeout=10.0)
        self.raw[conn_no] = b""
        req_no = 0
        try:
            while not self.stop:
                try:
                    raw = r.until(b"\r\n\r\n", "a request head")
                except CaseFailure:
                    self.raw[conn_no] += r.buf
                    return
                self.raw[conn_no] += raw
                lines = raw[:-4].split(b"\r\n")
                fields = []
                for l in lines[1:]:
                    name, _, value = l.partition(b":")
                    fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
                start = lines[0].decode("latin-1")
                cl = field(fields, "Content-Length")
                if isinstance(cl, str) and cl.isdigit() and int(cl) > 0:
                    self.raw[conn_no] += r.exactly(int(cl), "a request body")
                self.requests.append((conn_no, req_no, start, fields))
                out = self.answer(conn_no, req_no, start, fields)
                req_no += 1
                if out is None:
                    break
                for piece in (out if isinstance(out, list) else [out]):
                    if piece is None:
                        return              # close after what was sent
                    if isinstance(piece, (int, float)):
                        time.sleep(piece)   # a pause between writes
                    else:
                        s.sendall(piece)
        except OSError:
            pass
        finally:
            s.close()

    def close(self):
        self.stop = True
        self.sock.close()


def read_response(r, head_only=False):
    """A whole response from a Reader: (status line, fields, body), the body
    framed by Content-Length or chunked; none for head_only (HEAD, 1xx,
    204, 304)."""
    line, fields = r.head()
    if head_only or line[9:12] in ("204", "304") or line[9:10] == "1":
        return line, fields, b""
    te, cl = field(fields, "Transfer-Encoding"), field(fields, "Content-Length")
    if isinstance(te, str) and te.lower() == "chunked":
        body, _ = r.chunked()
    elif isinstance(cl, str) and cl.isdigit():
        body = r.exactly(int(cl), "a response body")
    else:
        raise CaseFailure("response without a framing we can read: %r" % fields)
    return line, fields, body


POISON = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"


def queue_poisoning(Case, first):
    """Response queue poisoning: the upstream answers /first with `first`
    (a list of byte strings and pauses, as HostileUpstream takes) whose
    bytes go on after a complete response; the client's next request on
    the same connection must get its own answer, never those bytes."""
    def answer(conn_no, req_no, start, fields):
        if start.startswith("GET /first "):
            return first
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"]
    c = Case(upstream=answer)
    cl = c.client()
    r = Reader(cl)
    cl.sendall(b"GET /proxy/first HTTP/1.1\r\nHost: gf.test\r\n\r\n")
    line, fields, body = read_response(r)
    check(line[9:10] == "2" or line[9:12] == "304", "first answer: %r" % line)
    check(b"POISON" not in body, "the excess bytes reached the first answer: %r" % body)
    # Give the excess time to arrive before the next request goes out.
    time.sleep(0.3)
    cl.sendall(b"GET /proxy/second HTTP/1.1\r\nHost: gf.test\r\n\r\n")
    try:
        line, fields, body = read_response(r)
    except CaseFailure:
        line, body = "(closed)", b""
    check(b"POISON" not in body, "the upstream's excess bytes answered the next request")
    check(body == b"second" or line == "(closed)",
          "second answer: %r %r" % (line, body))
    seconds = [q for q in c.hostile.requests if q[2].startswith("GET /second ")]
    check(line == "(closed)" or (len(seconds) == 1 and seconds[0][0] != 0),
          "the second request went over the poisoned connection: %r" % c.hostile.requests)
    cl.close()
    c.finish()


def field(fields, name):
    vals = [v for n, v in fields if n.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else (vals if vals else None)


class Case:
    def __init__(self, *proxy_args, upstream=None):
        """upstream: an answer function for a HostileUpstream, which then
        plays the backend instead of the plain listening socket."""
        self.port = int(os.environ["PX_PORT"])
        self.errlog = os.environ["PX_ERRLOG"]
        self.hostile = HostileUpstream(upstream) if upstream is not None else None
        self.backend = socket.socket()
        self.backend.bind(("127.0.0.1", 0))
        self.backend.listen(8)
        bport = self.hostile.port if self.hostile else self.backend.getsockname()[1]
        err = open(self.errlog, "ab")
        argv = ["systemd-socket-activate", "--accept", "-l", "127.0.0.1:%d" % self.port,
                "-E", "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS", "-E", "LSAN_OPTIONS",
                os.environ["PX_PROXY"], "--upstream", "http://127.0.0.1:%d" % bport]
        argv += list(proxy_args)
        self.ssa = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    start_new_session=True)
        err.close()
        for _ in range(100):
            r = subprocess.run(["ss", "-Hltn", "sport = :%d" % self.port],
                               capture_output=True, text=True)
            if r.stdout.strip():
                break
            if self.ssa.poll() is not None:
                raise CaseFailure("systemd-socket-activate exited")
            time.sleep(0.05)
        else:
            raise CaseFailure("nothing listens on port %d" % self.port)

    def client(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def accept(self, timeout=5.0):
        self.backend.settimeout(timeout)
        try:
            s, _ = self.backend.accept()
        except socket.timeout:
            raise CaseFailure("the proxy never connected to the backend")
        return s

    def no_backend_connection(self, wait=0.3):
        self.backend.settimeout(wait)
        try:
            s, _ = self.backend.accept()
        except socket.timeout:
            return
        s.close()
        raise CaseFailure("the proxy connected to the backend")

    def log(self):
        with open(self.errlog, "rb") as f:
            return f.read().decode("latin-1")

    def log_has(self, regex):
        for _ in range(60):
            if re.search(regex, self.log(), re.M | re.I):
                return
            time.sleep(0.05)
        raise CaseFailure("no log line matches %r" % regex)

    def children(self):
        r = subprocess.run(["pgrep", "-P", str(self.ssa.pid)], capture_output=True, text=True)
        return r.stdout.split()

    def reap(self, seconds=3):
        for _ in range(int(seconds * 20)):
            if not self.children():
                return
            time.sleep(0.05)
        raise CaseFailure("per-connection processes still running: %s" % self.children())

    def finish(self):
        self.reap()

    def close(self):
        if self.ssa.poll() is None:
            os.killpg(self.ssa.pid, signal.SIGKILL)
            self.ssa.wait()
        self.backend.close()
        if self.hostile is not None:
            self.hostile.close()


def main(fn):
    """Run fn(case_factory); exit 0 on success, 1 with the reason otherwise."""
    cases = []

    def factory(*args, **kw):
        c = Case(*args, **kw)
        cases.append(c)
        return c
    try:
        fn(factory)
    except CaseFailure as e:
        print("FAILED:", e)
        sys.exit(1)
    finally:
        for c in cases:
            c.close()
    print("ok")
    sys.exit(0)
