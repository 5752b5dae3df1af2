#!/usr/bin/env bats
# One gfproxy per client connection: keep-alive, pipelining, reuse of the
# upstream connection, and when the process ends.

load helpers

@test "connection: several requests on one client connection use one backend connection" {
	start_pair
	run gf_curl "$PURL/proxy/user/1" "$PURL/proxy/a" "$PURL/proxy/echo" "$PURL/proxy/user/1/"
	assert_success
	assert_output --partial "user info from server backendresponse from server backendmethod: GET"
	assert_equal "$(accepted PROXY)" 1
	wait_log BACKEND '^<6>GET /user/1/ 200'
	assert_equal "$(backend_log | wc -l)" 4
	# systemd-socket-activate logs every connection it accepts: the backend
	# got one for all four requests, so libcurl reused it.
	assert_equal "$(accepted BACKEND)" 1
}

@test "connection: each request on a connection goes with its own method and body, none of the last one's" {
	start_pair
	# One client connection, one upstream handle: a POST with a body, a GET,
	# a chunked PUT, a HEAD, a GET, a PATCH, a GET.
	run gf_curl -d abc "$PURL/proxy/echo" \
		--next -s "$PURL/proxy/echo" \
		--next -s -X PUT -H 'Transfer-Encoding: chunked' --data-binary 12345 "$PURL/proxy/echo" \
		--next -s -I "$PURL/proxy/user/1" \
		--next -s "$PURL/proxy/echo" \
		--next -s -X PATCH --data-binary xy "$PURL/proxy/echo" \
		--next -s "$PURL/proxy/echo"
	assert_success
	run grep -aE '^(method|body-length|header: (Content-Length|Transfer-Encoding))|^HTTP/' <<<"${output//$'\r'/}"
	assert_output "method: POST
header: Content-Length: 3
body-length: 3
method: GET
body-length: 0
method: PUT
header: Transfer-Encoding: chunked
body-length: 5
HTTP/1.1 200 OK
method: GET
body-length: 0
method: PATCH
header: Content-Length: 2
body-length: 2
method: GET
body-length: 0"
	assert_equal "$(accepted PROXY)" 1
	wait_log BACKEND '^<6>GET /echo 200'
	run backend_log
	assert_line --index 3 --regexp '^<6>HEAD /user/1 200'
}

@test "connection: pipelined requests are answered in order" {
	start_pair
	{
		req 'GET /proxy/status/201 HTTP/1.1' 'Host: t'
		req 'GET /proxy/user/1 HTTP/1.1' 'Host: t'
		req 'POST /proxy/upload HTTP/1.1' 'Host: t' 'Content-Length: 5'
		printf 'hello'
		req 'GET /proxy/stream/10 HTTP/1.1' 'Host: t'
		req 'GET /proxy/status/202 HTTP/1.1' 'Host: t' 'Connection: close'
	} >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" >"$GF_TMP/resp"
	run gftool responses --methods GET,GET,POST,GET,GET <"$GF_TMP/resp"
	assert_success
	assert_output "GET 201 length b'201 Created\\n'
GET 200 length b'user info from server backend'
POST 200 length b'length: 5\\nsha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\\n'
GET 200 chunked b'\\x07&Ed\\x83\\xa2\\xc1\\xe0\\xff\\x1e'
GET 202 length b'202 Accepted\\n'
leftover 0"
	assert_equal "$(accepted BACKEND)" 1
}

@test "connection: the process exits when the client closes" {
	start_pair
	run gf_curl "$PURL/proxy/user/1"
	assert_success
	wait_children_gone "$PROXY_SSA" 3 || fail "gfproxy still running after its client closed"
	# and its backend connection went with it
	wait_children_gone "$BACKEND_SSA" 3 || fail "backend still connected after gfproxy exited"
	run grep -c '^Child .* died with code 0$' "$GF_TMP/PROXY.err"
	assert_output 1
}

@test "connection: Connection: close from the client ends the connection after the response" {
	start_pair
	req 'GET /proxy/user/1 HTTP/1.1' 'Host: t' 'Connection: close' >"$GF_TMP/req"
	# raw waits up to 5 s of silence; the proxy must close well before
	run timeout 4 "$GF_PY" "$GF_TOOLS" raw --port "$PROXY_PORT" --idle 3 <"$GF_TMP/req"
	assert_success
	assert_line $'Connection: close\r'
	assert_line --partial "user info from server backend"
}

@test "connection: an HTTP/1.0 client without keep-alive gets one response and a close" {
	start_pair
	req 'GET /proxy/stream/1000 HTTP/1.0' 'Host: t' >"$GF_TMP/req"
	raw "$PROXY_PORT" --idle 3 <"$GF_TMP/req" >"$GF_TMP/resp"
	run gftool responses --methods GET <"$GF_TMP/resp"
	assert_success
	# no chunked coding for a 1.0 client: the body ends at the close
	assert_line --regexp '^GET 200 close '
	run grep -ac 'Transfer-Encoding' "$GF_TMP/resp"
	assert_output 0
}

@test "connection: an idle keep-alive connection is closed after 15 s" {
	start_pair
	run "$GF_PY" - "$PROXY_PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"GET /proxy/user/1 HTTP/1.1\r\nHost: t\r\n\r\n")
buf = b""
while not buf.endswith(b"user info from server backend"):
    d = s.recv(4096)
    if not d:
        sys.exit("closed before the response")
    buf += d
t0 = time.monotonic()
while s.recv(4096):
    pass
print("closed after %.1f s" % (time.monotonic() - t0))
EOF
	assert_success
	local t=${output#closed after }; t=${t% s}
	"$GF_PY" -c "import sys; sys.exit(0 if 14.0 <= $t <= 17.5 else 1)" || fail "$output"
	wait_children_gone "$PROXY_SSA" 3 || fail "gfproxy still running after the idle close"
}
