"""HEAD: no body follows when the backend's answer has no Content-Length.

RFC 9110 9.3.2 and RFC 9112 6.3: the answer to a HEAD ends with its head,
whatever framing the resource would have had. A chunked resource must not
get a last chunk, nor a close-delimited one anything, from gfproxy: the
next response on the connection starts right after the head.
"""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, Reader, read_response, field


def answer(conn_no, req_no, start, fields):
    if start.startswith("HEAD /chunked "):
        return [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-R: chunked\r\n\r\n"]
    if start.startswith("HEAD /close "):
        return [b"HTTP/1.1 200 OK\r\nConnection: close\r\nX-R: close\r\n\r\n", None]
    return [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter"]


def case(Case):
    c = Case(upstream=answer)
    cl = c.client()
    r = Reader(cl)
    for what in ("chunked", "close"):
        cl.sendall(b"HEAD /proxy/%s HTTP/1.1\r\nHost: gf.test\r\n\r\n" % what.encode())
        line, fields, _ = read_response(r, head_only=True)
        check(line.startswith("HTTP/1.1 200"), "HEAD %s: %r" % (what, line))
        check(field(fields, "X-R") == what, "HEAD %s: fields %r" % (what, fields))
        time.sleep(0.3)
        cl.sendall(b"GET /proxy/after HTTP/1.1\r\nHost: gf.test\r\n\r\n")
        line, fields, body = read_response(r)
        check(line.startswith("HTTP/1.1 200") and body == b"after",
              "after HEAD %s, the next answer is %r %r: bytes followed the head" % (what, line, body))
    cl.close()
    c.finish()


main(case)
