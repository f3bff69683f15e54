#!/usr/bin/env bash
# Install the independent servers the interop suite (tests/interop/) runs against.
# Debian packages; run as root.  Each part is its own script so one missing package
# skips only its tests (pytest prints the reason), it never stops the others.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install.sh: needs root and apt-get; interop tests will be skipped" >&2
    exit 0
fi
apt-get update -qq >/dev/null 2>&1 || echo "install.sh: apt-get update failed" >&2
for part in "$here"/install-*.sh; do
    [ -f "$part" ] || continue
    echo "install.sh: $(basename "$part")" >&2
    bash "$part" || echo "install.sh: $(basename "$part") failed; its tests will be skipped" >&2
done
exit 0
