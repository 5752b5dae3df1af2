"""The trailers of a chunked upload are forwarded to the backend.

RFC 9112 7.1.2: trailer fields belong to the message; a proxy forwarding a
chunked request must pass them on, not drop them (being implemented).
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, field, Reader


def case(Case):
    c = Case()
    cl = c.client()
    cl.sendall(b"POST /proxy/upload HTTP/1.1\r\nHost: gf.test\r\nTransfer-Encoding: chunked\r\n"
               b"Trailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
    be = c.accept()
    br = Reader(be)
    line, fields = br.head()
    check(line == "POST /upload HTTP/1.1", "backend got %r" % line)
    check(field(fields, "Transfer-Encoding") == "chunked",
          "trailers need a chunked upload upstream, got Transfer-Encoding %r, Content-Length %r"
          % (field(fields, "Transfer-Encoding"), field(fields, "Content-Length")))
    body, trailers = br.chunked()
    check(body == b"hello", "body %r" % body)
    check(field(trailers, "X-Sum") == "42", "request trailers forwarded: %r" % trailers)
    be.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    r = Reader(cl)
    line, fields = r.head()
    check(line.startswith("HTTP/1.1 200"), "client got %r" % line)
    cl.close()
    be.close()
    c.finish()


main(case)
