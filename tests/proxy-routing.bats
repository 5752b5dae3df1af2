#!/usr/bin/env bats
# Which requests gfproxy forwards, and as what target.

load helpers

# echo_target PATH - the target the backend's /echo saw for a raw request.
echo_target() {
	req "GET $1 HTTP/1.1" 'Host: t' 'Connection: close' >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" | resp_body | sed -n 's/^target: //p'
}

@test "routing: /proxy/user/1 reaches the backend as /user/1" {
	start_backend
	start_proxy
	run gf_curl -w ' %{http_code}' "$PURL/proxy/user/1"
	assert_success
	assert_output "user info from server backend 200"
	wait_log BACKEND '^<6>GET /user/1 200 29B'
}

@test "routing: /proxy and /proxy/ both reach the backend as /" {
	start_backend
	start_proxy
	run gf_curl "$PURL/proxy" "$PURL/proxy/"
	assert_success
	assert_output "response from server backendresponse from server backend"
	wait_log BACKEND '^<6>GET / 200 28B'
	run backend_log
	assert_output $'<6>GET / 200 28B\n<6>GET / 200 28B'
}

@test "routing: a query directly after the prefix keeps its place" {
	start_pair
	run gf_curl "$PURL/proxy?x=1"
	assert_output 'response from server backend'
	wait_log BACKEND '^<6>GET /\?x=1 200 28B$'
}

@test "routing: query string and every percent-escape reach the backend byte for byte" {
	start_pair
	run echo_target '/proxy/echo?a=%2F&b=%2f%20+x&c=%zz&d=%00&e=/../&f'
	assert_output '/echo?a=%2F&b=%2f%20+x&c=%zz&d=%00&e=/../&f'
	run echo_target '/proxy/a%2Fb/%41%7e?q=%2F'
	# not /echo, so the default answer: look at the backend's own log line
	wait_log BACKEND '^<6>GET /a%2Fb/%41%7e\?q=%2F 200 28B$'
}

@test "routing: an escaped slash in the path is not decoded into a separator" {
	start_pair
	run gf_curl --path-as-is "$PURL/proxy/user%2F1"
	assert_success
	# /user%2F1 is not /user/1 to the backend
	assert_output "response from server backend"
	wait_log BACKEND '^<6>GET /user%2F1 200'
}

@test "routing: / is not under the prefix: 404, nothing forwarded" {
	start_backend
	start_proxy
	run gf_curl -w ' %{http_code}' "$PURL/"
	assert_success
	assert_output --regexp ' 404$'
	assert_equal "$(accepted BACKEND)" 0
}

@test "routing: /proxyfoo only shares a string prefix: 404, nothing forwarded" {
	start_backend
	start_proxy
	local p
	for p in /proxyfoo /proxyfoo/user/1 /prox /Proxy/user/1 /other/proxy/user/1; do
		run gf_curl -o /dev/null -w '%{http_code}' "$PURL$p"
		assert_output 404
	done
	assert_equal "$(accepted BACKEND)" 0
	run backend_log
	assert_output ''
}

@test "routing: --prefix changes what is forwarded and stripped" {
	start_backend
	start_proxy --prefix /api/v1
	run gf_curl -w ' %{http_code}' "$PURL/api/v1/user/1"
	assert_output "user info from server backend 200"
	run gf_curl -o /dev/null -w '%{http_code}' "$PURL/proxy/user/1"
	assert_output 404
	run gf_curl -o /dev/null -w '%{http_code}' "$PURL/api/v1x"
	assert_output 404
	wait_log BACKEND '^<6>GET /user/1 200'
	assert_equal "$(backend_log | wc -l)" 1
}

@test "routing: --prefix with a trailing slash matches the same paths" {
	start_backend
	start_proxy --prefix /api/
	run gf_curl -w ' %{http_code}' "$PURL/api/user/1"
	assert_output "user info from server backend 200"
	run gf_curl -w ' %{http_code}' "$PURL/api"
	assert_output "response from server backend 200"
}

@test "routing: --upstream sends requests to that server" {
	start_backend
	gf_activate OTHER "$GF_BACKEND_BIN"
	start_proxy --upstream "http://127.0.0.1:$OTHER_PORT"
	run gf_curl "$PURL/proxy/user/1"
	assert_output "user info from server backend"
	wait_log OTHER '^<6>GET /user/1 200'
	assert_equal "$(accepted BACKEND)" 0
}

@test "routing: --upstream with a base path joins it with exactly one slash" {
	start_backend
	start_proxy --upstream "$BACKEND_URL/base/"
	run gf_curl "$PURL/proxy/x?y=1"
	assert_success
	wait_log BACKEND '^<6>GET /base/x\?y=1 200'
}

@test "path safety: . and .. segments, raw or %2e-escaped, are 400 and never forwarded" {
	start_pair
	local t
	for t in /proxy/../etc/passwd /proxy/./user/1 /proxy/%2e%2e/x /proxy/%2E%2E/x \
		/proxy/.%2e/x /proxy/%2e./x /proxy/a/%2e/b /proxy/a/.. /proxy/a/%2e%2E \
		'/proxy/..?q=1' /proxy/a/..%2fb /proxy/a%2f..%2fb '/proxy/a/.%2E#f'; do
		req "GET $t HTTP/1.1" 'Host: t' 'Connection: close' >"$GF_TMP/req"
		run raw "$PROXY_PORT" <"$GF_TMP/req"
		assert_success
		assert_line --index 0 --regexp "^HTTP/1.1 400 " || fail "target $t"
	done
	assert_equal "$(accepted BACKEND)" 0
	run backend_log
	assert_output ''
}

@test "path safety: dots inside a segment are ordinary and forwarded" {
	start_pair
	run echo_target '/proxy/echo?x=..'
	assert_output '/echo?x=..'
	local t
	for t in /proxy/..a /proxy/a.. /proxy/.hidden /proxy/a/...; do
		run gf_curl --path-as-is -o /dev/null -w '%{http_code}' "$PURL$t"
		assert_output 200
	done
	wait_log BACKEND '^<6>GET /a/\.\.\. 200'
}
