#!/usr/bin/env bats
# Bodies stream through gfproxy both ways, as they arrive, in bounded memory.

load helpers

# Peak RSS allowed for gfproxy during a 1 GiB transfer (VmHWM, kB).
RSS_LIMIT_KB=$((16 * 1024))

@test "streaming: a Content-Length request body reaches the backend intact" {
	start_pair
	run gftool upload --port "$PROXY_PORT" --path /proxy/upload --size 3000001
	assert_success
	assert_line "status HTTP/1.1 200 OK"
	assert_line "length: 3000001"
	local want; want=$(gftool pattern-sha256 3000001)
	assert_line "sha256: $want"
}

@test "streaming: a chunked request body reaches the backend intact" {
	start_pair
	run gftool upload --port "$PROXY_PORT" --path /proxy/upload --size 3000001 --chunked --piece 10007
	assert_success
	assert_line "length: 3000001"
	assert_line "sha256: $(gftool pattern-sha256 3000001)"
}

@test "streaming: a Content-Length request body is forwarded while the client is still sending" {
	start_pair
	# Send 1 MiB of 4, then stop: the backend must already have read most of it.
	run gftool upload --port "$PROXY_PORT" --path /proxy/upload --size $((4 << 20)) \
		--pause-after $((1 << 20)) --pause 1 --watch-ssa "$BACKEND_SSA"
	assert_success
	assert_line "length: $((4 << 20))"
	local got; got=$(sed -n 's/^backend-rchar-at-pause //p' <<<"$output")
	[ "$got" -ge $((768 << 10)) ] || fail "backend had read only $got bytes of the first 1 MiB"
}

@test "streaming: an upstream that answers before the whole body is heard at once, and the client reads it" {
	start_pair
	# 1 GB announced, 20 MB sent (more than the socket buffers hold), then
	# silence; /continue?reject answers 403 without reading the body. The
	# 403 must come now, not after the 30 s body timeout, and the client must
	# get to read it: gfproxy drains what it does not forward instead of
	# resetting the connection while the client is still sending.
	local t0 t1
	t0=$(date +%s%N)
	run gftool raw --port "$PROXY_PORT" --idle 10 --total 15 < <(
		req 'POST /proxy/continue?reject HTTP/1.1' 'Host: 127.0.0.1' 'Content-Length: 1000000000'
		head -c 20000000 /dev/zero)
	t1=$(date +%s%N)
	assert_success          # 0: gfproxy closed; 3 would be silence, 4 a reset
	assert_line --index 0 --partial "HTTP/1.1 403 "
	assert_output --partial "upload refused"
	# Well before the 30 s body timeout, with time for valgrind's start.
	[ $(((t1 - t0) / 1000000)) -lt 10000 ] || fail "the answer took $(((t1 - t0) / 1000000)) ms"
	wait_log PROXY '^<4>POST /proxy/continue[?]reject -> .* 403 .*: upstream answered before the whole request body$'
}

@test "streaming: an upstream that answers 202 early and keeps its connection still gets the whole body" {
	# The canned upstream answers as soon as the head is in, then reads the
	# body: an early answer without Connection: close must not cut it.
	printf 'HTTP/1.1 202 Accepted\nContent-Length: 6\n' >"$GF_TMP/head"
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head" --read-body
	start_proxy --upstream "http://127.0.0.1:$CANNED_PORT"
	run gftool upload --port "$PROXY_PORT" --path /proxy/accept --size 3000000 \
		--pause-after 1000000 --pause 1
	assert_success
	assert_line "status HTTP/1.1 202 Accepted"
	assert_line "hello"
	wait_log CANNED '^body 3000000$' 5
	wait_log PROXY '^<6>POST /proxy/accept -> .* 202 6B [0-9.]+ms$'
}

# After gftool download through the proxy to stream-backend: the client got
# a whole 200 of the pattern, the upstream the whole $GF_TMP/body, and the
# proxy logged the 200.
assert_streamed_and_got_body() {
	local n
	assert_success
	assert_line "status HTTP/1.1 200 OK"
	assert_line "framing chunked"
	n=$(sed -n 's/^length: //p' <<<"$output")
	assert_line "sha256: $(gftool pattern-sha256 "$n")"
	wait_log STREAMER "^body $(stat -c %s "$GF_TMP/body") sha256 $(sha256sum <"$GF_TMP/body" | cut -d' ' -f1) streamed $n\$"
	wait_log PROXY "^<6>PUT /proxy/stream -> .* 200 ${n}B [0-9.]+ms\$"
}

