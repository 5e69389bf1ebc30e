#!/usr/bin/env bash
# Benchmark of `portolan audit` on a capture with few packets per flow, on one core and on
# two (not a test; CI does not run it).
#
# gencap (crates/audit/examples/gencap.rs) writes FLOWS flows (default 100,000) whose TCP
# connections have about PPF packets (default 24: with the short NTP and DNS flows, about 20
# packets per flow in all; gencap draws each length around it), with DNS answers
# whose TTLs expire during the capture. Then, in the same run, on the same page-cached file,
# ROUNDS times in turn (default 3; the best run of each counts, the machine is shared):
#   - tcpdump -r FILE -w /dev/null                the floor: reading the file;
#   - portolan audit --jobs 1 --format json       one core;
#   - portolan audit --jobs 2 --format json       two cores (shards of the flow table);
# each under /usr/bin/time: wall seconds (timed to the microsecond around it by bash's
# EPOCHREALTIME: GNU time's own wall time has 10 ms steps, 4 % of a two-core run), CPU seconds
# (user + system), peak memory. The two
# audits' JSON must be byte-identical (checked). Printed: audit on one core against tcpdump
# (goal <= 1.5x), on two against tcpdump (goal < 1x), and the speed-up of two cores on one
# (goal >= 1.7x), each in wall time and, since other work shares the machine, in CPU time
# too (the speed-up then as wall(1) / wall(2) beside the CPU both used). The speed-up is
# printed twice: as the best run of one core over the best of two, and as the median over
# the rounds of each round's ratio (the two runs of a round are next to each other in time,
# so a slow spell of the machine slows both).
#
# The reports (42 MB at the default size) are written to OUT_DIR (default /dev/shm when it
# is a tmpfs, else BENCH_DIR), and each is removed before its run, outside the timing: on a
# disk's file system, truncating the last run's report took 15-170 ms inside the timed run,
# and its write-back took CPU from the next runs.
#
# With CALLGRIND=1 (needs valgrind), also the instructions each of tcpdump's read and
# `audit --jobs 1` executes on a capture of CG_FLOWS flows (default 10,000), counted by
# callgrind: reproducible on a loaded machine, where wall and CPU times are not.
#
# Needs: cargo, tcpdump, GNU time. Usage: bench/audit-few.sh
# Environment: FLOWS, PPF, ROUNDS, BENCH_DIR (default a new folder under /tmp), OUT_DIR,
# KEEP=1, CALLGRIND=1, CG_FLOWS.
set -euo pipefail
# Decimal points, in bash's EPOCHREALTIME as in awk.
export LC_ALL=C
cd "$(dirname "$0")/.."

FLOWS=${FLOWS:-100000}
PPF=${PPF:-24}
ROUNDS=${ROUNDS:-3}
for tool in tcpdump /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bench: $tool is missing (Debian packages tcpdump, time)" >&2
    exit 2
  }
done
dir=${BENCH_DIR:-$(mktemp -d /tmp/portolan-audit-few.XXXXXX)}
if [ -n "${OUT_DIR:-}" ]; then
  out=$(mktemp -d "$OUT_DIR/portolan-audit-few.XXXXXX")
