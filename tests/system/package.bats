#!/usr/bin/env bats
# What an administrator does with the .deb, in a booted Debian with real systemd and
# journald (tests/system/container.bash). The tests run in order on one container: the
# package is installed first, driven, then removed, purged, reinstalled and upgraded.
# Needs root; `make check-system` builds the packages and runs this.

PKGDIR=${GFPROXY_PKGDIR:-build}
VERSION=${GFPROXY_VERSION:-0.1.0}
# The issue's burst; lower it only to iterate on this file.
BURST=${GFPROXY_BURST:-5000}

setup_file() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (a container with real systemd)"
	local deb
	deb=$(ls "$PKGDIR"/gfproxy_"$VERSION"_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || { echo "no $PKGDIR/gfproxy_${VERSION}_*.deb: run make deb" >&2; return 1; }
	for tool in curl ab ss python3 nsenter dpkg-deb; do
		command -v "$tool" >/dev/null || { echo "missing $tool (packaging/install-deps system)" >&2; return 1; }
	done
	# Fixed here, so that the tests and teardown_file (other processes) reach the same container.
	export CT_SHARE CT_NSPAWN CT_LEADER CT_NAME=gfproxy-sys-$$
	CT_SHARE=$(mktemp -d /var/tmp/gfproxy-share.XXXXXX)
	load container
	cp "$deb" "$CT_SHARE/gfproxy.deb"
	local probe=${GFPROXY_PROBE:-$PKGDIR/probe/gfproxy}
	cp "$probe" "$CT_SHARE/gfproxy-probe" && cp "$(dirname "$probe")/gfproxy-backend" \
		"$CT_SHARE/gfproxy-backend-probe" || { echo "no probe build: run make probe" >&2; return 1; }
	# The upgrade: the same payload as a later version, so that only the upgrade path differs.
	local re="$CT_SHARE/repack"
	dpkg-deb -R "$deb" "$re"
	sed -i "s/^Version: .*/Version: $VERSION+sysupgrade1/" "$re/DEBIAN/control"
	dpkg-deb -b --root-owner-group "$re" "$CT_SHARE/gfproxy-upgrade.deb" >/dev/null
	rm -rf "$re"
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

# --- helpers -------------------------------------------------------------------------

get() {  # get PORT PATH: the body, curl's exit status passing through
	ct_net curl -sS -m 10 "http://127.0.0.1:$1$2"
}

status_of() {  # status_of PORT PATH: the HTTP status alone
	ct_net curl -s -o /dev/null -m 10 -w '%{http_code}' "http://127.0.0.1:$1$2"
}

listening() {  # listening PORT: is anything in the container listening on PORT?
	[ -n "$(ct_net ss -Hltn "sport = :$1")" ]
}

# A negated command (! cmd) never fails a bats test: errexit ignores it.
not_listening() {
	[ -z "$(ct_net ss -Hltn "sport = :$1")" ]
}

instances() {  # the running instances of a template, by unit name
	ct systemctl list-units --no-legend --plain --state=active,activating,deactivating "$1@*.service" |
		awk '{print $1}'
}

no_instance_left() {  # no_instance_left TEMPLATE: wait up to 5 s for every instance to end
	local _
	for _ in $(seq 50); do
		[ -z "$(instances "$1")" ] && return 0
		sleep 0.1
	done
	echo "still running: $(instances "$1")" >&2
	return 1
}

held_instance_pid() {  # held_instance_pid [TEMPLATE]: the PID of its one instance, once it runs
	local _ unit pid template=${1:-gfproxy}
	for _ in $(seq 50); do
		unit=$(instances "$template" | head -n 1)
		pid=$([ -n "$unit" ] && ct systemctl show -P MainPID "$unit")
		# Until the exec, MainPID is PID 1's child "(gfproxy)", still setting up the sandbox.
		if [ "${pid:-0}" -gt 0 ] && [ "$(ct cat "/proc/$pid/comm" 2>/dev/null)" = "${template:0:15}" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
	done
	echo "no running gfproxy instance" >&2
	return 1
}

# journal_entries UNITGLOB|IDENTIFIER TARGET: the JSON entries for that target, by unit
# ('gfproxy@*') or by SYSLOG_IDENTIFIER ('gfproxy'). journald attributes an entry to its
# unit from the sender's cgroup, which a process that has just exited no longer has, so
# a test that is not about the unit asks by identifier, which is complete.
journal_entries() {
	local by=-t
	[[ $1 == *@* ]] && by=-u
	ct journalctl -q "$by" "$1" -o json --no-pager | python3 -c '
import json, sys
target = sys.argv[1]
for line in sys.stdin:
    e = json.loads(line)
    if e.get("HTTP_TARGET") == target:
        print(json.dumps(e))' "$2"
}

wait_journal() {  # wait_journal UNITGLOB TARGET: the entries once there are any (2 s at most)
	local _ out
	for _ in $(seq 20); do
		out=$(journal_entries "$1" "$2")
		[ -n "$out" ] && { echo "$out"; return 0; }
		sleep 0.1
	done
	echo "no journal entry for $2 under $1" >&2
	return 1
}

# get_logged PORT TARGETBASE UNITGLOB [STRIP]: a request, and its one entry under UNITGLOB.
# journald names the unit of an entry from the sender's cgroup, which it cannot read once the
# sender has exited: an instance that logs and exits within the same few microseconds may
# leave an entry without _SYSTEMD_UNIT (gfproxy(8), JOURNAL FIELDS; `-t` finds every entry).
# So up to three requests, each with a target of its own, and the first attributed entry.
get_logged() {
	local port=$1 base=$2 glob=$3 strip=${4:-} target try
	for try in 1 2 3; do
		target="$base$RANDOM$RANDOM"
		get "$port" "$target" >/dev/null
		wait_journal "$glob" "${target#"$strip"}" 2>/dev/null && return 0
		# The entry must be in the journal all the same, under its identifier.
		[ -n "$(journal_entries "${glob%%@*}" "${target#"$strip"}")" ] ||
			{ echo "no entry at all for $target" >&2; return 1; }
	done
	echo "three entries, none attributed to $glob" >&2
	return 1
}

field() {  # field NAME < JSON: one field of one entry
	python3 -c 'import json, sys; print(json.loads(sys.stdin.readline()).get(sys.argv[1], ""))' "$1"
}

# --- install -------------------------------------------------------------------------

@test "dpkg -i installs the package" {
	run ct dpkg -i /mnt/share/gfproxy.deb
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(ct dpkg-query -W -f '${db:Status-Status}' gfproxy)" = installed ]
}

@test "installing enables both sockets" {
	[ "$(ct systemctl is-enabled gfproxy.socket)" = enabled ]
	[ "$(ct systemctl is-enabled gfproxy-backend.socket)" = enabled ]
}

@test "installing starts both sockets listening" {
	[ "$(ct systemctl is-active gfproxy.socket)" = active ]
	[ "$(ct systemctl is-active gfproxy-backend.socket)" = active ]
	listening 8199
	listening 8198
}

@test "the backend socket listens on loopback only" {
	run ct_net ss -Hltn "sport = :8198"
	[[ "$output" == *"127.0.0.1:8198"* ]]
	[[ "$output" != *"0.0.0.0:8198"* && "$output" != *"*:8198"* ]]
}

@test "systemd-analyze verify finds nothing to report in the installed units" {
	run ct systemd-analyze verify /lib/systemd/system/gfproxy.socket \
		/lib/systemd/system/gfproxy-backend.socket /lib/systemd/system/gfproxy@.service \
		/lib/systemd/system/gfproxy-backend@.service
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

# systemd-analyze security reads only the unit: it cannot see the seccomp filter, Landlock
# and rlimits gfproxy applies to itself (tested below, from inside), and rates the units as
# if they ran without. The figure only guards against a directive dropped by mistake.
@test "systemd-analyze security rates gfproxy@.service 6.5 or less, the unit's share" {
	run ct systemd-analyze security --no-pager gfproxy@1.service
	echo "${lines[-1]}"
	score=$(echo "${lines[-1]}" | grep -o '[0-9]*\.[0-9]' | head -n 1)
	python3 -c "import sys; sys.exit(0 if float('$score') <= 6.5 else 1)"
}

@test "systemd-analyze security rates gfproxy-backend@.service 6.5 or less, the unit's share" {
	run ct systemd-analyze security --no-pager gfproxy-backend@1.service
	echo "${lines[-1]}"
	score=$(echo "${lines[-1]}" | grep -o '[0-9]*\.[0-9]' | head -n 1)
	python3 -c "import sys; sys.exit(0 if float('$score') <= 6.5 else 1)"
}

# --- requests ------------------------------------------------------------------------

@test "a request through 8199 gets the backend's user info" {
	run get 8199 /proxy/user/1
	[ "$status" -eq 0 ]
	[ "$output" = "user info from server backend" ]
}

@test "a path outside the prefix gets 404" {
	[ "$(status_of 8199 /elsewhere)" = 404 ]
}

@test "each connection spawns one gfproxy@ instance and reaps it" {
	before=$(ct systemctl show -P NAccepted gfproxy.socket)
	for i in 1 2 3; do get 8199 /proxy/user/1 >/dev/null; done
	after=$(ct systemctl show -P NAccepted gfproxy.socket)
	[ "$after" -eq $((before + 3)) ]
	no_instance_left gfproxy
	no_instance_left gfproxy-backend
	[ "$(ct systemctl show -P NConnections gfproxy.socket)" -eq 0 ]
}

@test "the journal has one structured gfproxy@ entry per request" {
	entries=$(get_logged 8199 "/proxy/user/1?journal=" 'gfproxy@*')
	[ "$(echo "$entries" | wc -l)" -eq 1 ]
	for f in MESSAGE PRIORITY REMOTE_ADDR HTTP_METHOD HTTP_TARGET UPSTREAM_URL HTTP_STATUS \
		BYTES_SENT BYTES_RECEIVED DURATION_USEC; do
		[ -n "$(echo "$entries" | field "$f")" ] || { echo "no $f: $entries"; false; }
	done
	[ "$(echo "$entries" | field SYSLOG_IDENTIFIER)" = gfproxy ]
	[ "$(echo "$entries" | field HTTP_STATUS)" = 200 ]
	[ "$(echo "$entries" | field PRIORITY)" = 6 ]
	[ "$(echo "$entries" | field HTTP_METHOD)" = GET ]
	[ "$(echo "$entries" | field REMOTE_ADDR)" = 127.0.0.1 ]
	[[ "$(echo "$entries" | field UPSTREAM_URL)" == http://127.0.0.1:8198/user/1* ]]
}

@test "the journal has the backend's entry under gfproxy-backend@" {
	entries=$(get_logged 8199 "/proxy/user/1?backend=" 'gfproxy-backend@*' /proxy)
	[ "$(echo "$entries" | wc -l)" -eq 1 ]
	[ "$(echo "$entries" | field SYSLOG_IDENTIFIER)" = gfproxy-backend ]
	[ "$(echo "$entries" | field HTTP_STATUS)" = 200 ]
	# The fields gfproxy-backend(8) lists.
	[ "$(echo "$entries" | field BYTES_SENT)" = 29 ]
	[ "$(echo "$entries" | field BYTES_RECEIVED)" = 0 ]
	[ "$(echo "$entries" | field DURATION_USEC)" -ge 0 ]
	[ "$(echo "$entries" | field REMOTE_ADDR)" = 127.0.0.1 ]
}

# --- confinement ---------------------------------------------------------------------

@test "an instance runs confined: its own system user, no capability, seccomp, no way to gain privileges" {
	# An idle keep-alive connection keeps its instance alive for a few seconds.
	ct_net timeout 8 bash -c 'exec 5<>/dev/tcp/127.0.0.1/8199; sleep 6' 3>&- &
	holder=$!
	pid=$(held_instance_pid)
	# gfproxy confines itself once it holds its connection: a few milliseconds after exec.
	for _ in $(seq 20); do
		proc=$(ct cat "/proc/$pid/status")
		echo "$proc" | grep -qx 'Seccomp:[[:space:]]*2' && break
		sleep 0.05
	done
	kill "$holder" 2>/dev/null || :
	echo "$proc" | grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Seccomp):'
	[ "$(echo "$proc" | awk '/^Uid:/{print $2}')" -eq "$(ct id -u gfproxy)" ]
	[ "$(echo "$proc" | awk '/^Gid:/{print $2}')" -eq "$(ct id -g gfproxy)" ]
	echo "$proc" | grep -qx 'CapEff:[[:space:]]*0000000000000000'
	echo "$proc" | grep -qx 'CapBnd:[[:space:]]*0000000000000000'
	echo "$proc" | grep -qx 'NoNewPrivs:[[:space:]]*1'
	echo "$proc" | grep -qx 'Seccomp:[[:space:]]*2'
}

@test "every entry of both programs names the whole sandbox in SANDBOX" {
	target="/proxy/user/1?sandbox=$RANDOM$RANDOM"
	get 8199 "$target" >/dev/null
	all="rlimits seccomp landlock-fs landlock-net landlock-scope"
	[ "$(wait_journal 'gfproxy@*' "$target" | field SANDBOX)" = "$all" ]
	[ "$(wait_journal 'gfproxy-backend@*' "${target#/proxy}" | field SANDBOX)" = "$all" ]
	# Nothing was run with less.
	[ -z "$(ct journalctl -q -u 'gfproxy*' -p warning --grep 'part of the sandbox' --no-pager)" ]
}

# tests/system/escape.c, built into gfproxy by make probe: every attempt it makes, one line each.
ATTEMPTS=$(grep -c '^[[:space:]]*TRY(' "$BATS_TEST_DIRNAME/escape.c")

@test "code running in a packaged instance escapes nothing: every attempt is blocked" {
	ct_net timeout 8 bash -c 'exec 5<>/dev/tcp/127.0.0.1/8199; sleep 6' 3>&- &
	holder=$!
	victim=$(held_instance_pid)
	# The same unit, the same path: only the binary is the probe build.
	ct cp -a /usr/sbin/gfproxy /usr/sbin/gfproxy.packaged
	ct cp /mnt/share/gfproxy-probe /usr/sbin/gfproxy.probe
	ct mv /usr/sbin/gfproxy.probe /usr/sbin/gfproxy     # a rename: the victim runs the old file
	run get 8199 "/?pid=$victim"
	ct mv /usr/sbin/gfproxy.packaged /usr/sbin/gfproxy
	kill "$holder" 2>/dev/null || :
	echo "$output"
	[ "$(echo "$output" | grep -c ': blocked (')" -eq "$ATTEMPTS" ]
	[[ "$output" != *ESCAPED* ]]
	[ "$ATTEMPTS" -ge 25 ]
}

@test "code running in a packaged backend instance escapes nothing either" {
	ct_net timeout 8 bash -c 'exec 5<>/dev/tcp/127.0.0.1/8198; sleep 6' 3>&- &
	holder=$!
	victim=$(held_instance_pid gfproxy-backend)
	ct cp -a /usr/sbin/gfproxy-backend /usr/sbin/gfproxy-backend.packaged
	ct cp /mnt/share/gfproxy-backend-probe /usr/sbin/gfproxy-backend.probe
	ct mv /usr/sbin/gfproxy-backend.probe /usr/sbin/gfproxy-backend
	run get 8198 "/?pid=$victim"
	ct mv /usr/sbin/gfproxy-backend.packaged /usr/sbin/gfproxy-backend
	kill "$holder" 2>/dev/null || :
	echo "$output"
	[ "$(echo "$output" | grep -c ': blocked (')" -eq "$ATTEMPTS" ]
	[[ "$output" != *ESCAPED* ]]
}

@test "the same attempts all succeed unconfined, as root: the probe can tell" {
	ct_net timeout 8 bash -c 'exec 5<>/dev/tcp/127.0.0.1/8199; sleep 6' 3>&- &
	holder=$!
	victim=$(held_instance_pid)
	ct timeout 8 systemd-socket-activate --accept -l 127.0.0.1:18299 \
		-E GFPROXY_PROBE_UNCONFINED=1 /mnt/share/gfproxy-probe 3>&- 2>/dev/null &
	activator=$!
	for _ in $(seq 50); do listening 18299 && break; sleep 0.1; done
	run get 18299 "/?pid=$victim"
	kill "$holder" "$activator" 2>/dev/null || :
	echo "$output"
	[ "$(echo "$output" | grep -c ': ESCAPED$')" -eq "$ATTEMPTS" ]
}

# --- failures and configuration -----------------------------------------------------

@test "stopping the backend socket leaves the proxy listening and gets 502, logged at priority 3" {
	ct systemctl stop gfproxy-backend.socket
	[ "$(ct systemctl is-active gfproxy.socket)" = active ]
	target="/proxy/user/1?down=$RANDOM$RANDOM"
	code=$(status_of 8199 "$target")
	ct systemctl start gfproxy-backend.socket
	[ "$code" = 502 ]
	entries=$(wait_journal gfproxy "$target")
	[ "$(echo "$entries" | field PRIORITY)" = 3 ]
	[ "$(echo "$entries" | field HTTP_STATUS)" = 502 ]
}

@test "systemctl start gfproxy.socket brings both sockets up from stopped" {
	ct systemctl stop gfproxy.socket gfproxy-backend.socket
	not_listening 8199
	not_listening 8198
	ct systemctl start gfproxy.socket
	[ "$(ct systemctl is-active gfproxy-backend.socket)" = active ]
	[ "$(get 8199 /proxy/user/1)" = "user info from server backend" ]
}

@test "a new upstream in /etc/gfproxy/gfproxy.env applies to the next connection" {
	ct cp /etc/gfproxy/gfproxy.env /root/gfproxy.env.orig
	# The backend's /user as the upstream's base path: /proxy/1 -> /user/1.
	echo 'GFPROXY_OPTS="--upstream http://127.0.0.1:8198/user"' | ct tee -a /etc/gfproxy/gfproxy.env >/dev/null
	body=$(get 8199 /proxy/1)
	ct cp /root/gfproxy.env.orig /etc/gfproxy/gfproxy.env
	[ "$body" = "user info from server backend" ]
	[ "$(get 8199 /proxy/1)" = "response from server backend" ]
}

# --- load ------------------------------------------------------------------------------

@test "a burst of connections at concurrency 16 all succeed and leave both sockets active" {
	run ct_net ab -q -s 60 -n "$BURST" -c 16 http://127.0.0.1:8199/proxy/user/1
	echo "$output" | grep -E 'Complete|Failed|Non-2xx|Requests per|Time taken' || echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qE "^Complete requests: +$BURST\$"
	echo "$output" | grep -qE '^Failed requests: +0$'
	[[ "$output" != *Non-2xx* ]]
	[ "$(ct systemctl is-active gfproxy.socket)" = active ]
	[ "$(ct systemctl is-active gfproxy-backend.socket)" = active ]
	[ "$(ct systemctl show -P NRefused gfproxy.socket)" -eq 0 ]
	no_instance_left gfproxy
}

# --- removal, reinstall, upgrade -------------------------------------------------------

@test "dpkg -r stops both sockets and removes every unit, keeping the configuration until purge" {
	run ct dpkg -r gfproxy
	echo "$output"
	[ "$status" -eq 0 ]
	not_listening 8199
	not_listening 8198
	for u in gfproxy.socket gfproxy-backend.socket gfproxy@.service gfproxy-backend@.service \
	    gfproxy-tls.socket gfproxy-tls@.service gfproxy-ticket-rotate.timer \
	    gfproxy-ticket-rotate.service; do
		[ ! -e "/proc/$CT_LEADER/root/lib/systemd/system/$u" ]
		[ "$(ct systemctl show -P LoadState "${u/@/@1}")" = not-found ]
	done
	# What stays until purge, as with every Debian service: the conffiles, and the sockets'
	# enable state (deb-systemd-helper), so that a reinstall keeps the admin's choice; for
	# the TLS socket and its timer, never enabled, the state that says so.
	conffiles=$(ct dpkg-query -W -f '${Conffiles}\n' gfproxy | awk 'NF {print $1}')
	[ -n "$conffiles" ]
	expected=$(printf '%s\n' /etc/gfproxy $conffiles \
		/etc/systemd/system/sockets.target.wants/gfproxy-backend.socket \
		/etc/systemd/system/sockets.target.wants/gfproxy.socket \
		/var/lib/systemd/deb-systemd-helper-enabled/gfproxy-backend.socket.dsh-also \
		/var/lib/systemd/deb-systemd-helper-enabled/gfproxy.socket.dsh-also \
		/var/lib/systemd/deb-systemd-helper-enabled/gfproxy-tls.socket.dsh-also \
		/var/lib/systemd/deb-systemd-helper-enabled/gfproxy-ticket-rotate.timer.dsh-also \
		/var/lib/systemd/deb-systemd-helper-enabled/sockets.target.wants/gfproxy-backend.socket \
		/var/lib/systemd/deb-systemd-helper-enabled/sockets.target.wants/gfproxy.socket | sort)
	run ct find /etc /lib /usr /var/lib/systemd -name '*gfproxy*'
	echo "$output"
	[ "$(echo "$output" | sort)" = "$expected" ]
}

@test "dpkg -P leaves nothing behind" {
	run ct dpkg -P gfproxy
	echo "$output"
	[ "$status" -eq 0 ]
	run ct find /etc /lib /usr /var/lib/systemd -name '*gfproxy*'
	echo "$output"
	[ -z "$output" ]
	not_listening 8199
	not_listening 8198
	[ "$(ct dpkg-query -W -f '${db:Status-Status}' gfproxy 2>/dev/null || echo not-installed)" = not-installed ]
}

@test "reinstalling after purge enables and starts the sockets again" {
	ct dpkg -i /mnt/share/gfproxy.deb >/dev/null
	[ "$(ct systemctl is-enabled gfproxy.socket)" = enabled ]
	[ "$(ct systemctl is-enabled gfproxy-backend.socket)" = enabled ]
	[ "$(get 8199 /proxy/user/1)" = "user info from server backend" ]
}

@test "an upgrade keeps both sockets listening and lets a request in flight finish" {
	# A request that takes some 3 s spans the upgrade: a 300 KB upload at 100 KB/s, which
	# gfproxy streams to the backend as it comes, so both instances are busy throughout.
	socket_since=$(ct systemctl show -P ActiveEnterTimestampMonotonic gfproxy.socket)
	backend_since=$(ct systemctl show -P ActiveEnterTimestampMonotonic gfproxy-backend.socket)
	out=$(mktemp)
	head -c 300000 /dev/zero >"$out.body"
	ct_net curl -sS -m 20 --limit-rate 100K --data-binary @"$out.body" -o "$out" -w '%{http_code}' \
		http://127.0.0.1:8199/proxy/upload > "$out.code" 3>&- &
	curl_pid=$!
	for _ in $(seq 50); do [ -n "$(instances gfproxy-backend)" ] && break; sleep 0.1; done
	[ -n "$(instances gfproxy-backend)" ]
	run ct dpkg -i /mnt/share/gfproxy-upgrade.deb
	echo "$output"
	upgrade_status=$status
	# Both sockets answer during and after the upgrade, without having been restarted.
	[ "$(get 8199 /proxy/user/1)" = "user info from server backend" ]
	wait "$curl_pid" || :
	code=$(cat "$out.code")
	body=$(cat "$out")
	rm -f "$out" "$out.code" "$out.body"
	[ "$upgrade_status" -eq 0 ]
	[ "$code" = 200 ]
	[ "$body" = "response from server backend" ]
	[ "$(ct dpkg-query -W -f '${Version}' gfproxy)" = "$VERSION+sysupgrade1" ]
	[ "$(ct systemctl show -P ActiveEnterTimestampMonotonic gfproxy.socket)" = "$socket_since" ]
	[ "$(ct systemctl show -P ActiveEnterTimestampMonotonic gfproxy-backend.socket)" = "$backend_since" ]
	[ "$(ct systemctl is-enabled gfproxy.socket)" = enabled ]
}