@test "streaming: a request body sent while the answer streams is read, not stalled into a 408" {
	# The upstream answers at once and streams as fast as it is let while
	# it reads the body. The client reads the answer at 8 MB/s and, 0.3 s
	# into it, sends its 50,000-byte body. gfproxy, held back by the
	# client, has just written to it whenever it looks for body bytes, and
	# each look must still take them: on cdbe5ee~1 a look right after a
	# write waited first, found nothing, and 30 s later the upload ended as
	# "request body stalled" (a 408, under the 200 already sent).
	local t0 t1
	head -c 50000 /dev/urandom >"$GF_TMP/body"
	gf_bg STREAMER "$GF_PY" "$GF_TOOLS" stream-backend
	start_proxy --upstream "http://127.0.0.1:$STREAMER_PORT"
	t0=$(date +%s%N)
	run gftool download --port "$PROXY_PORT" --path /proxy/stream --method PUT \
		--body "$GF_TMP/body" --body-after 0.3 --rate 8000000 --timeout 40
	t1=$(date +%s%N)
	assert_streamed_and_got_body
	# About 2 s here, with time for valgrind's start: the body is read as
	# it comes. (The few times cdbe5ee~1 did not end in the 408, it had
	# mostly read the body only when the stream happened to pause, 12 to
	# 30 s in.)
	[ $(((t1 - t0) / 1000000)) -lt 10000 ] || fail "the exchange took $(((t1 - t0) / 1000000)) ms"
}

@test "streaming: no 100 Continue inside an answer already under way" {
	# The client expects 100-continue; the upstream answers 200 at once,
	# without a 100, and streams a chunk every 1.5 s while it reads the
	# body. libcurl sends the body once its 1 s wait for a 100 is over,
	# and gfproxy then reads it from the client: a 100 Continue written to
	# the client at that point would land between two chunks of the
	# answer and corrupt it (the client, done waiting for the 100, sends
	# its body with the first chunk it gets 0.5 s into the answer: the
	# second, at 1.5 s).
	head -c 5000 /dev/urandom >"$GF_TMP/body"
	gf_bg STREAMER "$GF_PY" "$GF_TOOLS" stream-backend --gap 1.5
	start_proxy --upstream "http://127.0.0.1:$STREAMER_PORT"
	run gftool download --port "$PROXY_PORT" --path /proxy/stream --method PUT \
		--body "$GF_TMP/body" --expect-continue --body-after 0.5 --timeout 20
	assert_streamed_and_got_body
}

# expect_417 FIELD...: a canned upstream answers 417 with these fields and
# "hello\n"; a client sends a 5-byte body with Expect: 100-continue, its body
# 1 s after its head. The raw exchange is in $output.
expect_417() {
	printf 'HTTP/1.1 417 Expectation Failed\n' >"$GF_TMP/head"
	printf '%s\n' "$@" >>"$GF_TMP/head"
	gf_bg CANNED "$GF_PY" "$GF_TOOLS" headers-backend --head "$GF_TMP/head"
	start_proxy --upstream "http://127.0.0.1:$CANNED_PORT"
	run gftool raw --port "$PROXY_PORT" --split hello --pause 1 --idle 8 --total 20 < <(
		req 'POST /proxy/accept HTTP/1.1' 'Host: 127.0.0.1' 'Expect: 100-continue' \
			'Content-Length: 5'
		printf hello)
	assert_success
}

@test "streaming: a 417 to a forwarded Expect is answered whole, and the request is not sent again" {
	# After a 417 to the Expect: 100-continue it sent, libcurl drops that
	# answer's body and sends the request again, without the wait. The
	# upstream must see one request, and the client a whole 417: gfproxy's
	# own, as the upstream's body is gone.
	expect_417 'Content-Length: 6'
	assert_line --index 0 --partial "HTTP/1.1 417 "
	assert_output --partial $'Connection: close\r\n'
	assert_equal "$(grep -c '^HTTP/' <<<"$output")" 1
	assert_equal "$(resp_body <<<"$output")" "417 Expectation Failed: upstream refused Expect: 100-continue"
	wait_log PROXY '^<4>POST /proxy/accept -> .* 417 0B [0-9.]+ms: upstream refused Expect: 100-continue$'
	assert_equal "$(grep -c '^request ' "$GF_TMP/CANNED.err")" 1
}

