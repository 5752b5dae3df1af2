#!/usr/bin/env bats
# The .rpm next to the .deb: rpmlint, and its payload installed into a scratch root.
# `make check-system` builds both packages and runs this.

PKGDIR=${GFPROXY_PKGDIR:-build}
VERSION=${GFPROXY_VERSION:-0.1.0}

setup() {
	for tool in rpm rpmlint dpkg-deb; do
		command -v "$tool" >/dev/null || skip "missing $tool (packaging/install-deps system)"
	done
	RPM=$(ls "$PKGDIR"/gfproxy-"$VERSION"-1.*.rpm 2>/dev/null | head -n 1)
	DEB=$(ls "$PKGDIR"/gfproxy_"$VERSION"_*.deb 2>/dev/null | head -n 1)
	[ -n "$RPM" ] && [ -n "$DEB" ] || { echo "run make deb rpm first" >&2; return 1; }
	SCRATCH=$(mktemp -d)
}

teardown() {
	rm -rf "$SCRATCH"
}

# The installed files, with what differs between the two distributions by design taken out:
# the unit directory (/lib on Debian, /usr/lib with merged /usr), and the documentation and
# packaging metadata each format keeps in its own place.
normalize() {
	sed -e 's|^\./|/|' -e 's|^/lib/systemd/|/usr/lib/systemd/|' |
		grep -vE '^/usr/share/(doc|licenses|lintian)/|^/usr/lib/\.build-id/' | sort
}

@test "rpmlint reports nothing but the filtered, justified tags" {
	run rpmlint -c packaging/rpm/rpmlint.toml "$RPM" packaging/rpm/gfproxy.spec
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q ' 0 errors, 0 warnings'
}

install_scratch() {
	# --noscripts: the scriptlets would call systemctl, which the scratch root does not have.
	rpm --root "$SCRATCH" --dbpath /var/lib/rpm --initdb
	rpm --root "$SCRATCH" --dbpath /var/lib/rpm -i --nodeps --noscripts "$RPM" 2>/dev/null
}

@test "the rpm's payload installs into a scratch root with the .deb's file list" {
	install_scratch
	[ "$(rpm --root "$SCRATCH" --dbpath /var/lib/rpm -q gfproxy)" = "gfproxy-$VERSION-1.$(rpm -qp --qf '%{ARCH}' "$RPM" 2>/dev/null)" ]
	rpm_files=$(cd "$SCRATCH" && find . -path ./var -prune -o \( -type f -o -type l \) -print | normalize)
	deb_files=$(dpkg-deb --fsys-tarfile "$DEB" | tar -t | grep -v '/$' | normalize)
	diff <(echo "$deb_files") <(echo "$rpm_files")
	[ -n "$rpm_files" ]
}

@test "the rpm keeps as configuration the same files the .deb does" {
	deb_conffiles=$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | sort)
	[ -n "$deb_conffiles" ]
	# %config(noreplace): an edited file survives an upgrade.
	run rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPM"
	[ "$(echo "$output" | awk '$1 == "cn" {print $2}' | sort)" = "$deb_conffiles" ]
}

@test "the rpm's units run the binaries it installs" {
	run rpm -qp -l "$RPM"
	echo "$output" | grep -qx /usr/sbin/gfproxy
	install_scratch
	grep -qx 'ExecStart=/usr/sbin/gfproxy $GFPROXY_OPTS' "$SCRATCH/usr/lib/systemd/system/gfproxy@.service"
	grep -qx 'ExecStart=/usr/sbin/gfproxy-backend' \
		"$SCRATCH/usr/lib/systemd/system/gfproxy-backend@.service"
}
