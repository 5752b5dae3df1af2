"""The 101 (and any answer) to an upgrade request gets every response-head check: 502.

RFC 9112 5.1 and 5.2: whitespace before a colon, obsolete line folding and
control bytes are refused in a response head that opens a tunnel as they
are on the plain path; the client gets a 502 and nothing it sends later
reaches the upstream.
"""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, Reader, read_response

REQUEST = (b"GET /proxy/ws HTTP/1.1\r\nHost: gf.test\r\nConnection: Upgrade\r\n"
           b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")
GOOD = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n")
VARIANTS = [
    ("tab before a colon", GOOD + b"X-Tabbed\t: a\r\n\r\n"),
    ("space before a colon", GOOD + b"X-Spaced : a\r\n\r\n"),
    ("obsolete folding", GOOD + b"X-Folded: a\r\n b\r\n\r\n"),
    ("control byte in a value", GOOD + b"X-Ctl: a\x01b\r\n\r\n"),
    ("bad status line", b"HTTP/1.9 101 Switching Protocols\r\n" + GOOD.split(b"\r\n", 1)[1] + b"\r\n"),
]


def case(Case):
    for what, answer in VARIANTS:
        c = Case(upstream=lambda conn_no, req_no, start, fields, a=answer: [a, 1.0])
        cl = c.client()
        cl.sendall(REQUEST)
        line, fields, body = read_response(Reader(cl))
        check(line.startswith("HTTP/1.1 502"), "%s: client got %r" % (what, line))
        try:
            cl.sendall(b"RAW-AFTER-101\r\n\r\n")
        except OSError:
            pass
        time.sleep(0.3)
        check(b"RAW-AFTER-101" not in b"".join(c.hostile.raw.values()),
              "%s: the client's bytes reached the upstream" % what)
        cl.close()
        c.finish()
        c.close()


main(case)
