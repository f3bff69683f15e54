#!/usr/bin/env bash
# The HTTP side of the interop suite: nginx, lighttpd, a forward proxy (tinyproxy)
# and redis, all Debian packages.  Idempotent: packages already there are not
# fetched again.  The tests start every server themselves, on free ports and with
# generated configs, so the packages' own services must not be left running (a
# redis on 6379 would stand in for the one the hostile-page test starts).
set -uo pipefail
# package and the file that shows it is installed (lighttpd's TLS and gzip are packages of their own).
want=(nginx-light lighttpd lighttpd-mod-openssl lighttpd-mod-deflate tinyproxy redis-server)
marks=(/usr/sbin/nginx /usr/sbin/lighttpd /usr/lib/lighttpd/mod_openssl.so
       /usr/lib/lighttpd/mod_deflate.so
       /usr/bin/tinyproxy /usr/bin/redis-server)

missing=()
for i in "${!want[@]}"; do
    [ -e "${marks[$i]}" ] || missing+=("${want[$i]}")
done
[ "${#missing[@]}" = 0 ] && exit 0

# Packages' maintainer scripts must not start their services: policy-rc.d says no
# for the length of this install (an existing policy is put back afterwards).
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
    saved="$(mktemp)"
    cp -p "$policy" "$saved"
fi
restore() {
    if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 755 "$policy"

status=0
for package in "${missing[@]}"; do
    # One package at a time: one that cannot be installed skips only its tests.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$package" >/dev/null || {
        echo "install-http.sh: could not install $package" >&2
        status=1
    }
done

# Without systemd or with a policy ignored, a service may still have started.
for service in nginx lighttpd tinyproxy redis-server; do
    if command -v service >/dev/null 2>&1; then
        service "$service" stop >/dev/null 2>&1 || true
    fi
done
exit $status
