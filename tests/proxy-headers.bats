#!/usr/bin/env bats
# Request and response header fields through gfproxy.

load helpers

# echo_headers REQUEST-LINES... - the "header:" lines /echo reports for a raw
# request sent to the proxy. A second request closes the connection, so the
# first may carry any Connection field.
echo_headers() {
	{ req "$@"; req 'GET /proxy/ HTTP/1.1' 'Host: h' 'Connection: close'; } >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" | resp_body | sed -n 's/^header: //p'
}

@test "headers: libcurl adds nothing the client did not send to a GET" {
	start_pair
	run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: only.example' 'Connection: close'
	assert_output "Host: only.example
X-Forwarded-For: 127.0.0.1
X-Forwarded-Host: only.example
X-Forwarded-Proto: http
X-Forwarded-Prefix: /proxy"
}

@test "headers: a POST gets no Expect, User-Agent or Accept from libcurl" {
	start_pair
	# 2 MB: large enough that libcurl would send Expect: 100-continue
	run gftool upload --port "$PROXY_PORT" --path /proxy/echo --size 2000000
	assert_success
	refute_line --regexp '^header: (Expect|User-Agent|Accept):'
	# libcurl places its Content-Length where it likes; the set is what counts
	run bash -c "grep '^header:' | sort" <<<"$output"
	assert_output "header: Content-Length: 2000000
header: Host: 127.0.0.1
header: X-Forwarded-For: 127.0.0.1
header: X-Forwarded-Host: 127.0.0.1
header: X-Forwarded-Prefix: /proxy
header: X-Forwarded-Proto: http"
}

@test "headers: the client's fields reach the backend in order, repeats kept" {
	start_pair
	run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: h' 'X-B: 2' 'x-a: 1' 'X-B: 3' \
		'Accept: */*' 'User-Agent: me/1' 'Cookie: c=1' 'Empty:' 'Connection: close'
	assert_output "Host: h
X-B: 2
x-a: 1
X-B: 3
Accept: */*
User-Agent: me/1
Cookie: c=1
Empty: 
X-Forwarded-For: 127.0.0.1
X-Forwarded-Host: h
X-Forwarded-Proto: http
X-Forwarded-Prefix: /proxy"
}

@test "headers: Host passes through as the client sent it" {
	start_pair
	run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: Example.COM:8080' 'Connection: close'
	assert_line "Host: Example.COM:8080"
	assert_line "X-Forwarded-Host: Example.COM:8080"
}

@test "headers: an untrusted client's X-Forwarded-For is replaced by its address" {
	start_pair
	run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: h' 'X-Forwarded-For: 203.0.113.7, 198.51.100.1' \
		'Connection: close'
	assert_line "X-Forwarded-For: 127.0.0.1"
	refute_line --partial "203.0.113.7"
	run grep -c '^X-Forwarded-For:' <<<"$output"
	assert_output 1
}

@test "headers: a trusted proxy's X-Forwarded-For gets the client's address appended" {
	printf '[global]\ntrusted-proxies = 127.0.0.1/32\n' >"$GF_TMP/trust.conf"
	start_pair --config "$GF_TMP/trust.conf"
	run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: h' 'X-Forwarded-For: 203.0.113.7, 198.51.100.1' \
		'X-Forwarded-For: 192.0.2.9' 'Connection: close'
	assert_line "X-Forwarded-For: 203.0.113.7, 198.51.100.1, 192.0.2.9, 127.0.0.1"
	run grep -c '^X-Forwarded-For:' <<<"$output"
	assert_output 1
}

@test "headers: X-Forwarded-Host and X-Forwarded-Proto are set, not taken from the client" {
	start_pair
	run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: real.example' 'X-Forwarded-Host: evil.example' \
		'X-Forwarded-Proto: https' 'Connection: close'
	assert_line "X-Forwarded-Host: real.example"
	assert_line "X-Forwarded-Proto: http"
	refute_line --partial "evil.example"
	refute_line "X-Forwarded-Proto: https"
}

@test "headers: hop-by-hop request fields, and those Connection names, are removed" {
	start_pair
	run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: h' 'Connection: keep-alive, X-Private' \
		'X-Private: secret' 'Keep-Alive: timeout=5' 'Proxy-Connection: keep-alive' 'TE: gzip, deflate' \
		'Trailer: X-T' 'Upgrade: h2c' 'Proxy-Authorization: Basic dTpw' \
		'Proxy-Authenticate: Basic' 'X-Kept: yes'
	assert_line "X-Kept: yes"
	refute_line --regexp '^(Connection|X-Private|Keep-Alive|Proxy-Connection|TE|Trailer|Upgrade|Proxy-Authorization|Proxy-Authenticate):'
}

