#!/usr/bin/env bash
# Install headless Chromium and its WebDriver from Debian's packages for the attention
# explorer's browser test (tests/test_apps/test_attention_explorer.py):
#
#   sudo bash tools/ci/install_browser.sh
#
# Does nothing when chromium and chromedriver are already on PATH. Without them the
# browser test skips, naming what is missing.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    echo "$0: chromium and chromedriver already installed: $(chromium --version 2>/dev/null || true)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "$0: must run as root to install chromium and chromium-driver with apt-get" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium chromium-driver
echo "$0: installed $(chromium --version 2>/dev/null || echo chromium)"
