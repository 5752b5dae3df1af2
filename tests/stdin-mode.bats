#!/usr/bin/env bats
# A representative subset of the suite with both programs in inetd mode:
# systemd-socket-activate --inetd --accept, the connection on stdin/stdout
# and no LISTEN_FDS (StandardInput=socket in a unit).

GF_MODE=stdin
load helpers

@test "stdin mode: the children really get the connection on stdin, without LISTEN_FDS" {
	start_pair
	run gf_curl "$PURL/proxy/user/1"
	assert_success
	grep -q -- '--inetd' "/proc/$PROXY_SSA/cmdline" || fail "activator not in inetd mode"
	run grep -c '^Listening on .* as 3\.$' "$GF_TMP/PROXY.err"
	assert_output 1
}

@test "stdin mode: /proxy/user/1 reaches the backend as /user/1" {
	start_backend
	start_proxy
	run gf_curl -w ' %{http_code}' "$PURL/proxy/user/1"
	assert_success
	assert_output "user info from server backend 200"
	wait_log BACKEND '^<6>GET /user/1 200 29B'
}

@test "stdin mode: query and percent-escapes reach the backend byte for byte" {
	start_pair
	req 'GET /proxy/echo?a=%2F&b=%2e%2E+%zz HTTP/1.1' 'Host: t' 'Connection: close' >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" | resp_body >"$GF_TMP/echo"
	run cat "$GF_TMP/echo"
	assert_line 'target: /echo?a=%2F&b=%2e%2E+%zz'
}

@test "stdin mode: not under the prefix is 404, nothing forwarded" {
	start_pair
	run gf_curl -o /dev/null -w '%{http_code}' "$PURL/proxyfoo"
	assert_output 404
	assert_equal "$(accepted BACKEND)" 0
}

@test "stdin mode: several requests on one client connection use one backend connection" {
	start_pair
	run gf_curl "$PURL/proxy/user/1" "$PURL/proxy/a" "$PURL/proxy/user/1/"
	assert_success
	assert_output "user info from server backendresponse from server backenduser info from server backend"
	wait_log BACKEND '^<6>GET /user/1/ 200'
	assert_equal "$(accepted PROXY)" 1
	assert_equal "$(accepted BACKEND)" 1
}

@test "stdin mode: pipelined requests are answered in order" {
	start_pair
	{
		req 'GET /proxy/status/201 HTTP/1.1' 'Host: t'
		req 'HEAD /proxy/user/1 HTTP/1.1' 'Host: t'
		req 'GET /proxy/stream/10 HTTP/1.1' 'Host: t' 'Connection: close'
	} >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" >"$GF_TMP/resp"
	run gftool responses --methods GET,HEAD,GET <"$GF_TMP/resp"
	assert_output "GET 201 length b'201 Created\\n'
HEAD 200 none b''
GET 200 chunked b'\\x07&Ed\\x83\\xa2\\xc1\\xe0\\xff\\x1e'
leftover 0"
}

@test "stdin mode: a chunked request body reaches the backend intact" {
	start_pair
	run gftool upload --port "$PROXY_PORT" --path /proxy/upload --size 1000003 --chunked
	assert_success
	assert_line "length: 1000003"
	assert_line "sha256: $(gftool pattern-sha256 1000003)"
}

@test "stdin mode: server-sent events arrive as they are sent" {
	start_pair
	run gftool sse --port "$PROXY_PORT" --path /proxy/sse
	assert_success
	local first last
	first=$(sed -n 's/^\([0-9]*\) data: event 1$/\1/p' <<<"$output")
	last=$(sed -n 's/^\([0-9]*\) data: event 10$/\1/p' <<<"$output")
	[ -n "$first" ] && [ -n "$last" ] || fail "$output"
	[ $((last - first)) -ge 750 ] || fail "events 1..10 spread over only $((last - first)) ms"
}

@test "stdin mode: X-Forwarded-For carries the client's address" {
	start_pair
	run gf_curl "$PURL/proxy/echo"
	assert_line "header: X-Forwarded-For: 127.0.0.1"
}

@test "stdin mode: connection refused is a 502, logged" {
	local dead; dead=$(gf_free_port)
	start_proxy --upstream "http://127.0.0.1:$dead"
	run gf_curl -o /dev/null -w '%{http_code}' "$PURL/proxy/x"
	assert_output 502
	wait_log PROXY "^<3>GET /proxy/x -> http://127.0.0.1:$dead/x 502 .*: .+"
}

@test "stdin mode: one <6> log line per request" {
	start_pair
	run gf_curl "$PURL/proxy/user/1"
	wait_log PROXY '^<6>GET /proxy/user/1 -> '
	run proxy_log
	assert_output --regexp "^<6>GET /proxy/user/1 -> http://127\.0\.0\.1:$BACKEND_PORT/user/1 200 29B [0-9]+\.[0-9]ms$"
}

@test "stdin mode: the process exits when the client closes" {
	start_pair
	run gf_curl "$PURL/proxy/user/1"
	wait_children_gone "$PROXY_SSA" 3 || fail "gfproxy still running after its client closed"
	wait_children_gone "$BACKEND_SSA" 3 || fail "backend still running after gfproxy exited"
}
