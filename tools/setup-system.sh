#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (real CoAP peers, ...). Idempotent and non-interactive.
set -euo pipefail
packages=(libcoap3-bin chromium)  # chromium: the OOB web page tests (host_tests/test_noob_web.py)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-system: Debian packages already present: ${packages[*]}"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: apt-get is not available; install these packages by hand: ${missing[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "setup-system: not root and no sudo; install these packages by hand: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "setup-system: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
