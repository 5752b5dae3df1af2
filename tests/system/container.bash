#!/bin/bash
# Boot a minimal Debian with real systemd (PID 1, socket units, journald) in a throw-away
# systemd-nspawn container, on hosts whose own PID 1 is not systemd. Sourced by the bats
# files here; run it directly to self-test. Needs root.
#
#   ct_prepare [DEB...]  host packages + a cached Debian rootfs holding the dependencies of
#                    each DEB (about a minute the first time, again when they change)
#   ct_boot          boot it; sets CT_NSPAWN (nspawn's PID) and CT_LEADER (the container's PID 1)
#   ct CMD...        run CMD inside the container (all namespaces); its exit status passes through
#   ct_net CMD...    run a host binary (curl, ab) in the container's network namespace only
#   ct_down          orderly poweroff, then remove our cgroups and mounts; safe to call twice
#
# The rootfs is built once and only ever booted with --volatile=overlay, so every write a test
# makes is discarded at poweroff. $CT_SHARE on the host is /mnt/share (read-only) inside.
CT_DIR=${CT_DIR:-/var/tmp/gfproxy-system}
CT_SUITE=${CT_SUITE:-bookworm}
# The container has no network: whatever a test installs in it must already be in the image.
# man-db lets `systemd-analyze verify` check the units' Documentation=man: pages.
CT_INCLUDE=${CT_INCLUDE:-systemd,systemd-sysv,dbus,man-db}
CT_ROOT=${CT_ROOT:-$CT_DIR/rootfs-$CT_SUITE}
CT_SHARE=${CT_SHARE:-$CT_DIR/share}
# One name per boot, so two runs at once (two engineers, or CI) share nothing but the rootfs.
CT_NAME=${CT_NAME:-gfproxy-sys-$$}
CT_CGROUP=ct-$CT_NAME
CT_BOOT_TIMEOUT=${CT_BOOT_TIMEOUT:-60}
# nspawn's own seccomp allow-list (systemd 252) predates Landlock: without these, a
# container has none, while the host and a real machine do.
# CT_SYSCALLS= (empty) boots without them: a machine without Landlock, for the degraded case.
CT_SYSCALLS=${CT_SYSCALLS-landlock_create_ruleset landlock_add_rule landlock_restrict_self}

ct_mirror() {  # the Debian mirror this host's apt already uses
	local m
	m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
	[ -n "$m" ] || m=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	echo "${m:-http://deb.debian.org/debian}"
}

ct_deb_depends() {  # the package names in a .deb's Depends, comma-separated
	dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/[|(].*//; s/[[:space:]]//g' | grep . | paste -sd,
}

ct_prepare() {
	local stamp deb include=$CT_INCLUDE
	command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null ||
		"$(dirname "${BASH_SOURCE[0]}")/../../packaging/install-deps" system || return 1
	for deb in "$@"; do include=$include,$(ct_deb_depends "$deb"); done
	include=$(echo "$include" | tr ',' '\n' | sort -u | paste -sd,)
	mkdir -p "$CT_SHARE" "$CT_DIR"
	stamp="$CT_ROOT/.gfproxy-include"
	if [ -x "$CT_ROOT/lib/systemd/systemd" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$include" ]; then
		return 0
	fi
	# Built beside the final place and renamed, so a half-built rootfs is never booted.
	rm -rf "$CT_ROOT.tmp"
	debootstrap --variant=minbase --include="$include" "$CT_SUITE" "$CT_ROOT.tmp" \
		"$(ct_mirror)" >"$CT_DIR/debootstrap.log" 2>&1 || {
		tail -n 20 "$CT_DIR/debootstrap.log" >&2
		return 1
	}
	rm -f "$CT_ROOT.tmp"/var/cache/apt/archives/*.deb
	echo gfproxy-test > "$CT_ROOT.tmp/etc/hostname"
	# No console getty: nothing reads the console, and it only slows down poweroff.
	ln -sf /dev/null "$CT_ROOT.tmp/etc/systemd/system/console-getty.service"
	echo "$include" > "$CT_ROOT.tmp/.gfproxy-include"
	rm -rf "$CT_ROOT"
	mv "$CT_ROOT.tmp" "$CT_ROOT"
}

ct_boot() {
	local h _ c
	# nspawn wants a tmpfs under /run/systemd/nspawn; on these machines /run is a disk fs
	if ! mountpoint -q /run/systemd/nspawn; then
		mkdir -p /run/systemd/nspawn && mount -t tmpfs -o mode=755 tmpfs /run/systemd/nspawn &&
			touch /run/systemd/nspawn/.ct-owned
	fi
	# A cgroup of our own, or nspawn leaves /payload and /supervisor at the hierarchies' root.
	for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/$CT_CGROUP"; done
	(
		for h in systemd unified; do echo $BASHPID > "/sys/fs/cgroup/$h/$CT_CGROUP/cgroup.procs"; done
		SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 exec systemd-nspawn -q -D "$CT_ROOT" -M "$CT_NAME" \
			--boot --register=no --keep-unit --private-network --volatile=overlay \
			${CT_SYSCALLS:+--system-call-filter="$CT_SYSCALLS"} --bind-ro="$CT_SHARE:/mnt/share"
	) >"$CT_DIR/$CT_NAME-console.log" 2>&1 </dev/null 3>&- & # 3>&-: bats waits on fd 3
	export CT_NSPAWN=$! CT_LEADER=
	for _ in $(seq $((CT_BOOT_TIMEOUT * 10))); do
		for c in $(cat "/proc/$CT_NSPAWN/task/$CT_NSPAWN/children" 2>/dev/null); do
			[ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] && CT_LEADER=$c
		done
		export CT_LEADER
		if [ -n "$CT_LEADER" ]; then
			case $(ct systemctl is-system-running 2>/dev/null) in running | degraded) return 0 ;; esac
		fi
		kill -0 "$CT_NSPAWN" 2>/dev/null || break
		sleep 0.1
	done
	echo "container did not boot; console:" >&2
	cat "$CT_DIR/$CT_NAME-console.log" >&2
	return 1
}

ct() { nsenter -t "$CT_LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
ct_net() { nsenter -t "$CT_LEADER" -n "$@"; }

ct_down() {
	local _ h
	if [ -n "${CT_NSPAWN:-}" ]; then
		kill -TERM "$CT_NSPAWN" 2>/dev/null # SIGTERM to nspawn = orderly poweroff
		for _ in $(seq 300); do kill -0 "$CT_NSPAWN" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$CT_NSPAWN" 2>/dev/null || :
	fi
	for h in systemd unified; do
		[ -d "/sys/fs/cgroup/$h/$CT_CGROUP" ] &&
			find "/sys/fs/cgroup/$h/$CT_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	if [ -e /run/systemd/nspawn/.ct-owned ] && [ -z "$(ls /run/systemd/nspawn/propagate 2>/dev/null)" ]; then
		umount /run/systemd/nspawn 2>/dev/null && rmdir /run/systemd/nspawn 2>/dev/null
	fi
	rm -f "$CT_DIR/$CT_NAME-console.log"
	CT_NSPAWN= CT_LEADER=
	return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then # self-test: boot, ask systemd, power off
	set -e
	trap ct_down EXIT
	ct_prepare
	ct_boot
	ct systemctl --version | head -n 1
	ct systemctl is-system-running || true
	ct journalctl -b --no-pager -n 3
fi