@test "headers: each hop-by-hop request field is removed when Connection does not name it" {
	start_pair
	# No Connection field at all, and one that names none of them: the
	# fields are hop-by-hop by themselves (RFC 9110 7.6.1), not because a
	# Connection list happens to name them.
	local f
	for f in 'Keep-Alive: timeout=5' 'Proxy-Connection: keep-alive' 'TE: gzip' 'Trailer: X-T' \
	    'Upgrade: h2c' 'Proxy-Authorization: Basic dTpw' 'Proxy-Authenticate: Basic'; do
		run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: h' "$f" 'X-Kept: yes'
		assert_line "X-Kept: yes"
		refute_line --regexp "^${f%%:*}:"
		run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: h' 'Connection: X-Other' "$f" 'X-Kept: yes'
		assert_line "X-Kept: yes"
		refute_line --regexp "^${f%%:*}:"
	done
}

@test "headers: the client's TE codings are not passed on" {
	start_pair
	# gfproxy may ask for trailers on its own hop ("TE: trailers"), but the
	# client's codings are for the client's hop only.
	run echo_headers 'GET /proxy/echo HTTP/1.1' 'Host: h' 'TE: gzip, trailers' 'Connection: TE'
	assert_line "Host: h"
	refute_line --regexp '^TE:.*(gzip|deflate)'
	refute_line --regexp '^Connection:.*'
}

@test "headers: a chunked request's Transfer-Encoding is not passed on as the client sent it" {
	start_pair
	{
		req 'POST /proxy/echo HTTP/1.1' 'Host: h' 'Transfer-Encoding: chunked' 'Connection: close'
		printf '5\r\nhello\r\n0\r\n\r\n'
	} >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" | resp_body >"$GF_TMP/echo"
	run cat "$GF_TMP/echo"
	assert_line "body-length: 5"
	assert_line "body-sha256: $(printf hello | sha256sum | cut -d' ' -f1)"
	# at most libcurl's own framing, exactly once
	run grep -ci '^header: Transfer-Encoding:' "$GF_TMP/echo"
	assert_output --regexp '^[01]$'
}

@test "headers: response fields relayed in order, repeated Set-Cookie and X-Order kept" {
	start_pair
	gf_curl -D "$GF_TMP/direct" -o /dev/null "$BACKEND_URL/cookies"
	gf_curl -D "$GF_TMP/proxied" -o /dev/null "$PURL/proxy/cookies"
	run grep -ac '^Set-Cookie:' "$GF_TMP/proxied"
	assert_output 3
	# the backend's own head, field for field in the same order (Date aside)
	run diff <(grep -av '^Date:' "$GF_TMP/direct") <(grep -av '^Date:' "$GF_TMP/proxied")
	assert_success
}

@test "headers: hop-by-hop response fields, and those Connection names, are removed" {
	# the test peer has no endpoint that sets arbitrary response fields,
	# so a canned response from a tiny server stands in for this case only.
	cat >"$GF_TMP/head" <<-'EOF'
		HTTP/1.1 200 OK
		Set-Cookie: a=1; Path=/
		X-Order: first
		Connection: X-Hop, keep-alive
		X-Hop: drop me
		Keep-Alive: timeout=5
		Proxy-Connection: keep-alive
		Set-Cookie: b=2; Path=/
		Trailer: X-T
		Upgrade: h2c
		Proxy-Authenticate: Basic
		Proxy-Authorization: Basic dTpw
		TE: trailers
		X-Order: second
		Content-Type: text/plain
		Content-Length: 6
		Set-Cookie: c=3
	EOF
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	start_proxy --upstream "http://127.0.0.1:$CANNED_PORT"
	run gf_curl -i "$PURL/proxy/x"
	assert_success
	run grep -av '^Date:' <<<"${output//$'\r'/}"
	# (Path=/ is the upstream's whole site: under the prefix, /proxy.)
	assert_output "HTTP/1.1 200 OK
Set-Cookie: a=1; Path=/proxy
X-Order: first
Set-Cookie: b=2; Path=/proxy
X-Order: second
Content-Type: text/plain
Content-Length: 6
Set-Cookie: c=3

hello"
}

# hop_by_hop_response [CONNECTION-LINE] - a canned head with every hop-by-hop
# field but Connection (and CONNECTION-LINE, if given), through the proxy.
hop_by_hop_response() {
	{
		echo 'HTTP/1.1 200 OK'
		[ $# -eq 0 ] || echo "$1"
		printf '%s\n' 'Keep-Alive: timeout=5' 'Proxy-Connection: keep-alive' 'Trailer: X-T' \
			'Upgrade: h2c' 'Proxy-Authenticate: Basic' 'Proxy-Authorization: Basic dTpw' \
			'TE: trailers' 'X-Kept: yes' 'Content-Length: 6'
	} >"$GF_TMP/head"
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	start_proxy --upstream "http://127.0.0.1:$CANNED_PORT"
	run gf_curl -i "$PURL/proxy/x"
	assert_success
	assert_line --partial "X-Kept: yes"
	refute_line --regexp '^(Keep-Alive|Proxy-Connection|Trailer|Upgrade|Proxy-Authenticate|Proxy-Authorization|TE):'
}

@test "headers: each hop-by-hop response field is removed without a Connection field" {
	hop_by_hop_response
}

@test "headers: each hop-by-hop response field is removed when Connection names none of them" {
	hop_by_hop_response 'Connection: X-Other'
}