elif [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  out=$(mktemp -d /dev/shm/portolan-audit-few.XXXXXX)
else
  out=$dir
fi
cleanup() {
  [ "$out" = "$dir" ] || rm -rf "$out"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM

echo "== building (release)" >&2
cargo build --release -q -p portolan --bin portolan
cargo build --release -q -p portolan-audit --example gencap
target=${CARGO_TARGET_DIR:-target}
portolan="$target/release/portolan"
"$target/release/examples/gencap" "$dir/cap" --flows "$FLOWS" --packets-per-flow "$PPF" >"$dir/gen.txt"
val() { sed -n "s/^$1=//p" "$dir/gen.txt"; }
packets=$(val packets)
flows=$(val flows)
cap="$dir/cap/capture.pcap"
echo "capture: $(stat -c %s "$cap") bytes, $packets packets, $flows flows ($(awk -v p="$packets" -v f="$flows" 'BEGIN { printf "%.1f", p / f }') packets per flow)"
cat "$cap" >/dev/null

# run NAME OUT COMMAND...: "wall cpu peak_kib" of one run.
run() {
  local name=$1 file=$2 t0 t1
  shift 2
  # Only a report of this run's folder (never /dev/null, where tcpdump writes).
  case $file in
  "$out"/*) rm -f "$file" ;;
  esac
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%e %U %S %M' -o "$dir/$name.time" "$@" >"$file" 2>"$dir/$name.err" || true
  t1=$EPOCHREALTIME
  # The last line: GNU time puts "Command exited with non-zero status 1" (findings) first.
  tail -1 "$dir/$name.time" | awk -v t0="$t0" -v t1="$t1" '{ printf "%.4f %.2f %s\n", t1 - t0, $2 + $3, $4 }'
}
declare -A best
keep() {
  local key=$1 line=$2
  if [ -z "${best[$key]:-}" ] || awk -v a="${line%% *}" -v b="${best[$key]%% *}" 'BEGIN { exit !(a < b) }'; then
    best[$key]=$line
  fi
}
ratios=()
for r in $(seq "$ROUNDS"); do
  echo "== round $r of $ROUNDS (loadavg $(cut -d' ' -f1 /proc/loadavg))" >&2
  # -Z root: run as root, tcpdump would give its output file, /dev/null, to its own user.
  keep tcpdump "$(run tcpdump /dev/null tcpdump -Z root -r "$cap" -w /dev/null)"
  a=$(run one "$out/one.jsonl" "$portolan" audit "$dir/cap/site.yaml" "$cap" --format json --jobs 1)
  b=$(run two "$out/two.jsonl" "$portolan" audit "$dir/cap/site.yaml" "$cap" --format json --jobs 2)
  keep one "$a"
  keep two "$b"
  ratios+=("$(awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN { printf "%.4f", a / b }')")
  if ! cmp -s "$out/one.jsonl" "$out/two.jsonl"; then
    echo "bench: the reports of --jobs 1 and --jobs 2 differ" >&2
    exit 1
  fi
done
read -r tw tc tm <<<"${best[tcpdump]}"
read -r w1 c1 m1 <<<"${best[one]}"
read -r w2 c2 m2 <<<"${best[two]}"
# The median of the rounds' ratios (the middle one, or the mean of the two middle ones).
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
spread=$(printf '%s\n' "${ratios[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }')
awk -v p="$packets" -v tw="$tw" -v tc="$tc" -v tm="$tm" -v w1="$w1" -v c1="$c1" -v m1="$m1" \
  -v w2="$w2" -v c2="$c2" -v m2="$m2" -v r="$ROUNDS" -v med="$median" -v spread="$spread" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  printf "\nbest of %d, loadavg at the end %s\n", r, load
  printf "%-36s %8s %8s %12s %9s\n", "tool", "wall s", "CPU s", "packets/s", "peak MiB"
  printf "%-36s %8.3f %8.2f %12.0f %9.1f\n", "tcpdump -r FILE -w /dev/null", tw, tc, p / tw, tm / 1024
  printf "%-36s %8.3f %8.2f %12.0f %9.1f\n", "portolan audit --jobs 1", w1, c1, p / w1, m1 / 1024
  printf "%-36s %8.3f %8.2f %12.0f %9.1f\n", "portolan audit --jobs 2", w2, c2, p / w2, m2 / 1024
  printf "\naudit, one core, vs tcpdump:  %.2fx wall, %.2fx CPU (goal <= 1.5x)\n", w1 / tw, c1 / tc
  printf "audit, two cores, vs tcpdump: %.2fx wall (goal < 1x)\n", w2 / tw
  printf "speed-up of two cores on one: %.2fx wall, best on best (goal >= 1.7x); CPU used %.2f s vs %.2f s\n", w1 / w2, c2, c1
  printf "speed-up of two cores on one: %sx wall, median of the rounds (range %s)\n", med, spread
  printf "the reports of --jobs 1 and 2 are byte-identical\n"
}'

if [ "${CALLGRIND:-0}" = 1 ]; then
  command -v valgrind >/dev/null 2>&1 || {
    echo "bench: valgrind is missing (Debian package valgrind)" >&2
    exit 2
  }
  "$target/release/examples/gencap" "$dir/cg" --flows "${CG_FLOWS:-10000}" --packets-per-flow "$PPF" >"$dir/cg.txt"
  # tcpdump keeps root (-Z root) so that callgrind can write its counts.
  # (audit exits 1: the capture has violations, on purpose.)
  instr() {
    { valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$@" 2>&1 >/dev/null || true; } |
      sed -n 's/.*I *refs: *//p' | tr -d ,
  }
  ti=$(instr tcpdump -Z root -r "$dir/cg/capture.pcap" -w /dev/null)
  pi=$(instr "$portolan" audit "$dir/cg/site.yaml" "$dir/cg/capture.pcap" --format json --jobs 1)
  awk -v t="$ti" -v p="$pi" -v f="${CG_FLOWS:-10000}" 'BEGIN {
    printf "\ninstructions (callgrind), %d flows: tcpdump %d, portolan audit --jobs 1 %d: %.2fx\n", f, t, p, p / t
  }'
fi
