#!/usr/bin/env bats
# What the client gets, and what is logged, when the upstream fails.

load helpers

# Seconds (float) since $1, a value of $EPOCHREALTIME.
since() {
	"$GF_PY" -c "import sys; print('%.2f' % ($EPOCHREALTIME - $1))"
}

@test "upstream: connection refused is a 502 with a short text body, logged" {
	local dead; dead=$(gf_free_port)
	start_proxy --upstream "http://127.0.0.1:$dead"
	run gf_curl -i "$PURL/proxy/user/1"
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 502 Bad Gateway\r$'
	assert_line $'Content-Type: text/plain; charset=utf-8\r'
	assert_regex "${lines[-1]}" '^502 Bad Gateway'
	[ "${#lines[-1]}" -lt 200 ] || fail "long error body: ${lines[-1]}"
	wait_log PROXY "^<3>GET /proxy/user/1 -> http://127.0.0.1:$dead/user/1 502 .*: .+"
}

@test "upstream: no response head within --timeout is a 504, logged" {
	start_pair --timeout 1
	local t0=$EPOCHREALTIME
	run gf_curl -i "$PURL/proxy/delay/2500"
	local took; took=$(since "$t0")
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 504 Gateway Timeout\r$'
	assert_regex "${lines[-1]}" '^504 Gateway Timeout'
	[ "${#lines[-1]}" -lt 200 ] || fail "long error body: ${lines[-1]}"
	"$GF_PY" -c "import sys; sys.exit(0 if 0.9 <= $took < 3 else 1)" || fail "answered after ${took}s"
	wait_log PROXY '^<3>GET /proxy/delay/2500 -> http://127.0.0.1:[0-9]+/delay/2500 504 .*: .+'
}

@test "upstream: a response slower than the default but within --timeout passes" {
	start_pair --timeout 3
	run gf_curl -w ' %{http_code}' "$PURL/proxy/delay/1500"
	assert_output --regexp '^delayed 1500 ms
 200$'
}

@test "upstream: --connect-timeout bounds the connect separately from --timeout" {
	# A listener whose accept queue is full: connects to it hang.
	gf_bg HOLE "$GF_PY" "$GF_TOOLS" blackhole --lifetime 20
	start_proxy --upstream "http://127.0.0.1:$HOLE_PORT" --connect-timeout 1 --timeout 30
	local t0=$EPOCHREALTIME
	run gf_curl -i "$PURL/proxy/user/1"
	local took; took=$(since "$t0")
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 504 '
	"$GF_PY" -c "import sys; sys.exit(0 if 0.9 <= $took < 4 else 1)" || fail "answered after ${took}s"
	wait_log PROXY '^<3>GET /proxy/user/1 -> .* 504 .*: .+'
}

@test "upstream: a backend dying mid-body leaves the client a truncated response" {
	start_pair
	run gf_curl -o "$GF_TMP/body" "$PURL/proxy/close"
	# 18: transfer closed with outstanding read data remaining
	assert_failure 18
	local got; got=$(stat -c %s "$GF_TMP/body")
	[ "$got" -lt 1000 ] || fail "got all $got promised bytes"
	wait_log PROXY '^<3>GET /proxy/close -> .* 200 .*: .+'
}

@test "upstream: a backend dying mid-body never looks complete to a pipelining client" {
	start_pair
	{
		req 'GET /proxy/close HTTP/1.1' 'Host: t'
		req 'GET /proxy/user/1 HTTP/1.1' 'Host: t' 'Connection: close'
	} >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" >"$GF_TMP/resp"
	run gftool responses --methods GET <"$GF_TMP/resp"
	assert_line --regexp '^GET 200 truncated'
	# nothing after the cut: the second request is not answered on this connection
	run grep -ac 'user info from server backend' "$GF_TMP/resp"
	assert_output 0
}

@test "upstream: each request to a dead upstream gets its own 502" {
	local dead; dead=$(gf_free_port)
	start_proxy --upstream "http://127.0.0.1:$dead"
	run gf_curl -o /dev/null -o /dev/null -w '%{http_code} ' "$PURL/proxy/a" "$PURL/proxy/b"
	assert_output "502 502 "
}

@test "upstream: an answer held until its body, cut before the body's first byte, is a 502" {
	# The tunnel's path holds the head of an answer other than 101 to an
	# upgrade until its body comes: nothing reached the client, so it gets
	# our error page, not a 200 promising 100 bytes and the close.
	printf 'HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 100\n' >"$GF_TMP/head"
	gf_bg CUT "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head" --cut
	start_proxy --upstream "http://127.0.0.1:$CUT_PORT"
	run gf_curl -i -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
		-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
		"$PURL/proxy/ws"
	assert_success
	assert_line --index 0 --regexp $'^HTTP/1.1 502 Bad Gateway\r$'
	assert_regex "${lines[-1]}" '^502 Bad Gateway'
	refute_line $'Content-Length: 100\r'
	wait_log PROXY '^<3>GET /proxy/ws -> .* 502 0B .*: upstream closed before the end of the body$'
	run proxy_log
	assert_equal "${#lines[@]}" 1
}
