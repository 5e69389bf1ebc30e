#!/bin/sh
# Portolan benchmark of `portolan report` (a program, not a test; CI does not run it).
#
# For sites of 10, 1,000 and 10,000 one-device groups (bench/gen_site.py SHAPE single, the
# worst case: every group its own table and its own diagram node before collapsing), it prints
# the time to render the page (best of 3), its size, and the same with the verify overlay of the
# site's own ruleset (`portolan verify --ruleset`, loaded in a scratch namespace: needs root),
# against the time of `portolan compile --target nftables` for the same site measured in the
# same run (the report emits that ruleset too, so compile is its floor), and the time the page
# takes to open in headless Chromium (crates/report/tests/browser.py over the DevTools protocol:
# the Navigation Timing API's loadEventEnd, the slower of two loads at 1366 and 800 px; `-` without
# chromium). Issue 18's target: 1,000 groups open in under 2 s.
#
# usage: bench/report.sh    SIZES="10 1000"  PORTOLAN=path/to/portolan (default target/release)
#   VERIFY_MAX=1000: the verify overlay only up to this size (verify's own cost is
#   bench/verify.sh's subject).
set -eu
cd "$(dirname "$0")/.."
BIN=${PORTOLAN:-target/release/portolan}
SIZES=${SIZES:-"10 1000 10000"}
[ -x "$BIN" ] || cargo build --release -p portolan
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
# best of three runs of "$@", in seconds
best() {
  b=""
  for _ in 1 2 3; do
    t0=$(now); "$@" >/dev/null 2>&1 || [ $? -eq 1 ]; t1=$(now)
    b=$(awk -v a="$t0" -v c="$t1" -v b="$b" 'BEGIN { d = c - a; if (b == "" || d < b) print d; else print b }')
  done
  printf "%.3f" "$b"
}
printf "%-8s %10s %10s %12s %12s %14s %8s %10s\n" groups compile_s report_s page_MB verify_ovl_s report/compile collapsed open_s
for n in $SIZES; do
  python3 bench/gen_site.py "$n" single > "$W/site.yaml"
  c=$(best "$BIN" compile "$W/site.yaml" --target nftables -o "$W/site.nft")
  r=$(best "$BIN" report "$W/site.yaml" -o "$W/page.html")
  mb=$(awk -v s="$(wc -c < "$W/page.html")" 'BEGIN { printf "%.1f", s / 1e6 }')
  v="-"
  if [ "$n" -le "${VERIFY_MAX:-1000}" ] && { "$BIN" verify "$W/site.yaml" --ruleset "$W/site.nft" --format json > "$W/verify.json" 2>/dev/null || [ $? -eq 1 ]; }; then
    v=$(best "$BIN" report "$W/site.yaml" --verify "$W/verify.json" -o "$W/page.html")
  fi
  col=$("$BIN" report "$W/site.yaml" -o "$W/page.html" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["collapsed"])')
  ratio=$(awk -v a="$r" -v b="$c" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }')
  o="-"
  if command -v chromium >/dev/null; then
    "$BIN" report "$W/site.yaml" -o "$W/page.html" >/dev/null 2>&1 || true
    o=$(python3 crates/report/tests/browser.py "$W/page.html" --shots "$W/shots" --no-dom --top-only --width 1366 --width 800 \
      | python3 -c 'import json,sys; print("%.3f" % (max(l["load_ms"] for l in json.load(sys.stdin)["loads"]) / 1000))')
  fi
  printf "%-8s %10s %10s %12s %12s %14s %8s %10s\n" "$n" "$c" "$r" "$mb" "$v" "$ratio" "$col" "$o"
done
