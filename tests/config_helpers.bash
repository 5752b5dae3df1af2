# config_helpers.bash - helpers for tests/config.bats (gfproxy.conf).
#
# Loaded after helpers.bash, whose lifecycle (gf_activate, gf_bg, teardown)
# these build on: every process started here is in a process group teardown
# stops, and every wait is bounded.

# conf NAME - write stdin to $GF_TMP/NAME.conf (a file the test owns).
conf() {
	cat >"$GF_TMP/$1.conf"
}

# start_conf_proxy NAME [ARGS...] - gfproxy reading $GF_TMP/NAME.conf; sets
# PROXY_PORT and PURL. The file is read again by every connection.
start_conf_proxy() {
	local name=$1; shift
	gf_need_proxy
	gf_activate PROXY "$GF_PROXY_BIN" --config "$GF_TMP/$name.conf" "$@"
	PURL=http://127.0.0.1:$PROXY_PORT
}

# start_peer_as NAME - another test peer; sets <NAME>_PORT and logs to
# $GF_TMP/NAME.err.
start_peer_as() {
	gf_need_peer
	gf_activate "$1" "$GF_PEER_BIN"
}

# lines NAME - a program's own log lines (sd-daemon prefix) from NAME.err.
lines() {
	grep -a '^<[0-7]>' "$GF_TMP/$1.err" || true
}

# refused_port - a port on 127.0.0.1 where nothing listens: connects are refused.
refused_port() {
	gf_free_port
}

# echo_via PATH [HEADER...] - GET PATH through the proxy (Connection: close,
# Host: t unless a Host header is given) and print the backend's /echo lines
# (or whatever body came back).
echo_via() {
	local path=$1; shift
	local -a h=("$@")
	printf '%s\n' "${h[@]}" | grep -qi '^host:' || h=('Host: t' "${h[@]}")
	req "GET $path HTTP/1.1" "${h[@]}" 'Connection: close' >"$GF_TMP/echo.req"
	raw "$PROXY_PORT" <"$GF_TMP/echo.req" | resp_body
}

# status_of ARGS... - the status code of one curl request through the proxy.
status_of() {
	gf_curl -o /dev/null -w '%{http_code}' "$@"
}

# hangup_server NAME [N] - a python upstream that reads each request (head
# and Content-Length body) and writes "request METHOD TARGET" to NAME.err;
# it answers the first N requests of a connection (default 0) with 200 and
# keep-alive, then closes the connection without answering. Sets <NAME>_PORT.
hangup_server() {
	cat >"$GF_TMP/hangup.py" <<'EOF'
import socket, sys, threading, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print(ls.getsockname()[1], flush=True)
lock = threading.Lock()
answer = int(sys.argv[1]) if len(sys.argv) > 1 else 0
def serve(c):
    try:
        c.settimeout(5)
        data = b""
        for i in range(answer + 1):
            while b"\r\n\r\n" not in data:
                d = c.recv(65536)
                if not d:
                    return
                data += d
            head, _, data = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = 0
            for l in lines[1:]:
                n, _, v = l.partition(b":")
                if n.strip().lower() == b"content-length":
                    length = int(v.strip())
            while len(data) < length:
                d = c.recv(65536)
                if not d:
                    break
                data += d
            data = data[length:]
            with lock:
                sys.stderr.write("request %s\n" % lines[0].decode("latin-1"))
                sys.stderr.flush()
            if i < answer:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    except Exception:
        pass
    finally:
        c.close()
ls.settimeout(30)
end = time.monotonic() + 30
while time.monotonic() < end:
    try:
        c, _ = ls.accept()
    except socket.timeout:
        break
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
	gf_bg "$1" "$GF_PY" "$GF_TMP/hangup.py" "${2:-0}"
}

# requests_seen NAME - how many requests a hangup_server read.
requests_seen() {
	grep -c '^request ' "$GF_TMP/$1.err" || true
}

# make_test_ca - a CA and a certificate for 127.0.0.1 (and localhost) signed
# by it, made now with openssl: $GF_TMP/ca.pem, server.pem, server.key.
make_test_ca() {
	command -v openssl >/dev/null || fail "required tool 'openssl' is not installed"
	local d=$GF_TMP
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=gfproxy-test-ca \
		-keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null || fail "openssl: CA"
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null || fail "openssl: CSR"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/server.ext"
	openssl x509 -req -days 1 -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null ||
		fail "openssl: server certificate"
}

# tls_server NAME - a python HTTPS server with $GF_TMP/server.pem that answers
# every request with 200 and "tls: REQUEST-LINE" plus its Host. Sets <NAME>_PORT.
tls_server() {
	cat >"$GF_TMP/tls.py" <<'EOF'
import socket, ssl, sys, threading, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print(ls.getsockname()[1], flush=True)
def serve(c):
    try:
        c.settimeout(5)
        s = ctx.wrap_socket(c, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                return
            data += d
        lines = data.split(b"\r\n")
        host = [l for l in lines if l.lower().startswith(b"host:")]
        body = b"tls: " + lines[0] + b"\n" + b"".join(h + b"\n" for h in host)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        s.close()
    except Exception as e:
        sys.stderr.write("tls: %r\n" % e)
        sys.stderr.flush()
    finally:
        c.close()
ls.settimeout(30)
end = time.monotonic() + 30
while time.monotonic() < end:
    try:
        c, _ = ls.accept()
    except socket.timeout:
        break
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
	gf_bg "$1" "$GF_PY" "$GF_TMP/tls.py" "$GF_TMP/server.pem" "$GF_TMP/server.key"
}

# unix_peer NAME - the test peer on the Unix socket
# $GF_TMP/NAME.sock (systemd-socket-activate --accept); logs to NAME.err.
unix_peer() {
	local name=$1 sock=$GF_TMP/$1.sock err=$GF_TMP/$1.err i
	gf_need_peer
	: >"$err"
	setsid systemd-socket-activate --accept -l "$sock" \
		-E ASAN_OPTIONS -E UBSAN_OPTIONS -E LSAN_OPTIONS \
		"$GF_PEER_BIN" </dev/null >/dev/null 2>>"$err" 3>&- &
	GF_GROUPS+=("$!")
	GF_ERRFILES+=("$err")
	for i in $(seq 100); do
		grep -q '^Listening on' "$err" && [ -S "$sock" ] && return 0
		sleep 0.05
	done
	cat "$err" >&2
	fail "$name did not start listening on $sock"
}

# gf_has_tls - does this gfproxy's libcurl speak TLS? Not when built with
# make CURL=static-notls. gfproxy's own check answers: --check-config of an
# https route.
gf_has_tls() {
	printf '[route t]\nprefix = /\nupstream = https://127.0.0.1:1\n' >"$GF_TMP/tls-probe.conf"
	"$GF_PROXY_BIN" --check-config "$GF_TMP/tls-probe.conf" >/dev/null 2>&1
}

# refused_without_tls NAME - for a gfproxy without TLS: the https routes of
# $GF_TMP/NAME.conf are a configuration error, so --check-config exits 78
# naming the route, and a request gets 503 with the reason logged at
# priority 2.
refused_without_tls() {
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/$1.conf"
	assert_failure 78
	assert_output --partial "this libcurl has no TLS for https://"
	start_conf_proxy "$1"
	run status_of "$PURL/x"
	assert_output 503
	wait_log PROXY "^<2>$GF_TMP/$1.conf:[0-9]*: route [a-z]*: this libcurl has no TLS for https://"
}
