#!/usr/bin/env bats
# gfproxy-tls.socket as an administrator sets it up, in a booted Debian with real systemd
# and journald (tests/system/container.bash): installed but not enabled by the package,
# then a certificate in [tls], the socket enabled, HTTPS on 443, resumption across
# instances with the ticket key the timer made. Needs root; `make check-system` runs it.

PKGDIR=${GFPROXY_PKGDIR:-build}
VERSION=${GFPROXY_VERSION:-0.1.0}

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (a container with real systemd)"
	local deb
	deb=$(ls "$PKGDIR"/gfproxy_"$VERSION"_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || { echo "no $PKGDIR/gfproxy_${VERSION}_*.deb: run make deb" >&2; return 1; }
	for tool in curl openssl ss python3 nsenter; do
		command -v "$tool" >/dev/null || { echo "missing $tool (packaging/install-deps system)" >&2; return 1; }
	done
	export CT_SHARE CT_NSPAWN CT_LEADER CT_NAME=gfproxy-sys-tls-$$
	CT_SHARE=$(mktemp -d /var/tmp/gfproxy-share.XXXXXX)
	load container
	cp "$deb" "$CT_SHARE/gfproxy.deb"
	# A test CA and an ECDSA P-256 certificate for a.test, as an ACME client leaves them.
	local d=$CT_SHARE
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key"
	openssl req -x509 -new -key "$d/ca.key" -days 2 -subj /CN=gfproxy-system-ca -out "$d/ca.pem"
	openssl ecparam -name prime256v1 -genkey -noout -out "$d/privkey.pem"
	openssl req -new -key "$d/privkey.pem" -subj /CN=a.test -out "$d/a.csr"
	printf 'subjectAltName=DNS:a.test\n' >"$d/a.ext"
	openssl x509 -req -in "$d/a.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial 7 -days 2 \
		-extfile "$d/a.ext" -out "$d/cert.pem" 2>/dev/null
	cat "$d/cert.pem" "$d/ca.pem" >"$d/fullchain.pem"
	chmod 0644 "$d"/*.pem
	ct_prepare "$deb"
	ct_boot
}

teardown_file() {
	load container
	ct_down
	[ -n "${CT_SHARE:-}" ] && rm -rf "$CT_SHARE"
}

setup() {
	load container
}

https() {  # https PATH [CURL-ARGS...]: through gfproxy-tls.socket as a.test
	local path=$1; shift
	ct_net curl -sS -m 10 --cacert "$CT_SHARE/ca.pem" --resolve a.test:443:127.0.0.1 \
		"https://a.test$path" "$@"
}

@test "installing leaves gfproxy-tls.socket and its timer disabled: nothing listens on 443" {
	run ct dpkg -i /mnt/share/gfproxy.deb
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(ct systemctl is-enabled gfproxy.socket)" = enabled ]
	[ "$(ct systemctl is-enabled gfproxy-tls.socket)" = disabled ]
	[ "$(ct systemctl is-enabled gfproxy-ticket-rotate.timer)" = disabled ]
	[ "$(ct systemctl is-active gfproxy-tls.socket)" = inactive ]
	[ -z "$(ct_net ss -Hltn 'sport = :443')" ]
}

@test "systemd-analyze verify finds nothing to report in the TLS units" {
	run ct systemd-analyze verify /lib/systemd/system/gfproxy-tls.socket \
		/lib/systemd/system/gfproxy-tls@.service /lib/systemd/system/gfproxy-ticket-rotate.timer \
		/lib/systemd/system/gfproxy-ticket-rotate.service
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "a certificate in [tls] and the socket enabled: HTTPS on 443, the journal names TLS" {
	ct install -d -m 0750 -g gfproxy /etc/gfproxy/tls
	ct install -m 0640 -g gfproxy /mnt/share/fullchain.pem /mnt/share/privkey.pem /etc/gfproxy/tls/
	printf '[tls]\ncertificate = %s\nticket-key = %s\n' \
		'/etc/gfproxy/tls/fullchain.pem /etc/gfproxy/tls/privkey.pem' \
		/var/lib/gfproxy-tls/ticket.key | ct tee -a /etc/gfproxy/gfproxy.conf >/dev/null
	run ct gfproxy --check-config
	echo "$output"
	[ "$status" -eq 0 ]
	ct systemctl enable --now gfproxy-tls.socket
	# The socket is started after the rotation service has made the key: no wait.
	ct test -s /var/lib/gfproxy-tls/ticket.key
	[ "$(ct stat -c '%U:%G %a %s' /var/lib/gfproxy-tls/ticket.key)" = "root:gfproxy 640 160" ]
	[ "$(ct stat -c '%U:%G %a' /var/lib/gfproxy-tls)" = "root:gfproxy 750" ]
	[ "$(https /proxy/user/1)" = "user info from server backend" ]
	for _ in $(seq 20); do
		entry=$(ct journalctl -u 'gfproxy-tls@*' -o json --no-pager | grep '"HTTP_STATUS"' | tail -n 1)
		[ -n "$entry" ] && break
		sleep 0.1
	done
	echo "$entry"
	[ "$(field TLS_VERSION <<<"$entry")" = TLSv1.3 ]
	[[ "$(field TLS_CIPHER <<<"$entry")" == TLS_* ]]
}

@test "a session resumes in another instance with the timer's ticket key" {
	sleep 1 | ct_net timeout 10 openssl s_client -connect 127.0.0.1:443 -servername a.test \
		-CAfile "$CT_SHARE/ca.pem" -sess_out "$BATS_FILE_TMPDIR/sess" >"$BATS_FILE_TMPDIR/first" 2>&1
	grep -q '^New, TLSv1.3' "$BATS_FILE_TMPDIR/first"
	run ct_net timeout 10 openssl s_client -connect 127.0.0.1:443 -servername a.test \
		-CAfile "$CT_SHARE/ca.pem" -sess_in "$BATS_FILE_TMPDIR/sess" </dev/null
	echo "$output" | grep -E '^(New|Reused),'
	[[ "$output" == *"Reused, TLSv1.3"* ]]
	# A rotation keeps it: the old key is the previous one.
	ct systemctl start gfproxy-ticket-rotate.service
	run ct_net timeout 10 openssl s_client -connect 127.0.0.1:443 -servername a.test \
		-CAfile "$CT_SHARE/ca.pem" -sess_in "$BATS_FILE_TMPDIR/sess" </dev/null
	[[ "$output" == *"Reused, TLSv1.3"* ]]
}

field() {  # field NAME < JSON: one field of one entry
	python3 -c 'import json, sys; print(json.loads(sys.stdin.readline()).get(sys.argv[1], ""))' "$1"
}
