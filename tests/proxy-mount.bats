#!/usr/bin/env bats
# An upstream mounted under a prefix (src/mount.c): its redirects and cookies
# come back under the prefix, and it is told where it is mounted
# (X-Forwarded-Prefix). Real applications as upstreams: Debian's
# python3-httpbin, and Python's http.server for a static server's directory
# redirect; real clients: curl -L and Python's http.cookiejar.

load helpers
load config_helpers
load tls_helpers

# httpbin NAME - Debian's httpbin under werkzeug's threaded server, on a port
# of its own (printed first, so gf_bg takes it), gone after 60 s at most.
httpbin() {
	cat >"$GF_TMP/run-httpbin.py" <<'EOF'
import os, threading
from werkzeug.serving import make_server
from httpbin import app
s = make_server("127.0.0.1", 0, app, threaded=True)
print(s.server_port, flush=True)
threading.Timer(60, lambda: os._exit(0)).start()
s.serve_forever()
EOF
	"$GF_PY" -c 'import httpbin' 2>/dev/null ||
		fail "python3-httpbin is not installed (packaging/install-deps check)"
	gf_bg "$1" "$GF_PY" "$GF_TMP/run-httpbin.py"
}

# hb_proxy [LINES...] - httpbin as HB and gfproxy in front of it: route hb,
# prefix /proxy, with the extra route LINES; sets PURL.
hb_proxy() {
	httpbin HB
	{
		printf '[route hb]\nprefix = /proxy\nupstream = http://127.0.0.1:%s\n' "$HB_PORT"
		printf '%s\n' "$@"
	} >"$GF_TMP/hb.conf"
	start_conf_proxy hb
}

# field NAME URL [CURL ARGS...] - the value of one response field (no redirect followed).
field() {
	local name=$1 url=$2; shift 2
	gf_curl -o /dev/null -D - "$@" "$url" | tr -d '\r' |
		sed -n "s/^$name: //Ip" | head -n 1
}

# follow URL - curl -L through the proxy: final status, URL and the number of redirects.
follow() {
	gf_curl -L --max-redirs 10 -o /dev/null -w '%{http_code} %{url_effective} %{num_redirects}' "$1"
}

@test "mount: the unit checks of src/mount.c pass (each field form, route kind and buffer rule)" {
	command -v cc >/dev/null || fail "no C compiler (cc) to build the driver"
	local src=$BATS_TEST_DIRNAME/../src llhttp=${LLHTTP_SRC:-/usr/share/llhttp}
	cc -std=c11 -D_GNU_SOURCE -I"$src" -I"${LLHTTP_INC:-/usr/share/include/llhttp}" \
		-o "$GF_TMP/mount" "$BATS_TEST_DIRNAME/unit/mount.c" "$src/mount.c" "$src/config.c" \
		"$src/http.c" "$src/conn.c" -DGFPROXY_NO_TLS "$src/tls.c" \
		"$llhttp/llhttp.c" "$llhttp/api.c" "$llhttp/http.c" \
		$(pkg-config --cflags --libs inih libsystemd) 2>"$GF_TMP/cc.err" ||
		fail "$(cat "$GF_TMP/cc.err")"
	run "$GF_TMP/mount"
	assert_success
	assert_output --regexp '^mount: all [0-9]+ checks passed$'
}

@test "mount: httpbin's relative redirects stay under the prefix; curl -L ends at /proxy/get with 200" {
	hb_proxy
	run field Location "$PURL/proxy/relative-redirect/2"
	assert_output /proxy/relative-redirect/1
	run follow "$PURL/proxy/relative-redirect/3"
	assert_output "200 $PURL/proxy/get 3"
}

@test "mount: httpbin's absolute redirects (built from the Host it got) come back absolute, with the client's origin" {
	hb_proxy
	run field Location "$PURL/proxy/absolute-redirect/2"
	assert_output "$PURL/proxy/absolute-redirect/1"
	# Another Host: the client's authority, not the proxy's address.
	run field Location "$PURL/proxy/absolute-redirect/2" -H 'Host: gw.example:8080'
	assert_output http://gw.example:8080/proxy/absolute-redirect/1
	run follow "$PURL/proxy/absolute-redirect/3"
	assert_output "200 $PURL/proxy/get 3"
}

