"""Request targets and Host outside RFC 3986 / RFC 9110 7.2 grammar: 400.

RFC 9112 3.2 and RFC 3986 3.3: a path is pchar segments (no backslash,
quote, angle bracket, brace, pipe, caret, backquote, square bracket or raw
non-ASCII byte, and only well-formed percent-escapes; an escaped NUL is
refused too); a request target has no fragment; RFC 9110 4.2.4: userinfo
in an http URI is an error. RFC 9110 7.2 and RFC 3986 3.2.2: Host is
uri-host [":" port], the port digits only. Each is refused with 400,
nothing forwarded; the legitimate spellings next to them are forwarded.
"""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, check, Reader, read_response

REFUSED = [
    (b"/proxy/a\\b", b"gf.test"),
    (b"/proxy/a\"b", b"gf.test"),
    (b"/proxy/a<b>", b"gf.test"),
    (b"/proxy/a{b}", b"gf.test"),
    (b"/proxy/a|b", b"gf.test"),
    (b"/proxy/a^b", b"gf.test"),
    (b"/proxy/a`b", b"gf.test"),
    (b"/proxy/a[b]", b"gf.test"),
    (b"/proxy/caf\xc3\xa9", b"gf.test"),
    (b"/proxy/a%zz", b"gf.test"),
    (b"/proxy/a%4", b"gf.test"),
    (b"/proxy/a%00.txt", b"gf.test"),
    (b"/proxy/a#/../../admin", b"gf.test"),
    (b"/proxy/a?b#frag", b"gf.test"),
    (b"http://user@gf.test/proxy/a", b"gf.test"),
    (b"http://user@gf.test/proxy/a", b"user@gf.test"),
    (b"/proxy/a", b"gf.test:abc"),
    (b"/proxy/a", b"gf.test:80:80"),
    (b"/proxy/a", b"gf.test:123456"),
    (b"/proxy/a", b"[::1"),
    (b"/proxy/a", b"gf]test"),
    (b"/proxy/a", b"[gf.test]"),
    (b"/proxy/a", b"gf%zztest"),
    (b"/proxy/a", b""),
]
FORWARDED = [
    (b"/proxy/a:b@c!$&'()*+,;=-._~%41%2F", b"gf.test", "/a:b@c!$&'()*+,;=-._~%41%2F"),
    (b"/proxy/q?x=%zz&y=%00&z=a|b^c{d}\"e\\f", b"gf.test", "/q?x=%zz&y=%00&z=a|b^c{d}\"e\\f"),
    (b"/proxy/p", b"gf.test:8080", "/p"),
    (b"/proxy/p", b"[::1]:8080", "/p"),
    (b"/proxy/p", b"127.0.0.1", "/p"),
    (b"/proxy/p", b"xn--caf-dma.example:", "/p"),
    (b"http://gf.test/proxy/abs?q", b"gf.test", "/abs?q"),
]


def case(Case):
    c = Case(upstream=lambda conn_no, req_no, start, fields:
             [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    for target, host in REFUSED:
        cl = c.client()
        cl.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        line, fields, body = read_response(Reader(cl))
        check(line.startswith("HTTP/1.1 400"), "%r Host %r: %r" % (target, host, line))
        cl.close()
    time.sleep(0.2)
    check(c.hostile.requests == [], "refused requests reached the upstream: %r" % c.hostile.requests)
    for target, host, want in FORWARDED:
        cl = c.client()
        cl.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        line, fields, body = read_response(Reader(cl))
        check(line.startswith("HTTP/1.1 200"), "%r Host %r refused: %r" % (target, host, line))
        check(c.hostile.requests[-1][2] == "GET %s HTTP/1.1" % want,
              "%r forwarded as %r" % (target, c.hostile.requests[-1][2]))
        cl.close()
    c.log_has(r"^<4>GET /proxy/a%00\.txt 400 .*escaped NUL")
    c.finish()


main(case)