@test "streaming: a 417 to a forwarded Expect that closes the connection is relayed as it is" {
	# With Connection: close libcurl does not try again, and the upstream's
	# own 417, body included, is the answer.
	expect_417 'Content-Length: 6' 'Connection: close'
	assert_line --index 0 --partial "HTTP/1.1 417 "
	assert_equal "$(grep -c '^HTTP/' <<<"$output")" 1
	assert_equal "$(resp_body <<<"$output")" hello
	wait_log PROXY '^<4>POST /proxy/accept -> .* 417 6B [0-9.]+ms'
	assert_equal "$(grep -c '^request ' "$GF_TMP/CANNED.err")" 1
}

@test "streaming: a chunked request body is forwarded while the client is still sending" {
	start_pair
	run gftool upload --port "$PROXY_PORT" --path /proxy/upload --size $((4 << 20)) --chunked \
		--pause-after $((1 << 20)) --pause 1 --watch-ssa "$BACKEND_SSA"
	assert_success
	assert_line "length: $((4 << 20))"
	local got; got=$(sed -n 's/^backend-rchar-at-pause //p' <<<"$output")
	[ "$got" -ge $((768 << 10)) ] || fail "backend had read only $got bytes of the first 1 MiB"
}

@test "streaming: a response with Content-Length keeps it" {
	start_pair
	run gftool download --port "$PROXY_PORT" --path /proxy/bytes/1000000 --expect 1000000
	assert_success
	assert_line "framing length"
	assert_line "length: 1000000"
	assert_line "sha256: $(gftool pattern-sha256 1000000)"
	run gf_curl -sI "$PURL/proxy/bytes/1000000"
	assert_line $'Content-Length: 1000000\r'
	refute_line --partial "Transfer-Encoding"
}

@test "streaming: a response without Content-Length is sent chunked" {
	start_pair
	run gftool download --port "$PROXY_PORT" --path /proxy/stream/1000000 --expect 1000000
	assert_success
	assert_line "framing chunked"
	assert_line "length: 1000000"
	assert_line "sha256: $(gftool pattern-sha256 1000000)"
}

@test "streaming: server-sent events arrive 100 ms apart, not all at the end, the head first" {
	start_pair
	run gftool sse --port "$PROXY_PORT" --path /proxy/sse
	assert_success
	assert_line "framing chunked"
	local times
	times=$(sed -n 's/^\([0-9]*\) data: event [0-9]*$/\1/p' <<<"$output")
	assert_equal "$(wc -l <<<"$times")" 10
	# The backend sends the head alone, then spaces the events 100 ms apart:
	# the 1st comes ~100 ms after the head (gfproxy did not hold the head
	# for the body), the 10th ~900 ms after the 1st, and no gap is far below
	# 100 ms (as when a buffer is flushed at once).
	"$GF_PY" - $times <<-'EOF' || fail "$output"
		import sys
		t = [int(x) for x in sys.argv[1:]]
		gaps = [b - a for a, b in zip(t, t[1:])]
		assert 50 <= t[0] < 300, "first event %d ms after the head" % t[0]
		assert t[-1] - t[0] >= 750, "spread %d ms" % (t[-1] - t[0])
		assert sum(g >= 50 for g in gaps) >= 8, "gaps %s" % gaps
	EOF
}

@test "streaming: 1 GiB download passes intact while gfproxy stays under 16 MiB RSS" {
	start_pair
	run gftool download --port "$PROXY_PORT" --path "/proxy/bytes/$GF_BIG" --expect "$GF_BIG" \
		--ssa "$PROXY_SSA" --timeout 600
	assert_success
	assert_line "length: $GF_BIG"
	local sha; sha=$(sed -n 's/^expected-sha256: //p' <<<"$output")
	assert_line "sha256: $sha"
	local rss; rss=$(sed -n 's/^peak-rss-kb: //p' <<<"$output")
	[ "$rss" -gt 0 ] || fail "could not sample gfproxy's RSS"
	if [ "$GF_SANITIZED" = 1 ]; then
		# ASan's shadow memory and quarantine make RSS meaningless: only the
		# transfer (64 MiB here) is checked in the sanitized run.
		echo "# sanitized run: $GF_BIG bytes, RSS ${rss} kB not checked" >&3
	else
		[ "$rss" -lt "$RSS_LIMIT_KB" ] || fail "gfproxy peak RSS ${rss} kB >= ${RSS_LIMIT_KB} kB"
	fi
}