@test "mount: a redirect to the upstream's configured origin, with a query, goes to the client's origin under the prefix" {
	hb_proxy
	local to="http://127.0.0.1:$HB_PORT/get?a=1%262&b=/c"
	run field Location "$PURL/proxy/redirect-to?url=$(printf %s "$to" | sed 's/%/%25/g; s/&/%26/g; s/?/%3F/')"
	assert_output "$PURL/proxy/get?a=1%262&b=/c"
	run follow "$PURL/proxy/redirect-to?url=http://127.0.0.1:$HB_PORT/get"
	assert_output "200 $PURL/proxy/get 1"
	run field Location "$PURL/proxy/redirect-to?url=/anything/x%3Fy=1"
	assert_output /proxy/anything/x?y=1
}

@test "mount: a foreign Location (another host, another port, a relative path) is left alone" {
	hb_proxy
	run field Location "$PURL/proxy/redirect-to?url=http://foreign.example/x"
	assert_output http://foreign.example/x
	run field Location "$PURL/proxy/redirect-to?url=http://127.0.0.1:1/x"
	assert_output http://127.0.0.1:1/x
	run field Location "$PURL/proxy/redirect-to?url=next/page"
	assert_output next/page
}

@test "mount: Refresh and Content-Location are translated like Location" {
	hb_proxy
	run field Refresh "$PURL/proxy/response-headers?Refresh=5;%20url=/next"
	assert_output '5; url=/proxy/next'
	run field Refresh "$PURL/proxy/response-headers?Refresh=0;URL=http://127.0.0.1:$HB_PORT/n"
	assert_output "0;URL=$PURL/proxy/n"
	run field Content-Location "$PURL/proxy/response-headers?Content-Location=/doc/1"
	assert_output /proxy/doc/1
}

@test "mount: a route that strips no prefix, or says redirect-rewrite = no, passes Location as it came" {
	httpbin HB
	cat >"$GF_TMP/plain.conf" <<-EOF
		[route whole]
		prefix = /
		upstream = http://127.0.0.1:$HB_PORT
		[route off]
		prefix = /off
		upstream = http://127.0.0.1:$HB_PORT
		redirect-rewrite = no
		cookie-rewrite = no
	EOF
	start_conf_proxy plain
	run field Location "$PURL/relative-redirect/2"
	assert_output /relative-redirect/1
	run follow "$PURL/relative-redirect/2"
	assert_output "200 $PURL/get 2"
	run field Location "$PURL/off/relative-redirect/2"
	assert_output /relative-redirect/1
	run field Set-Cookie "$PURL/off/cookies/set?k=v"
	assert_output 'k=v; Path=/'
	# What the default prevents: the redirect leaves /off, and lands on the
	# route at / instead.
	run follow "$PURL/off/relative-redirect/2"
	assert_output "200 $PURL/get 2"
}

@test "mount: redirect-rewrite FROM TO rules translate a public origin the upstream names" {
	hb_proxy 'redirect-rewrite = https://public.example/ /proxy/'
	run field Location "$PURL/proxy/redirect-to?url=https://public.example/get"
	assert_output /proxy/get
	# The default still applies to what no rule takes.
	run field Location "$PURL/proxy/relative-redirect/2"
	assert_output /proxy/relative-redirect/1
}

@test "mount: a static server's directory redirect under an upstream base path (python http.server)" {
	mkdir -p "$GF_TMP/www/base/sub"
	echo hello >"$GF_TMP/www/base/sub/index.html"
	cat >"$GF_TMP/static.py" <<'EOF'
import functools, os, sys, threading
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
h = functools.partial(SimpleHTTPRequestHandler, directory=sys.argv[1])
s = ThreadingHTTPServer(("127.0.0.1", 0), h)
print(s.server_address[1], flush=True)
threading.Timer(60, lambda: os._exit(0)).start()
s.serve_forever()
EOF
	gf_bg WWW "$GF_PY" "$GF_TMP/static.py" "$GF_TMP/www"
	printf '[route www]\nprefix = /site\nupstream = http://127.0.0.1:%s/base\n' "$WWW_PORT" \
		>"$GF_TMP/www.conf"
	start_conf_proxy www
	run field Location "$PURL/site/sub"
	assert_output /site/sub/
	run gf_curl -L "$PURL/site/sub"
	assert_output hello
}

