#!/usr/bin/env bats
# The package on a machine whose kernel offers no Landlock (here: systemd-nspawn's own
# system call filter, which refuses Landlock's calls): gfproxy serves with the rest of its
# sandbox, says so once per connection at PRIORITY 4, and names what it has in SANDBOX.
# Needs root; `make check-system` builds the package and runs this.

PKGDIR=${GFPROXY_PKGDIR:-build}
VERSION=${GFPROXY_VERSION:-0.1.0}

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (a container with real systemd)"
	local deb
	deb=$(ls "$PKGDIR"/gfproxy_"$VERSION"_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || { echo "no $PKGDIR/gfproxy_${VERSION}_*.deb: run make deb" >&2; return 1; }
	export CT_SHARE CT_NSPAWN CT_LEADER CT_NAME=gfproxy-degraded-$$ CT_SYSCALLS=
	CT_SHARE=$(mktemp -d /var/tmp/gfproxy-share.XXXXXX)
	load container
	cp "$deb" "$CT_SHARE/gfproxy.deb"
	ct_prepare "$deb"
	ct_boot
	ct dpkg -i /mnt/share/gfproxy.deb >/dev/null
}

teardown_file() {
	load container
	ct_down
	[ -n "${CT_SHARE:-}" ] && rm -rf "$CT_SHARE"
}

setup() {
	load container
}

entries() {  # entries PRIORITY: MESSAGE and SANDBOX of the gfproxy entries at that priority
	ct journalctl -q -t gfproxy -p "$1..$1" -o json --no-pager | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    print(e.get("SANDBOX", ""), "|", e.get("MESSAGE", ""))'
}

@test "without Landlock a request is still served, confined by the rest" {
	for _ in $(seq 50); do
		out=$(ct_net curl -sS -m 10 http://127.0.0.1:8199/proxy/user/1) && break
		sleep 0.1
	done
	[ "$out" = "user info from server backend" ]
	for _ in $(seq 20); do
		[ -n "$(entries 6)" ] && break
		sleep 0.1
	done
	run entries 6
	echo "$output"
	[[ "${lines[0]}" == "rlimits seccomp | GET /proxy/user/1 -> http://127.0.0.1:8198/user/1 200 29B "* ]]
}

@test "what is missing is said once per connection, at PRIORITY 4" {
	run entries 4
	echo "$output"
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "rlimits seccomp | the kernel allows only part of the sandbox: rlimits seccomp" ]
	# The backend, confined by the same code, says the same under its own name.
	[ -n "$(ct journalctl -q -t gfproxy-backend -p 4..4 --grep 'only part of the sandbox' --no-pager)" ]
}
