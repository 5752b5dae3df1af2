#!/usr/bin/env bats
# gfproxy-backend on its own, under systemd-socket-activate (fd 3 unless
# GF_MODE says otherwise).

load helpers

@test "backend: /user/1 answers 200 with the user body, type, length and date" {
	start_backend
	run gf_curl -i "http://127.0.0.1:$BACKEND_PORT/user/1"
	assert_success
	assert_line --regexp $'^HTTP/1.1 200 OK\r$'
	assert_line $'Content-Type: text/plain; charset=utf-8\r'
	assert_line $'Content-Length: 29\r'
	assert_line --regexp $'^Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT\r$'
	assert_equal "${lines[-1]}" "user info from server backend"
}

@test "backend: /user/1/ with a trailing slash is the user too" {
	start_backend
	run gf_curl "http://127.0.0.1:$BACKEND_PORT/user/1/"
	assert_success
	assert_output "user info from server backend"
}

@test "backend: any other path answers 200 response from server backend" {
	start_backend
	local p
	for p in / /user /user/2 /user/1/x '/anything?q=1'; do
		run gf_curl -o /dev/stdout -w ' %{http_code} %{size_download}' "http://127.0.0.1:$BACKEND_PORT$p"
		assert_success
		assert_output "response from server backend 200 28"
	done
}

@test "backend: every method, standard or not, gets the default answer" {
	start_backend
	local m
	for m in GET POST PUT PATCH DELETE OPTIONS PROPFIND MKCOL; do
		run gf_curl -X "$m" -w ' %{http_code}' "http://127.0.0.1:$BACKEND_PORT/user/1"
		assert_success
		assert_output "user info from server backend 200"
	done
}

@test "backend: HEAD gets the head with Content-Length and no body" {
	start_backend
	req 'HEAD /user/1 HTTP/1.1' 'Host: x' 'Connection: close' >"$GF_TMP/req"
	raw "$BACKEND_PORT" <"$GF_TMP/req" >"$GF_TMP/resp"
	run cat "$GF_TMP/resp"
	assert_line --index 0 $'HTTP/1.1 200 OK\r'
	assert_line $'Content-Length: 29\r'
	refute_output --partial "user info"
	assert_ends_with_head "$GF_TMP/resp"
}

@test "backend: serves several requests on one keep-alive connection" {
	start_backend
	run gf_curl "http://127.0.0.1:$BACKEND_PORT/user/1" "http://127.0.0.1:$BACKEND_PORT/a" \
		"http://127.0.0.1:$BACKEND_PORT/user/1/"
	assert_success
	assert_output "user info from server backendresponse from server backenduser info from server backend"
	assert_equal "$(accepted BACKEND)" 1
	wait_log BACKEND '^<6>GET /user/1/ 200 29B'
	assert_equal "$(backend_log | wc -l)" 3
}

@test "backend: pipelined requests are answered in order" {
	start_backend
	{
		req 'GET /a HTTP/1.1' 'Host: x'
		req 'GET /user/1 HTTP/1.1' 'Host: x'
		req 'DELETE /b HTTP/1.1' 'Host: x' 'Content-Length: 3'
		printf 'abc'
		req 'GET /user/1/ HTTP/1.1' 'Host: x' 'Connection: close'
	} >"$GF_TMP/req"
	run raw "$BACKEND_PORT" <"$GF_TMP/req"
	assert_success
	run grep -aoE 'user info from server backend|response from server backend' <<<"$output"
	assert_output $'response from server backend\nuser info from server backend\nresponse from server backend\nuser info from server backend'
}

@test "backend: exits once the client has closed the connection" {
	start_backend
	run gf_curl "http://127.0.0.1:$BACKEND_PORT/user/1"
	assert_success
	wait_children_gone "$BACKEND_SSA" 3 || fail "backend process still running after the client closed"
	run grep -c '^Child .* died with code 0$' "$GF_TMP/BACKEND.err"
	assert_output 1
}

@test "backend: --help documents the test endpoints and exits 0" {
	gf_need_backend
	run "$GF_BACKEND_BIN" --help
	assert_success
	local e
	for e in --test-endpoints /echo /bytes/N /stream/N /status/CODE /delay/MS /sse /upload /close; do
		assert_output --partial "$e"
	done
}

@test "backend: --version prints the name and version" {
	gf_need_backend
	run "$GF_BACKEND_BIN" --version
	assert_success
	assert_output --regexp '^gfproxy-backend [0-9]+\.[0-9]+\.[0-9]+'
}

