#!/usr/bin/env bats
# Every method through gfproxy, and the responses that carry no body.

load helpers

@test "methods: every method, standard or not, reaches the backend as sent" {
	start_pair
	local m
	for m in GET POST PUT PATCH DELETE OPTIONS PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK \
		REPORT SEARCH PURGE LINK UNLINK; do
		run gf_curl -X "$m" "$PURL/proxy/echo"
		assert_success
		assert_line "method: $m" || fail "method $m"
	done
}

@test "methods: the default answer comes back for every method" {
	start_backend
	start_proxy
	local m
	for m in GET POST PUT PATCH DELETE OPTIONS PROPFIND; do
		run gf_curl -X "$m" -w ' %{http_code}' "$PURL/proxy/user/1"
		assert_output "user info from server backend 200" || fail "method $m"
	done
}

@test "methods: a body on DELETE and OPTIONS is forwarded too" {
	start_pair
	local m
	for m in DELETE OPTIONS PROPFIND; do
		run gf_curl -X "$m" --data-binary 'abc' "$PURL/proxy/echo"
		assert_line "method: $m"
		assert_line "body-length: 3"
	done
}

@test "methods: HEAD gets the head with the backend's Content-Length and no body" {
	start_pair
	{
		req 'HEAD /proxy/user/1 HTTP/1.1' 'Host: t'
		req 'HEAD /proxy/bytes/5000 HTTP/1.1' 'Host: t'
		req 'GET /proxy/user/1 HTTP/1.1' 'Host: t' 'Connection: close'
	} >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" >"$GF_TMP/resp"
	run gftool responses --methods HEAD,HEAD,GET <"$GF_TMP/resp"
	assert_output "HEAD 200 none b''
HEAD 200 none b''
GET 200 length b'user info from server backend'
leftover 0"
	run grep -ac $'^Content-Length: 29\r$' "$GF_TMP/resp"
	assert_output 2
	run grep -ac $'^Content-Length: 5000\r$' "$GF_TMP/resp"
	assert_output 1
}

@test "methods: 204 and 304 responses carry no body and keep the connection in step" {
	start_pair
	{
		req 'GET /proxy/status/204 HTTP/1.1' 'Host: t'
		req 'GET /proxy/status/304 HTTP/1.1' 'Host: t'
		req 'DELETE /proxy/status/204 HTTP/1.1' 'Host: t'
		req 'GET /proxy/user/1 HTTP/1.1' 'Host: t' 'Connection: close'
	} >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" >"$GF_TMP/resp"
	run gftool responses --methods GET,GET,DELETE,GET <"$GF_TMP/resp"
	assert_output "GET 204 none b''
GET 304 none b''
DELETE 204 none b''
GET 200 length b'user info from server backend'
leftover 0"
	# no framing fields that would promise a body
	run grep -aciE '^(Transfer-Encoding: chunked|Content-Length: [1-9])' <(head -c "$(grep -abo 'HTTP/1.1 200' "$GF_TMP/resp" | cut -d: -f1)" "$GF_TMP/resp")
	assert_output 0
}

@test "methods: status codes pass through with their bodies" {
	start_pair
	local c
	for c in 201 301 400 403 404 418 500 503; do
		run gf_curl -w ' %{http_code}' "$PURL/proxy/status/$c"
		assert_output --regexp "^$c .*
 $c\$"
	done
}
