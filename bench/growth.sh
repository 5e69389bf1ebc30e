#!/bin/sh
# Growth of site validation and compile with the number of one-device groups (the worst case
# for the site path): a program, not a test; CI does not run it.
#
# For sites of 10,000 and 100,000 one-device groups it prints the release build's
# `portolan validate` and `portolan compile` times (best of 2) and the ratio between the two
# sizes, for three inputs (bench/gen_site.py):
#   yaml       the `single` shape: six profile kinds, with bindings, features and flows;
#   plain      the devices an inventory row can state (Izuma with a mode and a param, Oscar
#              with a MAC), written in YAML;
#   inventory  the same devices as rows of a CSV inventory the site names.
# Linear growth is 10x; a quadratic step in the site path shows as ~100x (it once made
# 100,000 groups take 854 s instead of 5 s).
#
# With TARGETS (default "nftables iptables") the compile column is given per target
# (`compile_s` is nftables'; `iptables_s` and others follow). iptables once took 29 s at
# 100,000 groups: its class drop chains were deduplicated by a scan per rule.
#
# usage: bench/growth.sh      SIZES="10000 100000"  INPUTS="yaml plain inventory"
#                             TARGETS="nftables iptables"  PORTOLAN=path/to/portolan
set -eu
cd "$(dirname "$0")/.."
BIN=${PORTOLAN:-target/release/portolan}
SIZES=${SIZES:-"10000 100000"}
INPUTS=${INPUTS:-"yaml plain inventory"}
TARGETS=${TARGETS:-"nftables iptables"}
[ -x "$BIN" ] || cargo build --release -p portolan
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
best_of_2() {
  best=""
  for _ in 1 2; do
    t0=$(now)
    "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
    t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
    best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (a == "" || b < a) ? b : a }')
  done
  echo "$best"
}
extra=""
for t in $TARGETS; do [ "$t" = nftables ] || extra="$extra ${t}_s"; done
printf '%-10s %-8s %11s %10s %14s%s\n' input groups validate_s compile_s us_per_group "$extra"
for input in $INPUTS; do
  first_n="" first_c="" first_v=""
  for n in $SIZES; do
    case $input in
      yaml) site="$W/site-$n.yaml"; python3 bench/gen_site.py "$n" single >"$site" ;;
      plain) site="$W/plain-$n.yaml"; python3 bench/gen_site.py "$n" plain >"$site" ;;
      inventory) mkdir -p "$W/inv-$n"; site="$W/inv-$n/site.yaml"
        python3 bench/gen_site.py "$n" inventory "$W/inv-$n" ;;
      *) echo "unknown input $input" >&2; exit 2 ;;
    esac
    v=$(best_of_2 "$BIN" validate "$site")
    c=$(best_of_2 "$BIN" compile "$site" --target nftables -o "$W/p.nft")
    others=""
    for t in $TARGETS; do
      [ "$t" = nftables ] && continue
      others="$others $(best_of_2 "$BIN" compile "$site" --target "$t" -o "$W/p.$t")"
    done
    printf '%-10s %-8s %11s %10s %14s%s\n' "$input" "$n" "$v" "$c" \
      "$(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.1f", c * 1e6 / n }')" "$others"
    if [ -z "$first_n" ]; then first_n=$n first_c=$c first_v=$v; fi
    last_n=$n last_c=$c last_v=$v
  done
  if [ "$first_n" != "$last_n" ]; then
    awk -v i="$input" -v n0="$first_n" -v n1="$last_n" -v c0="$first_c" -v c1="$last_c" -v v0="$first_v" -v v1="$last_v" \
      'BEGIN { printf "growth %s %s -> %s groups (x%.0f devices): validate x%.1f, compile x%.1f (linear: x%.0f)\n", i, n0, n1, n1 / n0, v1 / v0, c1 / c0, n1 / n0 }'
  fi
done
