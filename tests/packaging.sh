#!/usr/bin/env bash
# The install test of the Debian packages. It builds keelson-edge and
# keelson-shore .debs at two versions, checks them with lintian and the
# systemd units with systemd-analyze, then installs, upgrades, removes and
# purges them with dpkg in a throwaway Debian root, checking files, owners,
# modes, conffiles and data at every step.
#
# The packages carry the binaries of the test build (the `dev` profile that
# the tests just compiled), so this adds seconds, not a release build, to a
# CI run: it tests the packaging, and the release packages are built the
# same way from the release profile (packaging/README.md).
#
# The Debian root is made once with debootstrap into a cache outside the
# repository ($KEELSON_TEST_CACHE, /var/cache/keelson-test by default) and
# copied afresh for each run. There is no running systemd in a chroot: the
# test checks that the maintainer scripts enable the units (the wants
# symlinks) and ask the service manager to start, restart and stop them at
# the right steps (through logging stand-ins), not that a service runs.
#
# Needs root (dpkg and chroot). Installs what it needs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> packaging: %s\n' "$*"; }
fail() {
    printf 'packaging test FAILED: %s\n' "$*" >&2
    exit 1
}

CARGO_DEB_VERSION=3.8.0
SUITE=bookworm
CACHE=${KEELSON_TEST_CACHE:-/var/cache/keelson-test}
BASE=$CACHE/$SUITE
OLD_VERSION=0.0.1-1

if [ "$(id -u)" -ne 0 ]; then
    fail "needs root for dpkg and chroot; run it as root (CI does)"
fi

# --- tools -----------------------------------------------------------------

