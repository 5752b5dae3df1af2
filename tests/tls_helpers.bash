# tls_helpers.bash - helpers for tests/tls.bats (gfproxy --tls).
#
# Loaded after helpers.bash and config_helpers.bash. Certificates are made
# by openssl in the test's own $GF_TMP: a CA, and ECDSA P-256 leaf
# certificates signed by it.

# tls_ca - $GF_TMP/ca.pem and ca.key.
tls_ca() {
	command -v openssl >/dev/null || fail "required tool 'openssl' is not installed"
	openssl ecparam -name prime256v1 -genkey -noout -out "$GF_TMP/ca.key" 2>/dev/null &&
	openssl req -x509 -new -key "$GF_TMP/ca.key" -days 400 -subj /CN=gfproxy-tls-test-ca \
		-out "$GF_TMP/ca.pem" 2>/dev/null || fail "openssl: test CA"
}

# tls_leaf NAME DNS [FILE] - an ECDSA P-256 certificate for DNS signed by the
# test CA: FILE.pem (leaf then CA, as an ACME client's fullchain) and
# FILE.key; FILE defaults to $GF_TMP/NAME. A year long, with a random serial
# and a CRL address, as a public CA's: testssl.sh rates the rest.
tls_leaf() {
	local name=$1 dns=$2 f=${3:-$GF_TMP/$1}
	openssl ecparam -name prime256v1 -genkey -noout -out "$f.key.new" 2>/dev/null &&
	openssl req -new -key "$f.key.new" -subj "/CN=$dns" -out "$f.csr" 2>/dev/null &&
	printf 'subjectAltName=DNS:%s\ncrlDistributionPoints=URI:http://crl.test/ca.crl\n' \
		"$dns" >"$f.ext" &&
	openssl x509 -req -in "$f.csr" -CA "$GF_TMP/ca.pem" -CAkey "$GF_TMP/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days 365 -extfile "$f.ext" \
		-out "$f.leaf" 2>/dev/null || fail "openssl: certificate for $dns"
	# Replaced by rename, as ACME clients do, so a reader sees either whole.
	cat "$f.leaf" "$GF_TMP/ca.pem" >"$f.pem.new"
	mv "$f.pem.new" "$f.pem"
	mv "$f.key.new" "$f.key"
}

# tls_conf NAME [EXTRA...] - $GF_TMP/NAME.conf: every path to the running
# backend, certificates a.test and b.test, and EXTRA lines in [tls].
tls_conf() {
	local name=$1; shift
	{
		printf '[route all]\nprefix = /\nupstream = %s\n' "$BACKEND_URL"
		printf '[route down]\nprefix = /down\nupstream = http://127.0.0.1:%s\n' "$(refused_port)"
		printf '[tls]\ncertificate = %s/a.pem %s/a.key\n' "$GF_TMP" "$GF_TMP"
		printf 'certificate = %s/b.pem %s/b.key\n' "$GF_TMP" "$GF_TMP"
		[ $# -eq 0 ] || printf '%s\n' "$@"
	} >"$GF_TMP/$name.conf"
}

# tls_files [EXTRA...] - the test peer, the test CA, a.test and b.test, and
# $GF_TMP/tls.conf naming them (EXTRA lines in [tls]).
tls_files() {
	start_peer
	tls_ca
	tls_leaf a a.test
	tls_leaf b b.test
	tls_conf tls "$@"
}

# tls_pair [EXTRA...] - tls_files, and gfproxy --tls reading tls.conf; sets
# PROXY_PORT.
tls_pair() {
	tls_files "$@"
	start_conf_proxy tls --tls
}

# tls_curl HOST PATH [ARGS...] - curl to https://HOST:PORT/PATH, HOST resolved
# to the proxy, verified against the test CA.
tls_curl() {
	local host=$1 path=$2; shift 2
	gf_curl --cacert "$GF_TMP/ca.pem" --resolve "$host:$PROXY_PORT:127.0.0.1" \
		"https://$host:$PROXY_PORT$path" "$@"
}

# s_client ARGS... - openssl s_client to the proxy, nothing sent, bounded.
s_client() {
	timeout 10 openssl s_client -connect "127.0.0.1:$PROXY_PORT" -CAfile "$GF_TMP/ca.pem" \
		"$@" </dev/null 2>&1
}

# tls_subject HOST - the CN of the certificate the proxy serves for SNI HOST.
tls_subject() {
	s_client -servername "$1" | sed -n 's/^subject=CN *= *//p'
}

# tls_without_tls - for a gfproxy built without TLS (make CURL=static-notls):
# --tls is a usage error naming why, and a [tls] section a configuration
# error for --check-config.
tls_without_tls() {
	run "$GF_PROXY_BIN" --tls --check-config /dev/null
	assert_failure 64
	assert_output --partial "built without TLS"
	printf '[tls]\ncertificate = /a.pem /a.key\n' >"$GF_TMP/notls.conf"
	run "$GF_PROXY_BIN" --check-config "$GF_TMP/notls.conf"
	assert_failure 78
	assert_output --partial "[tls]: this gfproxy is built without TLS"
}
