#!/usr/bin/env bash
# Installs everything Portolan's commands and tests need on a fresh Debian machine:
# the Debian packages (as root, or through sudo) and the crates (cargo fetch).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# scan's tests: nmap (the oracle), snmpd and chrony (real SNMP and NTP services to scan).
PKGS=(nftables iptables ipset iproute2 dnsmasq-base tcpdump socat openssl iputils-ping procps softflowd nfdump nmap snmpd chrony)
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
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
cargo fetch --locked 2>/dev/null || cargo fetch