@test "streaming: 1 GiB upload passes intact while gfproxy stays under 16 MiB RSS" {
	start_pair
	run gftool upload --port "$PROXY_PORT" --path /proxy/upload --size "$GF_BIG" \
		--ssa "$PROXY_SSA" --piece $((256 << 10)) --timeout 600
	assert_success
	assert_line "length: $GF_BIG"
	local sha; sha=$(sed -n 's/^expected-sha256: //p' <<<"$output")
	assert_line "sha256: $sha"
	local rss; rss=$(sed -n 's/^peak-rss-kb: //p' <<<"$output")
	[ "$rss" -gt 0 ] || fail "could not sample gfproxy's RSS"
	if [ "$GF_SANITIZED" = 1 ]; then
		echo "# sanitized run: $GF_BIG bytes, RSS ${rss} kB not checked" >&3
	else
		[ "$rss" -lt "$RSS_LIMIT_KB" ] || fail "gfproxy peak RSS ${rss} kB >= ${RSS_LIMIT_KB} kB"
	fi
}

@test "streaming: a client that stops reading is cut after send-timeout, and the log says so" {
	start_peer
	printf '[global]\nsend-timeout = 1\n' >"$GF_TMP/send.conf"
	gf_activate PROXY "$GF_PROXY_BIN" --config "$GF_TMP/send.conf" --upstream "$BACKEND_URL"
	# Reads the head, then nothing for 4 s: far more than the socket buffers hold is due.
	run "$GF_PY" - "$PROXY_PORT" <<-'EOF'
		import socket, sys, time
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
		s.sendall(b"GET /proxy/bytes/268435456 HTTP/1.1\r\nHost: x\r\n\r\n")
		head = s.recv(4096)
		time.sleep(4)
		got = len(head)
		try:
		    while True:
		        d = s.recv(1 << 20)
		        if not d:
		            break
		        got += len(d)
		except OSError:
		    pass
		print("got", "all" if got > 268435456 else "part")
	EOF
	assert_output "got part"
	wait_log PROXY '^<4>GET /proxy/bytes/268435456 -> .*: client read nothing for 1000 ms \(send-timeout\)$'
}

@test "streaming: send-timeout out of range is a configuration error with its line" {
	gf_need_proxy
	printf '[global]\nsend-timeout = 0\n' >"$GF_TMP/bad.conf"
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/bad.conf"
	assert_failure 78
	assert_output --partial "bad.conf:2: send-timeout = 0: send-timeout must be seconds"
}

@test "streaming: a client that leaves while the upstream is silent mid-response is noticed within a second, once, as the client's doing" {
	# The upstream sends a head and one chunk, then nothing for 20 s; it prints
	# how long after that chunk its connection was closed.
	gf_bg SILENT "$GF_PY" -c '
import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0)); l.listen(4)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
buf = b""
while b"\r\n\r\n" not in buf:
    buf += c.recv(4096)
c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
t0 = time.monotonic()
c.settimeout(20)
try:
    c.recv(1)
except OSError:
    pass
print("closed after %.1f s" % (time.monotonic() - t0), flush=True)
time.sleep(30)'
	start_proxy --upstream "http://127.0.0.1:$SILENT_PORT" --timeout 30
	"$GF_PY" - "$PROXY_PORT" <<-'EOF'
		import socket, sys
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
		s.sendall(b"GET /proxy/events HTTP/1.1\r\nHost: x\r\n\r\n")
		got = b""
		while b"hello" not in got:
		    got += s.recv(4096)
		s.close()
	EOF
	for _ in $(seq 50); do
		grep -q '^closed after' "$GF_TMP/SILENT.out" && break
		sleep 0.1
	done
	run cat "$GF_TMP/SILENT.out"
	assert_line --regexp '^closed after (0|1)\.[0-9] s$'
	wait_log PROXY '^<4>GET /proxy/events -> .*: client went away$'
	run grep -c '^<[0-7]>' "$GF_TMP/PROXY.err"
	assert_output 1
}
