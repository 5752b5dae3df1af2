"""Bytes after a Content-Length response never answer the next request.

RFC 9112 6.3 and 9.3: after a complete response the connection may carry
the next one only if nothing else arrived on it; an upstream that sends
more (a second response, here) has its connection closed, so the client's
next request gets its own answer from a fresh connection (response queue
poisoning; libcurl 7.88 reuses such a connection itself).
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, queue_poisoning, POISON

main(lambda Case: queue_poisoning(Case, [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", 0.05, POISON]))
