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


def field(fields, name):
    vals = [v for n, v in fields if n.lower() == name.lower()]
    return vals[0] if len(vals) == 1 else (vals if vals else None)


class Case:
    def __init__(self, *proxy_args):
        self.port = int(os.environ["PX_PORT"])
        self.errlog = os.environ["PX_ERRLOG"]
        self.backend = socket.socket()
        self.backend.bind(("127.0.0.1", 0))
        self.backend.listen(8)
        bport = self.backend.getsockname()[1]
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


def main(fn):
    """Run fn(case_factory); exit 0 on success, 1 with the reason otherwise."""
    cases = []

    def factory(*args):
        c = Case(*args)
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
