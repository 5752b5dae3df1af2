#!/usr/bin/env bats
# gfproxy --tls: TLS towards the client. Against a gfproxy built without TLS
# (make CURL=static-notls) each test checks the refusal instead.

load helpers
load config_helpers
load tls_helpers

@test "tls: SNI picks the certificate that names the host; the first one without SNI" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	run tls_subject a.test
	assert_output a.test
	run tls_subject b.test
	assert_output b.test
	run tls_subject other.test
	assert_output a.test
	run s_client -noservername
	assert_output --regexp 'subject=CN *= *a.test'
	# curl verifies the chain and the name against the test CA.
	run tls_curl b.test /echo
	assert_success
	assert_line 'header: Host: b.test:'"$PROXY_PORT"
}

@test "tls: after a HelloRetryRequest the handshake goes on with SNI's certificate" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	# A key share for P-521 only, which gfproxy does not take: it asks for another.
	run s_client -servername b.test -tls1_3 -groups P-521:X25519
	assert_output --regexp 'subject=CN *= *b\.test'
	assert_output --partial 'Server Temp Key: X25519'
	assert_output --partial 'New, TLSv1.3, Cipher is TLS_'
	run proxy_log
	refute_output --partial '<2>'
}

@test "tls: the upstream sees X-Forwarded-Proto: https and Forwarded proto=https" {
	gf_has_tls || { tls_without_tls; return; }
	tls_files
	sed -i '1i [global]\nforwarded = yes' "$GF_TMP/tls.conf"
	start_conf_proxy tls --tls
	run tls_curl a.test /echo
	assert_success
	assert_line 'header: X-Forwarded-Proto: https'
	assert_line --regexp '^header: Forwarded: for=127\.0\.0\.1;proto=https;host="a\.test:[0-9]+"$'
}

@test "tls: TLS 1.1 is refused with one log line; 1.2 and 1.3 are served" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	run s_client -servername a.test -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
	assert_output --partial 'alert protocol version'
	assert_output --partial 'New, (NONE), Cipher is (NONE)'
	wait_log PROXY '^<4>127\.0\.0\.1:[0-9]+: TLS handshake failed \(unsupported protocol\)$'
	run s_client -servername a.test -tls1_2
	assert_output --regexp 'New, TLSv1\.2, Cipher is ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)'
	run s_client -servername a.test -tls1_3
	assert_output --partial 'New, TLSv1.3, Cipher is TLS_'
	# Each request's line names the version and the cipher.
	run tls_curl a.test /echo --tlsv1.2 --tls-max 1.2 -o /dev/null
	assert_success
	wait_log PROXY '^<6>GET /echo -> http://127\.0\.0\.1:[0-9]+/echo 200 [0-9]+B [0-9.]+ms TLSv1\.2 ECDHE-ECDSA-'
}

@test "tls: ALPN selects http/1.1; a client offering only h2 is refused" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	run s_client -servername a.test -alpn h2,http/1.1
	assert_output --partial 'ALPN protocol: http/1.1'
	run s_client -servername a.test -alpn h2
	assert_output --partial 'no application protocol'
	wait_log PROXY '^<4>127\.0\.0\.1:[0-9]+: TLS handshake failed \(no application protocol\)$'
	run tls_curl a.test /echo -o /dev/null -w '%{http_version}\n'
	assert_output 1.1
}