missing=()
for tool in debootstrap:debootstrap lintian:lintian dpkg-deb:dpkg-dev \
    systemd-analyze:systemd fakeroot:fakeroot strip:binutils; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when installing from them fails.
    apt-get install -y --no-install-recommends "${missing[@]}" ||
        { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
fi
if [ "$(cargo deb --version 2>/dev/null || true)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    say "installing cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi

# --- the cached Debian root --------------------------------------------------

if [ ! -f "$BASE/.keelson-ready" ]; then
    say "creating the cached Debian root in $BASE (once)"
    mkdir -p "$CACHE"
    rm -rf "$BASE.partial"
    # The host's own Debian mirror, as apt is configured here.
    mirror=$(sed -n 's/^URIs: *\([^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    if [ -z "$mirror" ]; then
        mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*main.*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
    fi
    debootstrap --variant=minbase --include=adduser,systemd "$SUITE" "$BASE.partial" ${mirror:+"$mirror"}
    touch "$BASE.partial/.keelson-ready"
    rm -rf "$BASE"
    mv "$BASE.partial" "$BASE"
fi

# --- packages ----------------------------------------------------------------

OUT=target/packaging-test
rm -rf "$OUT"
mkdir -p "$OUT/old" "$OUT/new"
say "building the binaries (test profile)"
cargo build --locked -p keelson-edge -p keelson-shore --bins
for pkg in keelson-edge keelson-shore; do
    say "packaging $pkg"
    cargo deb --locked -p "$pkg" --profile dev --no-build --fast --output "$OUT/new/" 2>&1 |
        grep -v 'dev profile is not supported\|cargo-deb is for making releases\|To enable debug symbols\|Cargo also supports custom profiles' || true
    cargo deb --locked -p "$pkg" --profile dev --no-build --fast --deb-version "$OLD_VERSION" \
        --output "$OUT/old/" >/dev/null 2>&1
done
NEW_EDGE=$(ls "$OUT"/new/keelson-edge_*.deb)
NEW_SHORE=$(ls "$OUT"/new/keelson-shore_*.deb)
OLD_EDGE=$(ls "$OUT"/old/keelson-edge_*.deb)
OLD_SHORE=$(ls "$OUT"/old/keelson-shore_*.deb)
NEW_VERSION=$(dpkg-deb -f "$NEW_EDGE" Version)
dpkg --compare-versions "$OLD_VERSION" lt "$NEW_VERSION" ||
    fail "old version $OLD_VERSION is not lower than $NEW_VERSION"

say "lintian"
# Errors fail the test; warnings are printed for the record.
lintian --fail-on error --suppress-tags-from-file /dev/null "$NEW_EDGE" "$NEW_SHORE" ||
    fail "lintian reported errors"

say "systemd-analyze security"
for unit in systemd/keelson-edge.service systemd/keelson-shore.service; do
    line=$(systemd-analyze security --offline=true "$unit" 2>&1 | grep 'Overall exposure level') ||
        fail "no exposure rating for $unit"
    score=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
    echo "$unit: exposure $score"
    awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' ||
        fail "$unit is rated $score, above 2.0"
done

# --- the throwaway root -------------------------------------------------------

WORK=$(mktemp -d /var/tmp/keelson-packaging.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOT=$WORK/root
say "copying the Debian root"
cp -a "$BASE" "$ROOT"
cp "$NEW_EDGE" "$NEW_SHORE" "$OLD_EDGE" "$OLD_SHORE" "$ROOT/tmp/"
in_root() { chroot "$ROOT" "$@"; }
deb() { echo "/tmp/$(basename "$1")"; }

# expect_stat PATH MODE OWNER:GROUP
expect_stat() {
    [ -e "$ROOT$1" ] || fail "$1 is missing"
    # Names as the Debian root knows them, not as this host does.
    got=$(in_root stat -c '%a %U:%G' "$1")
    [ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
}
expect_absent() { [ ! -e "$ROOT$1" ] || fail "$1 should be gone"; }
expect_status() {
    got=$(in_root dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$1" 2>/dev/null || true)
    [ "${got// /}" = "$2" ] || fail "$1 status is '$got', expected '$2'"
}
sha() { sha256sum "$ROOT$1" | cut -d' ' -f1; }

# No systemd runs in a chroot. To check what the maintainer scripts ask of
# it (start on install, restart on upgrade, stop on remove), the root gets
# /run/systemd/system and logging stand-ins for deb-systemd-invoke and
# systemctl in /usr/local/sbin, which comes first in dpkg's PATH.
mkdir -p "$ROOT/run/systemd/system" "$ROOT/usr/local/sbin"
# systemctl's offline work (enabling through presets, on files under
# --root) still goes to the real one; only talk to a running manager is
# logged instead.
cat >"$ROOT/usr/local/sbin/deb-systemd-invoke" <<'STUB'
#!/bin/sh
echo "deb-systemd-invoke $*" >>/var/log/keelson-systemd-calls
STUB
cat >"$ROOT/usr/local/sbin/systemctl" <<'STUB'
#!/bin/sh
case "$1" in
--root=*) exec /usr/bin/systemctl "$@" ;;
*) echo "systemctl $*" >>/var/log/keelson-systemd-calls ;;
esac
STUB
chmod 755 "$ROOT/usr/local/sbin/deb-systemd-invoke" "$ROOT/usr/local/sbin/systemctl"
# expect_calls WHAT LINE...: the service manager was asked exactly LINEs.
expect_calls() {
    what=$1
    shift
    got=$(grep -v daemon-reload "$ROOT/var/log/keelson-systemd-calls" 2>/dev/null || true)
    want=$(printf '%s\n' "$@")
    [ "$got" = "$want" ] || fail "$what: systemd was asked '$got', expected '$want'"
    rm -f "$ROOT/var/log/keelson-systemd-calls"
}

say "installing version $OLD_VERSION"
in_root dpkg -i "$(deb "$OLD_EDGE")" "$(deb "$OLD_SHORE")"
expect_status keelson-edge "ii$OLD_VERSION"
expect_status keelson-shore "ii$OLD_VERSION"
expect_calls install "deb-systemd-invoke start keelson-edge.service" \
    "deb-systemd-invoke start keelson-shore.service"
in_root getent passwd keelson | grep -q ':/nonexistent:/usr/sbin/nologin$' ||
    fail "the keelson system user is not set up"
uid=$(in_root id -u keelson)
[ "$uid" -lt 1000 ] || fail "keelson is not a system user (uid $uid)"
for pkg in edge shore; do
    expect_stat "/usr/bin/keelson-$pkg" 755 root:root
    expect_stat "/etc/keelson/$pkg.toml" 644 root:root
    expect_stat "/var/lib/keelson/$pkg" 750 keelson:keelson
    expect_stat "/lib/systemd/system/keelson-$pkg.service" 644 root:root
    [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/keelson-$pkg.service" ] ||
        fail "keelson-$pkg.service is not enabled"
    in_root dpkg-query -W -f='${Conffiles}\n' "keelson-$pkg" | grep -q "/etc/keelson/$pkg.toml" ||
        fail "/etc/keelson/$pkg.toml is not a conffile"
    in_root "keelson-$pkg" check-config --config "/etc/keelson/$pkg.toml" >/dev/null
done
expect_stat /var/lib/keelson 750 keelson:keelson
expect_stat /etc/keelson/vessel.key 600 keelson:keelson

say "systemd-analyze verify (against the installed root)"
for unit in keelson-edge.service keelson-shore.service; do
    out=$(systemd-analyze verify --root="$ROOT" "$unit" 2>&1) || fail "verify $unit failed: $out"
    [ -z "$out" ] || fail "systemd-analyze verify $unit printed: $out"
done

say "writing data as the service user, changing a conffile"
echo 'a long passphrase' |
    in_root runuser -u keelson -- keelson-edge user add --username chief --role chief_engineer >/dev/null
echo 'a long passphrase' |
    in_root runuser -u keelson -- keelson-shore user add --username office --role superintendent >/dev/null
expect_stat /var/lib/keelson/edge/keelson.db 600 keelson:keelson
expect_stat /var/lib/keelson/shore/keelson.db 600 keelson:keelson
echo '# changed on this vessel' >>"$ROOT/etc/keelson/edge.toml"
key_sha=$(sha /etc/keelson/vessel.key)
edge_db_sha=$(sha /var/lib/keelson/edge/keelson.db)
shore_db_sha=$(sha /var/lib/keelson/shore/keelson.db)
edge_conf_sha=$(sha /etc/keelson/edge.toml)

say "upgrading to $NEW_VERSION"
in_root dpkg -i "$(deb "$NEW_EDGE")" "$(deb "$NEW_SHORE")"
expect_status keelson-edge "ii$NEW_VERSION"
expect_status keelson-shore "ii$NEW_VERSION"
expect_calls upgrade "deb-systemd-invoke restart keelson-edge.service" \
    "deb-systemd-invoke restart keelson-shore.service"
[ "$(sha /etc/keelson/edge.toml)" = "$edge_conf_sha" ] || fail "the changed conffile was replaced"
[ "$(sha /etc/keelson/vessel.key)" = "$key_sha" ] || fail "the vessel key changed on upgrade"
[ "$(sha /var/lib/keelson/edge/keelson.db)" = "$edge_db_sha" ] || fail "the vessel data changed on upgrade"
[ "$(sha /var/lib/keelson/shore/keelson.db)" = "$shore_db_sha" ] || fail "the shore data changed on upgrade"
expect_stat /etc/keelson/vessel.key 600 keelson:keelson
expect_stat /var/lib/keelson/edge 750 keelson:keelson

say "backup and restore as root keep the service user's ownership"
in_root keelson-edge backup --to /root/edge.backup >/dev/null
expect_stat /root/edge.backup 600 root:root
echo 'a long passphrase' |
    in_root runuser -u keelson -- keelson-edge user add --username second --role engineer >/dev/null ||
    fail "a backup run by root left files the service user cannot open"
in_root keelson-edge restore --from /root/edge.backup >/dev/null
expect_stat /var/lib/keelson/edge/keelson.db 600 keelson:keelson
ls "$ROOT"/var/lib/keelson/edge/keelson.db.pre-restore-* >/dev/null 2>&1 ||
    fail "restore did not keep the replaced database aside"
echo 'another passphrase' |
    in_root runuser -u keelson -- keelson-edge user add --username bosun --role crew >/dev/null ||
    fail "the service user cannot write the restored database"

say "a database first created by root still belongs to the service user"
rm -f "$ROOT"/var/lib/keelson/shore/keelson.db*
echo 'a long passphrase' |
    in_root keelson-shore user add --username admin --role fleet_admin >/dev/null
expect_stat /var/lib/keelson/shore/keelson.db 600 keelson:keelson
shore_db_sha=$(sha /var/lib/keelson/shore/keelson.db)

say "removing"
in_root dpkg -r keelson-edge keelson-shore
expect_status keelson-edge "rc$NEW_VERSION"
expect_status keelson-shore "rc$NEW_VERSION"
expect_calls remove "deb-systemd-invoke stop keelson-edge.service" \
    "deb-systemd-invoke stop keelson-shore.service"
expect_absent /usr/bin/keelson-edge
expect_absent /usr/bin/keelson-shore
[ "$(sha /etc/keelson/edge.toml)" = "$edge_conf_sha" ] || fail "remove changed the conffile"
[ "$(sha /etc/keelson/vessel.key)" = "$key_sha" ] || fail "remove changed the vessel key"
[ -s "$ROOT/var/lib/keelson/edge/keelson.db" ] || fail "remove deleted the vessel data"
[ "$(sha /var/lib/keelson/shore/keelson.db)" = "$shore_db_sha" ] || fail "remove changed the shore data"

say "purging"
in_root dpkg -P keelson-edge keelson-shore
expect_absent /var/lib/keelson
expect_absent /etc/keelson
expect_absent /etc/systemd/system/multi-user.target.wants/keelson-edge.service
expect_absent /etc/systemd/system/multi-user.target.wants/keelson-shore.service
in_root dpkg-query -W keelson-edge >/dev/null 2>&1 && fail "keelson-edge is still known to dpkg"

say "reinstalling after a purge creates a new key"
in_root dpkg -i "$(deb "$NEW_EDGE")"
expect_stat /etc/keelson/vessel.key 600 keelson:keelson
[ "$(sha /etc/keelson/vessel.key)" != "$key_sha" ] || fail "the purged key came back"
in_root dpkg -P keelson-edge

echo
echo "packaging: 1 passed, 0 failed"
