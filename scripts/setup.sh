#!/usr/bin/env bash
# Installs everything Portolan's commands and tests need on a fresh Debian machine:
# the Debian packages (as root, or through sudo) and the crates (cargo fetch).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(nftables iptables ipset iproute2 dnsmasq-base tcpdump socat openssl iputils-ping procps softflowd nfdump python3-venv squid-openssl curl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Aerleon (the Aerleon target's tests run its `aclgen`), pinned, in a virtual environment of
# the repository's own (.venv, ignored by git); reinstalled only when the pin changes.
AERLEON_VERSION=1.18.0
if [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("aerleon"))' 2>/dev/null)" != "$AERLEON_VERSION" ]; then
  echo "setup: installing aerleon $AERLEON_VERSION in .venv" >&2
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q "aerleon==$AERLEON_VERSION"
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
cargo fetch --locked 2>/dev/null || cargo fetch