@test "mount: Set-Cookie's Path goes under the prefix (httpbin /cookies/set), and the cookie comes back through the proxy (http.cookiejar)" {
	hb_proxy
	run field Set-Cookie "$PURL/proxy/cookies/set?k=v"
	assert_output 'k=v; Path=/proxy'
	run field Set-Cookie "$PURL/proxy/response-headers?Set-Cookie=a%3D1%3B%20Path%3D/app%3B%20HttpOnly"
	assert_output 'a=1; Path=/proxy/app; HttpOnly'
	# A browser-like client: the cookie jar keeps it for /proxy, and sends it
	# on the redirect to /proxy/cookies and on the next request.
	run "$GF_PY" -c '
import http.cookiejar, json, sys, urllib.request
jar = http.cookiejar.CookieJar()
o = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
base = sys.argv[1]
r = json.load(o.open(base + "/proxy/cookies/set?k=v&n=2", timeout=10))
print("after redirect", sorted(r["cookies"].items()))
print("jar", sorted((c.name, c.path) for c in jar))
r = json.load(o.open(base + "/proxy/cookies", timeout=10))
print("next request", sorted(r["cookies"].items()))
' "$PURL"
	assert_success
	assert_line "after redirect [('k', 'v'), ('n', '2')]"
	assert_line "jar [('k', '/proxy'), ('n', '/proxy')]"
	assert_line "next request [('k', 'v'), ('n', '2')]"
}

@test "mount: a cookie Domain naming the upstream's host is dropped; the client's own is kept" {
	httpbin HB
	printf '[route hb]\nprefix = /proxy\nupstream = http://localhost:%s\n' "$HB_PORT" >"$GF_TMP/d.conf"
	start_conf_proxy d
	run field Set-Cookie "$PURL/proxy/response-headers?Set-Cookie=a%3D1%3B%20Domain%3Dlocalhost%3B%20Path%3D/"
	assert_output 'a=1; Path=/proxy'
	run field Set-Cookie "$PURL/proxy/response-headers?Set-Cookie=a%3D1%3B%20Domain%3Dgw.example" \
		-H 'Host: gw.example'
	assert_output 'a=1; Domain=gw.example'
	# And the jar takes it as the client host's own.
	run "$GF_PY" -c '
import http.cookiejar, json, sys, urllib.request
jar = http.cookiejar.CookieJar()
o = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
o.open(sys.argv[1] + "/proxy/response-headers?Set-Cookie=a%3D1%3B%20Domain%3Dlocalhost%3B%20Path%3D/", timeout=10).read()
print(json.load(o.open(sys.argv[1] + "/proxy/cookies", timeout=10))["cookies"])
' "$PURL"
	assert_success
	assert_output "{'a': '1'}"
}

@test "mount: X-Forwarded-Prefix tells the upstream where it is mounted; a client's own is replaced, a trusted proxy's appended to" {
	hb_proxy
	xfp() {
		gf_curl "$@" | "$GF_PY" -c 'import json, sys
print(json.load(sys.stdin)["headers"].get("X-Forwarded-Prefix"))'
	}
	run xfp "$PURL/proxy/headers"
	assert_output /proxy
	run xfp "$PURL/proxy/headers" -H 'X-Forwarded-Prefix: /forged'
	assert_output /proxy
	run xfp "$PURL/proxy/headers" -H 'X-Forwarded_Prefix: /forged'
	assert_output /proxy
	printf '[global]\ntrusted-proxies = 127.0.0.1\n' | cat - "$GF_TMP/hb.conf" >"$GF_TMP/t.conf"
	cp "$GF_TMP/t.conf" "$GF_TMP/hb.conf"
	run xfp "$PURL/proxy/headers" -H 'X-Forwarded-Prefix: /outer'
	assert_output '/outer, /proxy'
}

@test "mount: X-Forwarded-Prefix is not sent by a route that strips no prefix" {
	httpbin HB
	printf '[route hb]\nprefix = /headers\nstrip-prefix = no\nupstream = http://127.0.0.1:%s\n' \
		"$HB_PORT" >"$GF_TMP/n.conf"
	start_conf_proxy n
	run gf_curl "$PURL/headers" -H 'X-Forwarded-Prefix: /forged'
	assert_success
	refute_output --partial X-Forwarded-Prefix
	assert_output --partial '"Host"'
}

@test "mount: the refusal of an upgrade request (the tunnel's path) has its Location and Set-Cookie translated too" {
	# httpbin's server refuses every WebSocket upgrade with an empty 400:
	# a canned upstream answers this one with a redirect instead.
	printf '%s\n' 'HTTP/1.1 302 Found' 'Location: http://gw.example/elsewhere' \
		'Set-Cookie: a=1; Path=/' 'Content-Length: 6' >"$GF_TMP/head"
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	printf '[route c]\nprefix = /proxy\nupstream = http://127.0.0.1:%s\n' "$CANNED_PORT" \
		>"$GF_TMP/c.conf"
	start_conf_proxy c
	req 'GET /proxy/chat HTTP/1.1' 'Host: gw.example' 'Connection: Upgrade' 'Upgrade: websocket' \
		'Sec-WebSocket-Version: 13' 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' >"$GF_TMP/up.req"
	run raw "$PROXY_PORT" <"$GF_TMP/up.req"
	assert_output --partial $'Location: http://gw.example/proxy/elsewhere\r\n'
	assert_output --partial $'Set-Cookie: a=1; Path=/proxy\r\n'
	wait_log PROXY '^<6>GET /proxy/chat -> .* 302 6B [0-9.]+ms$'
}

