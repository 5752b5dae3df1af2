#!/usr/bin/env bats
# An Upgrade request goes through the same rewriting, the same failure
# path and the same writer of the answer as any other request: only a 101
# opens a tunnel.

load helpers
load config_helpers

WS=(-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'
	-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')

# canned_upstream NAME: an upstream answering every request with the head in
# $GF_TMP/head (LF line ends, made CRLF) and "hello\n" after its blank line.
canned_upstream() {
	gf_bg "$1" "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
}

@test "upgrade: the route's response rules apply to an answer to an Upgrade request as to any other" {
	printf 'HTTP/1.1 403 Forbidden\nContent-Length: 6\n' >"$GF_TMP/head"
	canned_upstream CANNED
	conf rules <<-EOF
	[route r]
	prefix = /
	upstream = http://127.0.0.1:$CANNED_PORT
	response-header-set = X-Rule: applied
	EOF
	start_conf_proxy rules
	run gf_curl -i "$PURL/x"
	assert_line --index 0 --regexp $'^HTTP/1.1 403 Forbidden\r$'
	assert_line $'X-Rule: applied\r'
	run gf_curl -i "${WS[@]}" "$PURL/ws"
	assert_line --index 0 --regexp $'^HTTP/1.1 403 Forbidden\r$'
	assert_line $'X-Rule: applied\r'
}

@test "upgrade: a dot segment with Upgrade gets the plain path's 400, reason and log line" {
	printf 'HTTP/1.1 200 OK\nContent-Length: 6\n' >"$GF_TMP/head"
	canned_upstream CANNED
	start_proxy --prefix /proxy --upstream "http://127.0.0.1:$CANNED_PORT"
	run gf_curl --path-as-is "$PURL/proxy/../x"
	assert_output '400 Bad Request: dot segment in path'
	run gf_curl --path-as-is "${WS[@]}" "$PURL/proxy/../ws"
	assert_output '400 Bad Request: dot segment in path'
	wait_log PROXY '^<4>GET /proxy/\.\./ws 400 '
	run proxy_log
	assert_line --regexp '^<4>GET /proxy/\.\./x 400 [0-9]+B [0-9.]+ms: dot segment in path$'
	assert_line --regexp '^<4>GET /proxy/\.\./ws 400 [0-9]+B [0-9.]+ms: dot segment in path$'
	refute_output --partial ' -> '
}

@test "upgrade: an answer other than 101 reaches the client whole: reason, body and its length" {
	printf 'HTTP/1.1 400 Not A WebSocket Endpoint\nContent-Type: text/plain\nContent-Length: 6\n' \
		>"$GF_TMP/head"
	canned_upstream CANNED
	start_proxy --prefix / --upstream "http://127.0.0.1:$CANNED_PORT"
	gf_curl -i "${WS[@]}" "$PURL/ws" >"$GF_TMP/out"
	run cat "$GF_TMP/out"
	assert_line --index 0 --regexp $'^HTTP/1.1 400 Not A WebSocket Endpoint\r$'
	assert_line $'Content-Length: 6\r'
	assert_line $'Connection: close\r'
	refute_line --regexp '^Content-Length: 0'
	run resp_body <"$GF_TMP/out"
	assert_output hello
	# A refusal is the upstream's answer, not a failure of ours: no reason logged.
	wait_log PROXY '^<4>GET /ws -> .* 400 6B [0-9.]+ms$'
}

@test "upgrade: a chunked answer other than 101 is relayed as chunks, and nothing after its end" {
	# The body "hello" in chunks, ended; the upstream's "hello\n" after it is not the answer's.
	printf 'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n0\n' >"$GF_TMP/head"
	canned_upstream CANNED
	start_proxy --prefix / --upstream "http://127.0.0.1:$CANNED_PORT"
	req 'GET /page HTTP/1.1' 'Host: x' 'Connection: Upgrade' 'Upgrade: websocket' \
		'Sec-WebSocket-Version: 13' 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' |
		raw "$PROXY_PORT" >"$GF_TMP/out"
	run cat "$GF_TMP/out"
	assert_line --index 0 --regexp $'^HTTP/1.1 200 OK\r$'
	assert_line $'Transfer-Encoding: chunked\r'
	run resp_body <"$GF_TMP/out"
	assert_output $'5\r\nhello\r\n0\r\n\r'
	wait_log PROXY '^<6>GET /page -> .* 200 5B [0-9.]+ms$'
}

@test "upgrade: an answer other than 101 that ends at the close reaches the client whole, in chunks" {
	# One connection: the request head read, a 200 without a length, 4978 bytes, the close.
	gf_bg CLOSER "$GF_PY" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
s.settimeout(20)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
c.settimeout(5)
head = b""
while b"\r\n\r\n" not in head:
    d = c.recv(4096)
    if not d:
        break
    head += d
c.sendall(b"HTTP/1.1 200 Here It Is\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 4977 + b"\n")
c.close()
'
	start_proxy --prefix / --upstream "http://127.0.0.1:$CLOSER_PORT"
	gf_curl -i "${WS[@]}" "$PURL/static.txt" >"$GF_TMP/out"
	run cat "$GF_TMP/out"
	assert_line --index 0 --regexp $'^HTTP/1.1 200 Here It Is\r$'
	assert_line $'Transfer-Encoding: chunked\r'
	run resp_body <"$GF_TMP/out"
	assert_equal "${#output}" 4977
	wait_log PROXY '^<6>GET /static.txt -> .* 200 4978B '
}

@test "upgrade: with preserve-host = no the upstream gets its own authority as Host, once" {
	# An upstream that refuses a request without Host (400), as HTTP/1.1 requires.
	printf 'HTTP/1.1 200 OK\nContent-Length: 6\n' >"$GF_TMP/head"
	gf_bg HOSTY "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head" --require-host
	conf nohost <<-EOF
	[route r]
	prefix = /
	upstream = http://127.0.0.1:$HOSTY_PORT
	preserve-host = no
	[route keep]
	prefix = /keep
	upstream = http://127.0.0.1:$HOSTY_PORT
	EOF
	start_conf_proxy nohost
	run gf_curl -i "${WS[@]}" -H 'Host: client.example' "$PURL/ws"
	assert_line --index 0 --regexp $'^HTTP/1.1 200 OK\r$'
	# The plain path's libcurl says the same; preserve-host = yes (the
	# default) passes the client's, and only it.
	run gf_curl -i -H 'Host: client.example' "$PURL/page"
	assert_line --index 0 --regexp $'^HTTP/1.1 200 OK\r$'
	run gf_curl -i "${WS[@]}" -H 'Host: client.example' "$PURL/keep/ws"
	assert_line --index 0 --regexp $'^HTTP/1.1 200 OK\r$'
	run grep -a '^host ' "$GF_TMP/HOSTY.err"
	assert_output "host 127.0.0.1:$HOSTY_PORT
host 127.0.0.1:$HOSTY_PORT
host client.example"
}
