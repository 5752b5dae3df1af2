"""Forwarded-address fields in a request's trailer section never reach the backend.

RFC 9110 6.5.1: a trailer is not a header, and a recipient must not merge
it into one unless it knows the field may be; backends that do anyway
would take the client's X-Forwarded-For (in any '-'/'_' spelling), Forwarded
or X-Real-IP from there. They are removed; other trailers still pass.
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, field, Reader


def case(Case):
    c = Case()
    cl = c.client()
    cl.sendall(b"POST /proxy/upload HTTP/1.1\r\nHost: gf.test\r\nTransfer-Encoding: chunked\r\n"
               b"Trailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n"
               b"X-Forwarded-For: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.7\r\n"
               b"Forwarded: for=6.6.6.8\r\nX-Real-IP: 6.6.6.9\r\nX-Forwarded-Host: evil\r\n\r\n")
    be = c.accept()
    br = Reader(be)
    line, fields = br.head()
    check(line == "POST /upload HTTP/1.1", "backend got %r" % line)
    body, trailers = br.chunked()
    check(body == b"hello", "body %r" % body)
    check(field(trailers, "X-Sum") == "42", "other trailers forwarded: %r" % trailers)
    names = [n.lower().replace("_", "-") for n, v in trailers]
    for bad in ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host"):
        check(bad not in names, "%s reached the backend in the trailers: %r" % (bad, trailers))
    be.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    line, fields = Reader(cl).head()
    check(line.startswith("HTTP/1.1 200"), "client got %r" % line)
    cl.close()
    be.close()
    c.finish()


main(case)
