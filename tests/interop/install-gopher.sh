#!/usr/bin/env bash
# gophernicus, the Gopher server tests/interop/test_gophernicus.py runs against.
# Debian runs it from inetd or a systemd socket, one process per connection; the
# test does the same with a small accept loop of its own, so no daemon is needed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Other install-*.sh may hold the dpkg lock: the timeout waits for them.
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 gophernicus >/dev/null
# The package may enable a socket on port 70; nothing here needs it running.
systemctl disable --now gophernicus.socket >/dev/null 2>&1 || true
command -v gophernicus >/dev/null || test -x /usr/sbin/gophernicus
