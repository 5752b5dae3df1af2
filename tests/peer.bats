#!/usr/bin/env bats
# The test peer (tests/peer, build/gfpeer) on its own: the endpoints the
# other suites drive behave as its --help says, so that a failure elsewhere
# is the proxy's. Its other answers are gfproxy-backend's (backend.bats).

load helpers

@test "peer: --help documents the endpoints and says it is a test tool" {
	gf_need_peer
	run "$GF_PEER_BIN" --help
	assert_success
	assert_output --partial "test tool"
	local e
	for e in /echo /bytes/N /stream/N /status/CODE /delay/MS /sse /upload /close /ws \
		/trailers /early-hints /cookies /continue; do
		assert_output --partial "$e"
	done
}

@test "peer: any other path gets the sample backend's answers" {
	start_peer
	run gf_curl "http://127.0.0.1:$BACKEND_PORT/user/1" "http://127.0.0.1:$BACKEND_PORT/echo/x"
	assert_output "user info from server backendresponse from server backend"
	wait_log BACKEND '^<6>GET /echo/x 200 28B$'
}

@test "peer: /echo reports method, target as sent, headers in order and body digest" {
	start_peer
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

@test "peer: /bytes/N sends N pattern bytes with Content-Length" {
	start_peer
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

@test "peer: /stream/N sends the same bytes chunked" {
	start_peer
	run gftool download --port "$BACKEND_PORT" --path /stream/100000 --expect 100000
	assert_success
	assert_line "framing chunked"
	assert_line "length: 100000"
	assert_line "sha256: $(gftool pattern-sha256 100000)"
}

@test "peer: /status/CODE answers that status" {
	start_peer
	run gf_curl -w ' %{http_code}' "http://127.0.0.1:$BACKEND_PORT/status/418"
	assert_success
	assert_output "418 I'm a teapot
 418"
	run gf_curl -w '%{http_code} %{size_download}' "http://127.0.0.1:$BACKEND_PORT/status/204"
	assert_output "204 0"
	run gf_curl -w '%{http_code}' "http://127.0.0.1:$BACKEND_PORT/status/abc"
	assert_output --partial "400"
}

@test "peer: /delay/MS answers after MS milliseconds" {
	start_peer
	run gf_curl -w ' %{time_total}' "http://127.0.0.1:$BACKEND_PORT/delay/600"
	assert_success
	assert_output --regexp '^delayed 600 ms'
	local t=${output##* }
	"$GF_PY" -c "import sys; sys.exit(0 if 0.55 <= $t < 3 else 1)" || fail "took ${t}s"
}

@test "peer: /sse sends 10 events 100 ms apart" {
	start_peer
	run gftool sse --port "$BACKEND_PORT" --path /sse
	assert_success
	assert_line "framing chunked"
	run grep -c 'data: event' <<<"$output"
	assert_output 10
}

@test "peer: /upload reports length and sha256 of a chunked body" {
	start_peer
	run gftool upload --port "$BACKEND_PORT" --path /upload --size 300000 --chunked
	assert_success
	local sha; sha=$(gftool pattern-sha256 300000)
	assert_line "length: 300000"
	assert_line "sha256: $sha"
	assert_line "expected-sha256: $sha"
}

@test "peer: /close promises more than it sends, then closes" {
	start_peer
	run gf_curl -o "$GF_TMP/body" "http://127.0.0.1:$BACKEND_PORT/close"
	assert_failure 18
	assert_equal "$(stat -c %s "$GF_TMP/body")" 100
}
