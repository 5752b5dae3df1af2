"""An HTTP/1.0 response with Transfer-Encoding closes the upstream connection.

RFC 9112 6.1: a recipient of an HTTP/1.0 message with Transfer-Encoding
treats its framing as faulty and closes the connection after it, whatever
it says about keep-alive; what follows on it never answers the client's
next request (response queue poisoning).
"""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from rawcase import main, queue_poisoning, POISON

main(lambda Case: queue_poisoning(Case, [
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nfirst\r\n0\r\n\r\n" + POISON]))
