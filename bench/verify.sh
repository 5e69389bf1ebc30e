#!/usr/bin/env bash
# `portolan verify` speed (as root: the rulesets are listed by nft in a scratch namespace).
# For generated sites of SIZES devices (one device per group: the worst case for verify, every
# group its own chains and map entries), two rulesets: Portolan's own compiled ruleset and the
# naive one-rule-per-device-flow-address-port ruleset of the same site (bench/naive.py; about
# 1,050 rules at 100 devices, 10,500 at 1,000: the 1k/10k rules x 100/1,000 devices grid).
# Prints lowering, flow and excess times and the cost per flow and per group (release
# build of the evaluator only).
# Knobs: SIZES="100 1000", SHAPE=single, NAIVE=0 (skip the naive ruleset),
# BASELINE=path/to/an/older/bench (the same evaluator example built from another commit: run on
# the same inputs right after, for before/after figures from one run).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100 1000"}
SHAPE=${SHAPE:-single}
work=$(mktemp -d)
ns="plvbench$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# Only the timed evaluator is built for release; the inputs come from a debug `portolan`.
cargo build -q --release -p portolan-verify --example bench
cargo build -q -p portolan
bin=target/debug/portolan
bench=target/release/examples/bench
ip netns add "$ns"
list() { # FILE.nft -> FILE.json: loaded in the scratch namespace, listed, flushed
  ip netns exec "$ns" nft -f "$1"
  ip netns exec "$ns" nft -j list ruleset > "$2"
  ip netns exec "$ns" nft flush ruleset
}
for n in $SIZES; do
  python3 bench/gen_site.py "$n" "$SHAPE" > "$work/site.yaml"
  "$bin" compile "$work/site.yaml" -o "$work/own.nft" 2>/dev/null
  "$bin" compile "$work/site.yaml" --target dnsmasq -o "$work/dns.conf" 2>/dev/null
  "$bin" compile "$work/site.yaml" --target ir 2>/dev/null | python3 bench/naive.py > "$work/naive.nft"
  list "$work/own.nft" "$work/own.json"
  list "$work/naive.nft" "$work/naive.json"
  echo "== $n devices ($SHAPE), Portolan's ruleset"
  "$bench" "$work/site.yaml" "$work/own.json" "$work/dns.conf"
  if [ -n "${BASELINE:-}" ]; then
    echo "== $n devices ($SHAPE), Portolan's ruleset, baseline $BASELINE"
    "$BASELINE" "$work/site.yaml" "$work/own.json" "$work/dns.conf"
  fi
  [ "${NAIVE:-1}" = 0 ] && continue
  echo "== $n devices ($SHAPE), naive ruleset"
  "$bench" "$work/site.yaml" "$work/naive.json" "$work/dns.conf"
  if [ -n "${BASELINE:-}" ]; then
    echo "== $n devices ($SHAPE), naive ruleset, baseline $BASELINE"
    "$BASELINE" "$work/site.yaml" "$work/naive.json" "$work/dns.conf"
  fi
done
