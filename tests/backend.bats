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

@test "backend: --help documents the answers and exits 0" {
	gf_need_backend
	run "$GF_BACKEND_BIN" --help
	assert_success
	assert_output --partial '/user/1, /user/1/   200 "user info from server backend"'
	assert_output --partial 'anything else       200 "response from server backend"'
	refute_output --partial 'test'
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

@test "backend: the test peer's paths are ordinary paths to the sample" {
	start_backend
	local p
	for p in /echo /bytes/10 /status/500 /ws /close; do
		run gf_curl -w ' %{http_code}' "http://127.0.0.1:$BACKEND_PORT$p"
		assert_success
		assert_output "response from server backend 200"
	done
}

@test "backend: it has no test endpoints to turn on" {
	gf_need_backend
	run "$GF_BACKEND_BIN" --test-endpoints
	assert_failure 64
}

@test "backend: a request it cannot read is answered and logged once, with why" {
	start_backend
	printf 'GET /a HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n' >"$GF_TMP/req"
	run raw "$BACKEND_PORT" <"$GF_TMP/req"
	assert_line --index 0 $'HTTP/1.1 400 Bad Request\r'
	wait_log BACKEND '^<4>'
	run backend_log
	assert_output --regexp '^<4>GET /a 400 0B: .+$'
}

@test "backend: a request body is read and counted, never answered differently" {
	start_backend
	run gf_curl -w ' %{http_code}' --data-binary 'twelve bytes' "http://127.0.0.1:$BACKEND_PORT/user/1"
	assert_output "user info from server backend 200"
	wait_log BACKEND '^<6>POST /user/1 200 29B$'
}

