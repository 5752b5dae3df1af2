"""Backend Transfer-Encoding other than exactly chunked: 502.

RFC 9112 6.1 and 6.3: a transfer coding after chunked makes the body end
at the close, one before it is a coding gfproxy does not decode, and two
fields are a list by another name. Relayed, the client would get bytes
framed or coded otherwise than the backend sent them; gfproxy answers 502
itself, as nginx does for an unknown Transfer-Encoding from upstream.
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, Reader, read_response

VARIANTS = [
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Transfer-Encoding: chunked, gzip\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: identity\r\n",
    b"Transfer-Encoding: xchunked\r\n",
]


def answer(conn_no, req_no, start, fields):
    te = VARIANTS[int(start.split()[1].rsplit("/", 1)[1])]
    return [b"HTTP/1.1 200 OK\r\n" + te + b"\r\n5\r\nSECRE\r\n0\r\n\r\n", None]


def case(Case):
    c = Case(upstream=answer)
    for i in range(len(VARIANTS)):
        cl = c.client()
        cl.sendall(b"GET /proxy/te/%d HTTP/1.1\r\nHost: gf.test\r\n\r\n" % i)
        line, fields, body = read_response(Reader(cl))
        check(line.startswith("HTTP/1.1 502"), "%r: client got %r" % (VARIANTS[i], line))
        check(b"SECRE" not in body, "%r: the body was relayed" % VARIANTS[i])
        cl.close()
    c.log_has(r"^<3>GET /proxy/te/0 -> \S+ 502 .*Transfer-Encoding other than chunked")
    c.finish()


main(case)