@test "tls: GET, POST, a chunked body, pipelined requests and a 502, over TLS" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	run tls_curl a.test /echo
	assert_line 'method: GET'
	run tls_curl a.test /echo --data-binary @"$GF_TMP/a.pem"
	assert_line 'method: POST'
	assert_line "body-sha256: $(sha256sum <"$GF_TMP/a.pem" | cut -d' ' -f1)"
	run tls_curl a.test /echo -H 'Transfer-Encoding: chunked' --data-binary @"$GF_TMP/a.key"
	assert_line 'header: Transfer-Encoding: chunked'
	assert_line "body-sha256: $(sha256sum <"$GF_TMP/a.key" | cut -d' ' -f1)"
	# A large body, both ways, in many records.
	head -c 3000000 /dev/urandom >"$GF_TMP/big"
	run tls_curl a.test /echo --data-binary @"$GF_TMP/big"
	assert_line "body-length: 3000000"
	assert_line "body-sha256: $(sha256sum <"$GF_TMP/big" | cut -d' ' -f1)"
	# Three requests in one write on one connection: three answers, in order.
	run "$GF_PY" - "$PROXY_PORT" "$GF_TMP/ca.pem" <<-'EOF'
	import socket, ssl, sys
	ctx = ssl.create_default_context(cafile=sys.argv[2])
	s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
	                    server_hostname="a.test")
	s.sendall(b"GET /echo?1 HTTP/1.1\r\nHost: a.test\r\n\r\n"
	          b"GET /echo?2 HTTP/1.1\r\nHost: a.test\r\n\r\n"
	          b"GET /echo?3 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	data = b""
	while True:
	    d = s.recv(65536)
	    if not d:
	        break
	    data += d
	for line in data.split(b"\n"):
	    if line.startswith(b"HTTP/1.1 ") or line.startswith(b"target: "):
	        print(line.decode().strip())
	EOF
	assert_success
	assert_output "HTTP/1.1 200 OK
target: /echo?1
HTTP/1.1 200 OK
target: /echo?2
HTTP/1.1 200 OK
target: /echo?3"
	run tls_curl a.test /down/x -o /dev/null -w '%{http_code}\n'
	assert_output 502
	wait_log PROXY '^<3>GET /down/x -> http://127\.0\.0\.1:[0-9]+/x 502 .* TLSv1\.3 TLS_'
}

@test "tls: renewed files serve the next connection; an open connection keeps its certificate" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	old=$(openssl x509 -in "$GF_TMP/a.pem" -noout -serial)
	mkfifo "$GF_TMP/go"
	# A kept-alive connection: one request, wait for the renewal, another.
	"$GF_PY" - "$PROXY_PORT" "$GF_TMP/ca.pem" "$GF_TMP/go" "$GF_TMP/open.der" \
		>"$GF_TMP/open.out" 2>&1 <<-'EOF' &
	import socket, ssl, sys
	ctx = ssl.create_default_context(cafile=sys.argv[2])
	s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
	                    server_hostname="a.test")
	f = s.makefile("rb")
	def get(target, close):
	    s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: a.test\r\n" +
	              (b"Connection: close\r\n" if close else b"") + b"\r\n")
	    status = f.readline()
	    n = 0
	    while True:
	        line = f.readline()
	        if line in (b"\r\n", b""):
	            break
	        if line.lower().startswith(b"content-length:"):
	            n = int(line.split(b":")[1])
	    f.read(n)
	    print(target.decode(), status.decode().strip(), flush=True)
	get(b"/echo?before", False)
	open(sys.argv[3]).read()
	get(b"/echo?after", True)
	open(sys.argv[4], "wb").write(s.getpeercert(binary_form=True))
	EOF
	client=$!
	for i in $(seq 100); do grep -q before "$GF_TMP/open.out" && break; sleep 0.05; done
	grep -q before "$GF_TMP/open.out" || fail "no first answer: $(cat "$GF_TMP/open.out")"
	tls_leaf a a.test
	new=$(openssl x509 -in "$GF_TMP/a.pem" -noout -serial)
	[ "$old" != "$new" ] || fail "the renewed certificate has the old serial"
	# The next connection gets the new certificate, with no reload.
	run bash -c "timeout 10 openssl s_client -connect 127.0.0.1:$PROXY_PORT -servername a.test </dev/null 2>/dev/null | openssl x509 -noout -serial"
	assert_output "$new"
	echo go >"$GF_TMP/go"
	wait "$client"
	run cat "$GF_TMP/open.out"
	assert_line '/echo?before HTTP/1.1 200 OK'
	assert_line '/echo?after HTTP/1.1 200 OK'
	run openssl x509 -inform der -in "$GF_TMP/open.der" -noout -serial
	assert_output "$old"
}

