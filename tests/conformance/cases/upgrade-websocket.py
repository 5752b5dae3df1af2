"""WebSocket upgrade: after the backend's 101, bytes flow both ways until
either side closes, and a half-close is passed on, not turned into a close.

RFC 9110 7.8 and RFC 6455 4 (being implemented in gfproxy).
"""
import os, socket, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, field, Reader


def case(Case):
    c = Case()
    cl = c.client()
    cl.sendall(b"GET /proxy/ws HTTP/1.1\r\nHost: gf.test\r\nConnection: Upgrade\r\n"
               b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    be = c.accept()
    br = Reader(be)
    line, fields = br.head()
    check(line == "GET /ws HTTP/1.1", "backend got %r" % line)
    check(str(field(fields, "Upgrade")).lower() == "websocket",
          "Upgrade not forwarded: %r" % fields)
    check("upgrade" in str(field(fields, "Connection")).lower(),
          "Connection: Upgrade not forwarded: %r" % fields)
    be.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    r = Reader(cl)
    line, fields = r.head()
    check(line.startswith("HTTP/1.1 101"), "client got %r" % line)
    check(str(field(fields, "Upgrade")).lower() == "websocket", "101 without Upgrade: %r" % fields)

    # Both directions, arbitrary bytes (a masked frame, then raw binary).
    up = b"\x81\x84\x01\x02\x03\x04" + bytes(b ^ m for b, m in zip(b"ping", b"\x01\x02\x03\x04"))
    cl.sendall(up)
    check(br.exactly(len(up), "client bytes at the backend") == up, "client->backend bytes differ")
    down = bytes(range(256)) * 4
    be.sendall(down)
    check(r.exactly(len(down), "backend bytes at the client") == down, "backend->client bytes differ")

    # Half-close from the client: the backend sees EOF, can still answer.
    cl.shutdown(socket.SHUT_WR)
    br.eof("EOF at the backend after the client's half-close")
    be.sendall(b"after-your-eof")
    check(r.exactly(14, "bytes after the half-close") == b"after-your-eof",
          "backend->client after half-close")
    be.close()
    r.eof("EOF at the client after the backend closed")
    cl.close()
    c.finish()


main(case)