@test "backend: an unknown option exits 64" {
	gf_need_backend
	run "$GF_BACKEND_BIN" --no-such-option
	assert_failure 64
}

@test "backend: stdin a regular file (no socket) exits 66 with a message" {
	gf_need_backend
	echo hi >"$GF_TMP/file"
	run env -u LISTEN_FDS -u LISTEN_PID "$GF_BACKEND_BIN" <"$GF_TMP/file"
	assert_failure 66
	assert_output --partial "not a stream socket"
}

@test "backend: without --test-endpoints /echo is an ordinary path" {
	start_backend
	run gf_curl "http://127.0.0.1:$BACKEND_PORT/echo"
	assert_success
	assert_output "response from server backend"
}

@test "backend: /echo reports method, target as sent, headers in order and body digest" {
	start_backend --test-endpoints
	{
		req 'PUT /echo?a=%2F&b=%zz HTTP/1.1' 'Host: h.example' 'X-One: 1' 'x-two: 2' 'X-One: 3' \
			'Content-Length: 5' 'Connection: close'
		printf 'hello'
	} >"$GF_TMP/req"
	run raw "$BACKEND_PORT" <"$GF_TMP/req"
	assert_success
	run resp_body <<<"$output"
	assert_output "method: PUT
target: /echo?a=%2F&b=%zz
version: HTTP/1.1
header: Host: h.example
header: X-One: 1
header: x-two: 2
header: X-One: 3
header: Content-Length: 5
header: Connection: close
body-length: 5
body-sha256: $(printf hello | sha256sum | cut -d' ' -f1)"
}

@test "backend: /bytes/N sends N pattern bytes with Content-Length" {
	start_backend --test-endpoints
	run gftool download --port "$BACKEND_PORT" --path /bytes/100000 --expect 100000
	assert_success
	assert_line "framing length"
	assert_line "length: 100000"
	local want; want=$(gftool pattern-sha256 100000)
	assert_line "sha256: $want"
	# The pattern as documented: byte i is (i * 31 + 7) & 0xff.
	run bash -c "curl -s --max-time 5 http://127.0.0.1:$BACKEND_PORT/bytes/4 | od -An -tu1"
	assert_output --regexp '^ +7 +38 +69 +100$'
}

@test "backend: /stream/N sends the same bytes chunked" {
	start_backend --test-endpoints
	run gftool download --port "$BACKEND_PORT" --path /stream/100000 --expect 100000
	assert_success
	assert_line "framing chunked"
	assert_line "length: 100000"
	assert_line "sha256: $(gftool pattern-sha256 100000)"
}

@test "backend: /status/CODE answers that status" {
	start_backend --test-endpoints
	run gf_curl -w ' %{http_code}' "http://127.0.0.1:$BACKEND_PORT/status/418"
	assert_success
	assert_output "418 I'm a teapot
 418"
	run gf_curl -w '%{http_code} %{size_download}' "http://127.0.0.1:$BACKEND_PORT/status/204"
	assert_output "204 0"
	run gf_curl -w '%{http_code}' "http://127.0.0.1:$BACKEND_PORT/status/abc"
	assert_output --partial "400"
}

@test "backend: /delay/MS answers after MS milliseconds" {
	start_backend --test-endpoints
	run gf_curl -w ' %{time_total}' "http://127.0.0.1:$BACKEND_PORT/delay/600"
	assert_success
	assert_output --regexp '^delayed 600 ms'
	local t=${output##* }
	"$GF_PY" -c "import sys; sys.exit(0 if 0.55 <= $t < 3 else 1)" || fail "took ${t}s"
}

@test "backend: /sse sends 10 events 100 ms apart" {
	start_backend --test-endpoints
	run gftool sse --port "$BACKEND_PORT" --path /sse
	assert_success
	assert_line "framing chunked"
	run grep -c 'data: event' <<<"$output"
	assert_output 10
}

@test "backend: /upload reports length and sha256 of a chunked body" {
	start_backend --test-endpoints
	run gftool upload --port "$BACKEND_PORT" --path /upload --size 300000 --chunked
	assert_success
	local sha; sha=$(gftool pattern-sha256 300000)
	assert_line "length: 300000"
	assert_line "sha256: $sha"
	assert_line "expected-sha256: $sha"
}

@test "backend: /close promises more than it sends, then closes" {
	start_backend --test-endpoints
	run gf_curl -o "$GF_TMP/body" "http://127.0.0.1:$BACKEND_PORT/close"
	assert_failure 18
	assert_equal "$(stat -c %s "$GF_TMP/body")" 100
}