@test "tls: a key that does not match its certificate: PRIORITY 2, a failed handshake, a --check-config error" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/tls.conf"
	assert_success
	# b.test's certificate with a.test's key; a.test itself still works.
	sed -i "s|^certificate = $GF_TMP/b.pem $GF_TMP/b.key|certificate = $GF_TMP/b.pem $GF_TMP/a.key|" \
		"$GF_TMP/tls.conf"
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/tls.conf"
	assert_failure 78
	assert_output --regexp "tls\.conf:[0-9]+: certificate $GF_TMP/b\.pem $GF_TMP/a\.key: the key does not belong to the certificate"
	run tls_curl b.test /echo
	assert_failure 35
	wait_log PROXY "^<2>127\\.0\\.0\\.1:[0-9]+: $GF_TMP/tls\\.conf:[0-9]+: certificate $GF_TMP/b\\.pem $GF_TMP/a\\.key: the key does not belong to the certificate\$"
	run tls_curl a.test /echo -o /dev/null -w '%{http_code}\n'
	assert_output 200
	# Not a key at all, and a missing file: the same, never a crash.
	echo garbage >"$GF_TMP/a.key"
	run tls_curl a.test /echo
	assert_failure 35
	wait_log PROXY ": certificate $GF_TMP/a\\.pem $GF_TMP/a\\.key: no PEM private key in the key file\$"
	rm "$GF_TMP/a.pem"
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/tls.conf"
	assert_failure 78
	assert_output --partial "certificate $GF_TMP/a.pem: No such file or directory"
	run tls_curl a.test /echo
	assert_failure 35
	wait_log PROXY ": certificate $GF_TMP/a\\.pem $GF_TMP/a\\.key: cannot read it\$"
	run grep -c 'Sanitizer\|dumped core\|signal' "$GF_TMP/PROXY.err"
	assert_output 0
}

@test "tls: --tls without a certificate is a PRIORITY 2 line and a closed connection" {
	gf_has_tls || { tls_without_tls; return; }
	start_peer
	printf '[route all]\nprefix = /\nupstream = %s\n' "$BACKEND_URL" >"$GF_TMP/none.conf"
	start_conf_proxy none --tls
	run gf_curl -k "https://127.0.0.1:$PROXY_PORT/echo"
	assert_failure
	wait_log PROXY '^<2>127\.0\.0\.1:[0-9]+: no certificate in \[tls\]'
}

@test "tls: --rotate-ticket-key run by hand as root keeps the key in gfproxy's group" {
	gf_has_tls || { tls_without_tls; return; }
	[ "$(id -u)" = 0 ] || fail "needs root, to give a file another group"
	# The state directory is root:gfproxy (here nogroup): a first key gets its group.
	mkdir "$GF_TMP/state"
	chgrp nogroup "$GF_TMP/state"
	"$GF_PROXY_BIN" --rotate-ticket-key "$GF_TMP/state/ticket.key"
	run stat -c '%a %G' "$GF_TMP/state/ticket.key"
	assert_output '640 nogroup'
	# A rotation keeps the old file's group.
	chgrp daemon "$GF_TMP/state/ticket.key"
	"$GF_PROXY_BIN" --rotate-ticket-key "$GF_TMP/state/ticket.key"
	run stat -c '%a %G' "$GF_TMP/state/ticket.key"
	assert_output '640 daemon'
}

@test "tls: a session resumes in another process with the shared ticket key, for one rotation" {
	gf_has_tls || { tls_without_tls; return; }
	"$GF_PROXY_BIN" --rotate-ticket-key "$GF_TMP/ticket.key"
	run stat -c '%a %s' "$GF_TMP/ticket.key"
	assert_output '640 160'
	tls_pair "ticket-key = $GF_TMP/ticket.key"
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/tls.conf"
	assert_success
	# The ticket comes after the handshake: give s_client a moment to read it.
	sleep 1 | timeout 10 openssl s_client -connect "127.0.0.1:$PROXY_PORT" -servername a.test \
		-sess_out "$GF_TMP/sess" >"$GF_TMP/first" 2>&1
	run grep -E '^(New|Reused),' "$GF_TMP/first"
	assert_output --partial 'New, TLSv1.3'
	run s_client -servername a.test -sess_in "$GF_TMP/sess"
	assert_output --partial 'Reused, TLSv1.3'
	# One rotation: the old key is the previous one, still accepted.
	"$GF_PROXY_BIN" --rotate-ticket-key "$GF_TMP/ticket.key"
	run s_client -servername a.test -sess_in "$GF_TMP/sess"
	assert_output --partial 'Reused, TLSv1.3'
	# Two: retired, a full handshake.
	"$GF_PROXY_BIN" --rotate-ticket-key "$GF_TMP/ticket.key"
	run s_client -servername a.test -sess_in "$GF_TMP/sess"
	assert_output --partial 'New, TLSv1.3'
	# Without ticket-key no ticket is offered: none could be opened elsewhere.
	tls_conf tls
	sleep 1 | timeout 10 openssl s_client -connect "127.0.0.1:$PROXY_PORT" -servername a.test \
		-sess_out "$GF_TMP/sess2" >"$GF_TMP/second" 2>&1
	run grep -c 'TLS session ticket:' "$GF_TMP/second"
	assert_output 0
}

