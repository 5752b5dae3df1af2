"""With TE: trailers from the client, the backend's response trailers are relayed.

RFC 9110 6.5 and RFC 9112 7.1.2: a client that sends TE: trailers can take
trailer fields; a proxy must not drop them silently on the way (being
implemented in gfproxy).
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, field, Reader


def case(Case):
    c = Case()
    cl = c.client()
    cl.sendall(b"GET /proxy/trailers HTTP/1.1\r\nHost: gf.test\r\nTE: trailers\r\n\r\n")
    be = c.accept()
    br = Reader(be)
    line, fields = br.head()
    check(line == "GET /trailers HTTP/1.1", "backend got %r" % line)
    be.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
               b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n")
    r = Reader(cl)
    line, fields = r.head()
    check(line.startswith("HTTP/1.1 200"), "client got %r" % line)
    check(field(fields, "Transfer-Encoding") == "chunked",
          "trailers need a chunked response, got Transfer-Encoding %r" % field(fields, "Transfer-Encoding"))
    body, trailers = r.chunked()
    check(body == b"hello", "body %r" % body)
    check(field(trailers, "X-Checksum") == "abc123", "trailers relayed: %r" % trailers)
    cl.close()
    be.close()
    c.finish()


main(case)
