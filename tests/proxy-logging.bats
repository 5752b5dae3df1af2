#!/usr/bin/env bats
# gfproxy's log: one readable line per request on stderr (no journal here).

load helpers

# Lines in a program's stderr that are neither a log entry nor the
# activator's own bookkeeping: a forged or broken line would show up here.
stray_lines() {
	grep -avE '^(<[0-7]>|Listening on |Communication attempt on fd |Connection from |Spawned |Execing |Child [0-9]+ died with code )' \
		"$GF_TMP/$1.err" || true
}

@test "logging: one <6> line per proxied request, with method, target, upstream URL, status, size, time" {
	start_pair
	run gf_curl "$PURL/proxy/user/1" "$PURL/proxy/bytes/1000"
	assert_success
	wait_log PROXY '/bytes/1000 200'
	run proxy_log
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --regexp "^<6>GET /proxy/user/1 -> http://127\.0\.0\.1:$BACKEND_PORT/user/1 200 29B [0-9]+\.[0-9]ms$"
	assert_line --index 1 --regexp "^<6>GET /proxy/bytes/1000 -> http://127\.0\.0\.1:$BACKEND_PORT/bytes/1000 200 1000B [0-9]+\.[0-9]ms$"
}

@test "logging: a request not under the prefix logs <4> with the reason" {
	start_pair
	run gf_curl -o /dev/null -w '%{http_code}' "$PURL/elsewhere"
	assert_output 404
	wait_log PROXY '^<4>GET /elsewhere 404 '
	run proxy_log
	assert_output --regexp '^<4>GET /elsewhere 404 [0-9]+B [0-9]+\.[0-9]ms: .+$'
	refute_output --partial ' -> '
}

@test "logging: a refused dot segment logs <4> with the reason" {
	start_pair
	run gf_curl --path-as-is -o /dev/null -w '%{http_code}' "$PURL/proxy/../x"
	assert_output 400
	wait_log PROXY '^<4>GET /proxy/\.\./x 400 .*: .+'
}

@test "logging: a backend's own 4xx and 5xx are relayed with the status in the line" {
	start_pair
	run gf_curl -o /dev/null -o /dev/null -w '%{http_code} ' "$PURL/proxy/status/404" "$PURL/proxy/status/503"
	assert_output "404 503 "
	wait_log PROXY ' 503 '
	run proxy_log
	# Exactly: a 5xx is PRIORITY 3 (err), a 4xx 4 (warning); nothing else passes.
	assert_line --index 0 --regexp '^<4>GET /proxy/status/404 -> .* 404 '
	assert_line --index 1 --regexp '^<3>GET /proxy/status/503 -> .* 503 '
}

@test "logging: journal_escape turns CR, LF, every other control byte, DEL, backslash and high bytes into \\xHH" {
	# No client reaches these bytes through the parser, so the escaper is
	# tested itself: built from src/journal.c with a small driver.
	command -v cc >/dev/null || fail "no C compiler (cc) to build the driver"
	cc -std=c11 -D_GNU_SOURCE -I"$BATS_TEST_DIRNAME/../src" -o "$GF_TMP/escape" \
		"$BATS_TEST_DIRNAME/unit/journal_escape.c" "$BATS_TEST_DIRNAME/../src/journal.c" \
		$(pkg-config --cflags --libs libsystemd)
	run "$GF_TMP/escape"
	assert_success
	assert_output --partial "journal_escape: all checks passed"
}

@test "logging: escaped newlines and raw bytes in the target cannot forge a line" {
	start_pair
	# %0a stays as sent; raw high bytes and a backslash are escaped as \xHH.
	# (In the query: a path allows no "<", ">", backslash or raw high byte.)
	{
		req 'GET /proxy/a?%0a<6>GET%20/forged HTTP/1.1' 'Host: t'
		printf 'GET /proxy/caf?\xc3\xa9\\x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
	} >"$GF_TMP/req"
	raw "$PROXY_PORT" <"$GF_TMP/req" >/dev/null
	wait_log PROXY 'caf'
	run proxy_log
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --regexp '^<6>GET /proxy/a\?%0a<6>GET%20/forged -> '
	assert_line --index 1 --regexp '^<6>GET /proxy/caf\?\\xc3\\xa9\\x5cx -> '
	run stray_lines PROXY
	assert_output ''
}

@test "logging: a raw control byte in the target is refused and logged on one line" {
	start_pair
	printf 'GET /proxy/a\x01b\x1b[31m HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' >"$GF_TMP/req"
	run raw "$PROXY_PORT" <"$GF_TMP/req"
	assert_line --index 0 --regexp '^HTTP/1.1 400 '
	wait_log PROXY '^<4>'
	run proxy_log
	assert_equal "${#lines[@]}" 1
	refute_output --partial $'\x01'
	refute_output --partial $'\x1b'
	run stray_lines PROXY
	assert_output ''
	assert_equal "$(accepted BACKEND)" 0
}

@test "logging: a header value cannot forge a log line" {
	start_pair
	req 'GET /proxy/user/1 HTTP/1.1' 'Host: t' $'X-Evil: a\r<6>forged' 'Connection: close' >"$GF_TMP/req"
	run raw "$PROXY_PORT" <"$GF_TMP/req"
	assert_line --index 0 --regexp '^HTTP/1.1 400 '
	wait_log PROXY '^<4>'
	run stray_lines PROXY
	assert_output ''
	run proxy_log
	refute_output --regexp '^<6>forged'
}