@test "tls: testssl.sh finds nothing of severity MEDIUM or higher, and only TLS 1.2 and 1.3 with strong suites" {
	gf_has_tls || { tls_without_tls; return; }
	command -v testssl >/dev/null || fail "required tool 'testssl' is not installed (Debian testssl.sh)"
	tls_pair
	# Protocols, cipher categories, forward secrecy, the server's choices and
	# certificate, and the known vulnerabilities; bounded.
	run timeout 600 testssl --quiet --color 0 --warnings off --add-ca "$GF_TMP/ca.pem" \
		--jsonfile "$GF_TMP/testssl.json" -p -s -f -S -P -U --ip 127.0.0.1 \
		"https://a.test:$PROXY_PORT"
	assert_success
	run "$GF_PY" - "$GF_TMP/testssl.json" <<-'EOF'
	import json, sys
	found = {f["id"]: f for f in json.load(open(sys.argv[1]))}
	# What a scan of a reachable TLS server has: it did run.
	for need in ("SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "cipher_order",
	             "cert_trust", "cert_chain_of_trust", "heartbleed", "ROBOT"):
	    if need not in found:
	        print("missing from the scan:", need)
	for f in found.values():
	    if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL"):
	        print(f["severity"], f["id"], f["finding"])
	offered = lambda ids: " ".join(i for i in ids if found.get(i, {}).get("finding", "").startswith("offered"))
	print("protocols:", offered(("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3")))
	# Below testssl's severities: CBC and other "average" suites are not offered either.
	print("ciphers:", offered(("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
	                            "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE",
	                            "cipherlist_STRONG")))
	EOF
	assert_success
	assert_output 'protocols: TLS1_2 TLS1_3
ciphers: cipherlist_STRONG'
}

@test "tls: a headless Chromium that trusts the test CA loads a page through gfproxy --tls" {
	gf_has_tls || { tls_without_tls; return; }
	local t
	for t in chromium certutil; do
		command -v $t >/dev/null ||
			fail "required tool '$t' is not installed (packaging/install-deps check)"
	done
	tls_pair
	# Chromium trusts what its NSS database under $HOME does: the test CA only.
	mkdir -p "$GF_TMP/home/.pki/nssdb"
	certutil -d "sql:$GF_TMP/home/.pki/nssdb" -N --empty-password
	certutil -d "sql:$GF_TMP/home/.pki/nssdb" -A -n gfproxy-test-ca -t C,, -i "$GF_TMP/ca.pem"
	run env HOME="$GF_TMP/home" timeout 60 chromium --headless=new --no-sandbox --disable-gpu \
		--no-first-run --user-data-dir="$GF_TMP/home/profile" \
		--host-resolver-rules="MAP b.test 127.0.0.1" --dump-dom "https://b.test:$PROXY_PORT/echo" \
		2>/dev/null 3>&-
	assert_success
	assert_output --partial 'User-Agent: Mozilla/5.0'
	assert_output --partial 'header: X-Forwarded-Proto: https'
	wait_log PROXY '^<6>GET /echo -> http://127\.0\.0\.1:[0-9]+/echo 200 [0-9]+B [0-9.]+ms TLSv1\.3 TLS_'
	# A connection the browser opened ahead and closed unused is no error.
	run proxy_log
	refute_output --partial 'read error'
}

@test "tls: a WebSocket over TLS: the tunnel relays both ways, in many records" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	run "$GF_PY" - "$PROXY_PORT" "$GF_TMP/ca.pem" <<-'EOF'
	import base64, os, socket, ssl, struct, sys
	ctx = ssl.create_default_context(cafile=sys.argv[2])
	s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
	                    server_hostname="a.test")
	key = base64.b64encode(os.urandom(16))
	s.sendall(b"GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
	f = s.makefile("rb")
	print(f.readline().decode().strip())
	while f.readline() not in (b"\r\n", b""):
	    pass
	def frame(opcode, payload):
	    mask = os.urandom(4)
	    head = bytes([0x80 | opcode])
	    n = len(payload)
	    head += bytes([0x80 | 127]) + struct.pack(">Q", n) if n > 65535 else (
	        bytes([0x80 | 126]) + struct.pack(">H", n) if n > 125 else bytes([0x80 | n]))
	    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
	def read_frame():
	    b0, b1 = f.read(2)
	    n = b1 & 0x7f
	    if n == 126:
	        n = struct.unpack(">H", f.read(2))[0]
	    elif n == 127:
	        n = struct.unpack(">Q", f.read(8))[0]
	    return b0 & 0x0f, f.read(n)
	big = os.urandom(100000)   # several TLS records each way
	s.sendall(frame(2, big) + frame(1, b"hello over tls"))
	op, data = read_frame()
	print(op, data == big)
	op, data = read_frame()
	print(op, data.decode())
	EOF
	assert_success
	assert_output "HTTP/1.1 101 Switching Protocols
2 True
1 hello over tls"
}

