#!/usr/bin/env bash
# Headless Chromium for tests/test_report.py, which renders the --report waterfall
# in a real browser (screenshots at 1280 px and at a phone's width, the DOM checked
# for its rows).  Without it those checks skip, saying why.
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version
