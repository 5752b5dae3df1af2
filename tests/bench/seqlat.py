#!/usr/bin/python3
"""seqlat.py PORT PATH N SECONDS - the latency one client sees on a new
connection: up to N requests one after the other to 127.0.0.1:PORT, each on a
connection of its own (HTTP/1.0, as ab sends), from connect() to the last
byte of the body; stops after SECONDS even if fewer were made. Prints
"RESULT done errors median_ms p99_ms" (p99: nearest rank)."""
import socket
import sys
import time


def one(port, path, deadline):
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=max(0.5, deadline - t0)) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        ok = lines[0].split(b" ")[1:2] == [b"200"]
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while length is None or len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        if length is not None and len(body) < length:
            return None
    t1 = time.perf_counter()
    return (t1 - t0) * 1000.0 if ok else None


def main():
    port, path, n, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    deadline = time.perf_counter() + secs
    times, errors = [], 0
    for _ in range(n):
        if time.perf_counter() >= deadline:
            break
        try:
            ms = one(port, path, deadline)
        except OSError:
            ms = None
        if ms is None:
            errors += 1
        else:
            times.append(ms)
    if not times:
        print(f"RESULT 0 {errors} 0 0")
        return
    times.sort()
    k = len(times)
    median = times[k // 2] if k % 2 else (times[k // 2 - 1] + times[k // 2]) / 2
    p99 = times[min(k - 1, max(0, -(-99 * k // 100) - 1))]
    print(f"RESULT {k} {errors} {median:.2f} {p99:.2f}")


if __name__ == "__main__":
    main()
