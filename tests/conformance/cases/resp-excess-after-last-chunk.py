"""Bytes after a chunked response's last chunk never answer the next request.

RFC 9112 7.1 and 9.3: the message ends with the last chunk and the trailer
section; more bytes on the connection mean it is not reused, so the
client's next request gets its own answer (response queue poisoning).
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, queue_poisoning, POISON

main(lambda Case: queue_poisoning(Case, [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n", 0.05,
    POISON]))
