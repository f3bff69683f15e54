#!/usr/bin/env bash
# FTP servers for tests/interop/test_ftp_servers.py: proftpd (with mod_tls, from
# proftpd-mod-crypto) and pure-ftpd.  The two packages conflict (both provide
# ftp-server and want port 21), and their maintainer scripts start daemons, so
# neither is installed: each .deb is unpacked with dpkg -x into
# /opt/loader-interop/<package> (tests/support/interop.py's UNPACKED) and run
# from there.  Only their shared libraries are installed as packages.
set -euo pipefail
root="${LOADER_INTEROP_ROOT:-/opt/loader-interop}"
libs=(libacl1 libcap2 libcrypt1 libhiredis0.14 libidn2-0 libmemcached11
      libmemcachedutil2 libncursesw6 libpam0g libpcre2-8-0 libpcre2-posix3
      libssl3 libtinfo6 zlib1g libsodium23)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${libs[@]}" >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
for pkg in proftpd-core proftpd-mod-crypto pure-ftpd; do
    apt-get download -qq "$pkg"
done
for pkg in proftpd-core proftpd-mod-crypto pure-ftpd; do
    rm -rf "${root:?}/$pkg"
    mkdir -p "$root/$pkg"
    dpkg -x "$work/${pkg}"_*.deb "$root/$pkg"
done
# mod_tls lives in proftpd-mod-crypto: put it beside the core modules, so one
# ModulePath finds them all.
cp -a "$root/proftpd-mod-crypto/usr/lib/proftpd/." "$root/proftpd-core/usr/lib/proftpd/"
"$root/proftpd-core/usr/sbin/proftpd" -v
"$root/pure-ftpd/usr/sbin/pure-ftpd" --help 2>&1 | head -1 || true