@test "mount: behind a trusted TLS proxy, an absolute redirect goes to its scheme and host (X-Forwarded-Proto, -Host)" {
	hb_proxy
	printf '[global]\ntrusted-proxies = 127.0.0.1\n' | cat - "$GF_TMP/hb.conf" >"$GF_TMP/t.conf"
	cp "$GF_TMP/t.conf" "$GF_TMP/hb.conf"
	run field Location "$PURL/proxy/absolute-redirect/2" -H 'X-Forwarded-Proto: https' \
		-H 'X-Forwarded-Host: pub.example'
	assert_output https://pub.example/proxy/absolute-redirect/1
}

@test "mount: over --tls, an absolute redirect keeps the client's https (curl -L follows it over TLS)" {
	gf_has_tls || { tls_without_tls; return; }
	httpbin HB
	tls_ca
	tls_leaf a a.test
	printf '[route hb]\nprefix = /proxy\nupstream = http://127.0.0.1:%s\n[tls]\ncertificate = %s %s\n' \
		"$HB_PORT" "$GF_TMP/a.pem" "$GF_TMP/a.key" >"$GF_TMP/t.conf"
	start_conf_proxy t --tls
	local url=https://a.test:$PROXY_PORT
	run field Location "$url/proxy/redirect-to?url=http://127.0.0.1:$HB_PORT/get" \
		--cacert "$GF_TMP/ca.pem" --resolve "a.test:$PROXY_PORT:127.0.0.1"
	assert_output "$url/proxy/get"
	run tls_curl a.test "/proxy/redirect-to?url=http://127.0.0.1:$HB_PORT/get" -L --max-redirs 3 \
		-o /dev/null -w '%{http_code} %{url_effective} %{num_redirects}'
	assert_output "200 $url/proxy/get 1"
}

# canned_location N VALUE - the Location a client gets through route / ->
# base /two of an upstream that answers every request with a 302 to VALUE.
canned_location() {
	printf '%s\n' 'HTTP/1.1 302 Found' "Location: $2" >"$GF_TMP/head$1"
	gf_bg "CANNED$1" "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head$1"
	local port=CANNED$1_PORT
	printf '[route r]\nprefix = /\nupstream = http://127.0.0.1:%s/two\n' "${!port}" \
		>"$GF_TMP/r$1.conf"
	start_conf_proxy "r$1"
	field Location "$PURL/x" -H 'Host: gw.example'
}

@test "mount: a redirect that would read as another host once mapped (\\, a tab) is left as the upstream sent it" {
	# /two/\evil.example/ would become /\evil.example/, which browsers follow
	# to evil.example, as they do /<tab>/evil.example/.
	run canned_location 1 '/two/\evil.example/'
	assert_output '/two/\evil.example/'
	run canned_location 2 $'/two/\t/evil.example/'
	assert_output $'/two/\t/evil.example/'
	# Without the trick it is mapped.
	run canned_location 3 '/two/evil.example/'
	assert_output '/evil.example/'
}

@test "mount: redirect-rewrite and cookie-rewrite take yes, no or a FROM TO rule, and say which line is wrong" {
	gf_need_proxy
	cat >"$GF_TMP/bad.conf" <<-'EOF'
		[route a]
		prefix = /a
		upstream = http://127.0.0.1:1
		redirect-rewrite = maybe
		redirect-rewrite = http://x/ /a/ extra
		cookie-rewrite = http://x/ /a/
		redirect-rewrite = http://x/ /a/
		cookie-rewrite = off
	EOF
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/bad.conf"
	assert_failure 78
	assert_line --partial 'bad.conf:4: redirect-rewrite = maybe: expected yes, no, or FROM TO'
	assert_line --partial 'bad.conf:5: redirect-rewrite = http://x/ /a/ extra: a redirect-rewrite rule is FROM TO, two words'
	assert_line --partial 'bad.conf:6: cookie-rewrite = http://x/ /a/: expected yes or no'
	refute_line --partial 'bad.conf:7'
	refute_line --partial 'bad.conf:8'
}
