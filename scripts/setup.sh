#!/usr/bin/env bash
# Installs everything Portolan's commands and tests need on a fresh Debian machine:
# the Debian packages (as root, or through sudo) and the crates (cargo fetch).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# scan's tests: nmap (the oracle), snmpd and chrony (real SNMP and NTP services to scan);
# squid (the squid target's tests), python3-venv (Aerleon's); python3: crates/report/tests/
# check_report.py parses `portolan report` pages (html.parser, xml.etree); chromium: the
# report's browser test (crates/report/tests/browser.py drives it over the DevTools protocol);
# default-jre-headless: the Nu Html Checker (vnu.jar, below) the report is validated with.
# enforce: conntrack (its live-flow refresh reads `conntrack -L`), python3-prometheus-client
# (crates/enforce/tests/daemon.rs parses its metrics with the real parser), systemd
# (`systemd-analyze verify` of contrib/portolan-enforce.service).
# man-db, groff-base: `portolan man` rendered by man -l and groff (crates/cli/tests/cliux.rs);
# bsdutils: `script`, the pseudo-terminal of crates/cli/tests/tables.rs.
PKGS=(nftables iptables ipset iproute2 dnsmasq-base tcpdump socat openssl iputils-ping procps softflowd nfdump python3 python3-venv squid-openssl curl nmap snmpd chrony chromium default-jre-headless conntrack python3-prometheus-client systemd man-db groff-base bsdutils)
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

# The SARIF 2.1.0 JSON schema (OASIS, rtm.5) that `portolan lint --format sarif` is validated
# against in crates/lint/tests: the copy @microsoft/jest-sarif ships, from the npm registry,
# cached outside the repository (the lint test reads the same path, or $PORTOLAN_SARIF_SCHEMA).
SARIF_SCHEMA="${PORTOLAN_SARIF_SCHEMA:-${XDG_CACHE_HOME:-$HOME/.cache}/portolan/sarif-2.1.0-rtm.5.json}"
if [ ! -s "$SARIF_SCHEMA" ]; then
  if ! command -v npm >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  echo "setup: fetching the SARIF 2.1.0 schema (@microsoft/jest-sarif@1.0.0-beta.0)" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null \
    && tar -xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json)
  mkdir -p "$(dirname "$SARIF_SCHEMA")"
  mv "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$SARIF_SCHEMA"
  rm -rf "$tmp"
fi

# The W3C Nu Html Checker (vnu.jar) the report's pages must pass (crates/cli/tests/report_cli.rs),
# pinned: npm's `vnu-jar` package, cached outside the repository like the schema above (the
# test reads the same path, or $PORTOLAN_VNU).
VNU_VERSION=26.9.27
VNU="${PORTOLAN_VNU:-${XDG_CACHE_HOME:-$HOME/.cache}/portolan/vnu-$VNU_VERSION.jar}"
if [ ! -s "$VNU" ]; then
  command -v npm >/dev/null || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"; $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null; }
  echo "setup: fetching the Nu Html Checker (vnu-jar@$VNU_VERSION)" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "vnu-jar@$VNU_VERSION" >/dev/null && tar -xzf "vnu-jar-$VNU_VERSION.tgz" package/build/dist/vnu.jar)
  mkdir -p "$(dirname "$VNU")"
  mv "$tmp/package/build/dist/vnu.jar" "$VNU"
  rm -rf "$tmp"
fi
