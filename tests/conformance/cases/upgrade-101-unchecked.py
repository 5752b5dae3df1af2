"""A 101 that is not the WebSocket handshake asked for opens no tunnel: 502.

RFC 9110 15.2.2 and 7.8, RFC 6455 4.1: a 101 must name the protocol
switched to, and a WebSocket server proves it read the request with the
Sec-WebSocket-Accept derived from the client's key. A 101 without
Upgrade: websocket, with another protocol (h2c), or with the wrong accept
value gets the client a 502, and nothing the client sends afterwards
reaches the upstream as raw bytes.
"""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, Reader, read_response, CaseFailure

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
GOOD_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
WS_REQUEST = (b"GET /proxy/ws HTTP/1.1\r\nHost: gf.test\r\nConnection: Upgrade\r\n"
              b"Upgrade: websocket\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
H2C_REQUEST = (b"GET /proxy/h2 HTTP/1.1\r\nHost: gf.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
               b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
RAW = b"RAW-AFTER-101 / HTTP/1.1\r\nHost: smuggled\r\n\r\n"

VARIANTS = [
    ("no Upgrade", WS_REQUEST,
     b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Accept: " + GOOD_ACCEPT + b"\r\n\r\n"),
    ("Upgrade: h2c to a WebSocket request", WS_REQUEST,
     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Accept: " + GOOD_ACCEPT + b"\r\n\r\n"),
    ("wrong Sec-WebSocket-Accept", WS_REQUEST,
     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"),
    ("no Sec-WebSocket-Accept", WS_REQUEST,
     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
    ("101 h2c to an h2c request", H2C_REQUEST,
     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"),
]


def case(Case):
    for what, request, answer in VARIANTS:
        c = Case(upstream=lambda conn_no, req_no, start, fields, a=answer: [a, 1.0])
        cl = c.client()
        cl.sendall(request)
        r = Reader(cl)
        line, fields, body = read_response(r)
        check(line.startswith("HTTP/1.1 502"), "%s: client got %r" % (what, line))
        try:
            cl.sendall(RAW)
        except OSError:
            pass
        time.sleep(0.3)
        raw = b"".join(c.hostile.raw.values())
        check(b"RAW-AFTER-101" not in raw, "%s: the client's bytes reached the upstream" % what)
        c.log_has(r"^<3>GET /proxy/(ws|h2) -> \S+ 502 ")
        cl.close()
        c.finish()
        c.close()


main(case)