@test "tls: a client that never finishes its handshake is dropped after the handshake timeout, with one line" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	# Connect, say nothing: closed after TLS_HANDSHAKE_TIMEOUT_MS (10 s), not before.
	run "$GF_PY" - "$PROXY_PORT" <<-'EOF'
	import socket, sys, time
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
	t = time.monotonic()
	d = s.recv(1)
	print("closed" if d == b"" else "data", round(time.monotonic() - t))
	EOF
	assert_success
	assert_output --regexp '^closed (9|10|11)$'
	wait_log PROXY '^<4>127\.0\.0\.1:[0-9]+: TLS handshake not done within its timeout$'
}

@test "tls: behind a balancer's PROXY header, the ClientHello sent in the same packet is the handshake's" {
	gf_has_tls || { tls_without_tls; return; }
	tls_files
	sed -i '1i [global]\nproxy-protocol = yes\ntrusted-proxies = 127.0.0.1' "$GF_TMP/tls.conf"
	start_conf_proxy tls --tls
	# The header and the ClientHello in one write, so gfproxy reads both at once.
	run "$GF_PY" - "$PROXY_PORT" "$GF_TMP/ca.pem" <<-'EOF'
	import socket, ssl, sys
	ctx = ssl.create_default_context(cafile=sys.argv[2])
	inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
	tls = ctx.wrap_bio(inc, out, server_hostname="b.test")
	s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
	header = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n"
	def pump(first=b""):
	    data = first + out.read()
	    if data:
	        s.sendall(data)
	def step(f, *a):
	    while True:
	        try:
	            return f(*a)
	        except ssl.SSLWantReadError:
	            pump()
	            d = s.recv(65536)
	            if not d:
	                raise SystemExit("closed")
	            inc.write(d)
	try:
	    tls.do_handshake()
	except ssl.SSLWantReadError:
	    pump(header)
	step(tls.do_handshake)
	print(tls.getpeercert()["subject"][0][0][1])
	step(tls.write, b"GET /echo HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
	pump()
	body = b""
	while True:
	    try:
	        d = step(tls.read, 65536)
	    except (ssl.SSLZeroReturnError, SystemExit):
	        break
	    if not d:
	        break
	    body += d
	for line in body.split(b"\n"):
	    if line.startswith(b"header: X-Forwarded-"):
	        print(line.decode().strip())
	EOF
	assert_success
	assert_output "b.test
header: X-Forwarded-For: 203.0.113.7
header: X-Forwarded-Host: b.test
header: X-Forwarded-Proto: https"
	wait_log PROXY '^<6>GET /echo -> .* 200 .* TLSv1\.3 TLS_'
}

@test "tls: a client that sends close_notify and leaves while the upstream is slow is logged as gone at once" {
	gf_has_tls || { tls_without_tls; return; }
	tls_pair
	# The request read, then close_notify and FIN, as a browser closing a tab.
	"$GF_PY" - "$PROXY_PORT" "$GF_TMP/ca.pem" <<-'EOF'
	import socket, ssl, sys, time
	ctx = ssl.create_default_context(cafile=sys.argv[2])
	s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
	                    server_hostname="a.test")
	s.sendall(b"GET /delay/8000 HTTP/1.1\r\nHost: a.test\r\n\r\n")
	time.sleep(0.3)
	s.settimeout(0.2)
	try:
	    s.unwrap()
	except OSError:
	    pass
	s.close()
	EOF
	# Within the liveness check's interval, not when the upstream answers.
	wait_log PROXY '^<4>GET /delay/8000 -> .*: client went away( TLS.*)?$' 2
	run grep -c '^<[0-7]>' "$GF_TMP/PROXY.err"
	assert_output 1
}
