#!/usr/bin/env bash
# Benchmark of `portolan audit` (not a test; CI does not run it).
#
# A deterministic generator (crates/audit/examples/gencap.rs) writes a large capture into a
# temporary folder under /tmp: >= 1 GB, >= 10 million packets, 100,000 flows, with DNS
# answers (A records and CNAME chains whose TTLs expire during the capture). Then, in the same
# run and on the same file (read once before, so every tool finds it in the page cache):
#   - tcpdump -r FILE -w /dev/null     the floor: reading the file;
#   - tshark -r FILE -q -z conv,ip     what an engineer would reach for;
#   - portolan audit SITE FILE         release build, JSON lines to /dev/null;
# each under /usr/bin/time -v: wall time, packets per second, peak memory. A second, smaller
# capture with the same 100,000 flows and a quarter of the packets shows whether the audit's
# memory follows the flows or the packets.
#
# Needs: cargo, tcpdump, tshark (Debian package tshark), GNU time. Usage: bench/audit.sh
# Environment: BENCH_DIR (default: a new folder under /tmp), KEEP=1 to keep the captures.
set -euo pipefail
cd "$(dirname "$0")/.."

need_gb=4
avail_kb=$(df -Pk /tmp | awk 'NR==2 {print $4}')
if [ "$avail_kb" -lt $((need_gb * 1024 * 1024)) ]; then
  echo "bench: /tmp has $((avail_kb / 1024)) MiB free; the captures need ${need_gb} GiB" >&2
  df -h /tmp >&2
  exit 2
fi
for tool in tcpdump tshark /usr/bin/time; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench: $tool is missing (Debian packages tcpdump, tshark, time)" >&2
    exit 2
  fi
done

dir=${BENCH_DIR:-$(mktemp -d /tmp/portolan-audit-bench.XXXXXX)}
cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$dir"
  fi
}
trap cleanup EXIT INT TERM

echo "== building (release)" >&2
cargo build --release -q -p portolan -p portolan-audit --example gencap
target=${CARGO_TARGET_DIR:-target}
portolan="$target/release/portolan"
gencap="$target/release/examples/gencap"

echo "== generating into $dir" >&2
"$gencap" "$dir/big" >"$dir/big.txt"
"$gencap" "$dir/small" --packets-per-flow 34 >"$dir/small.txt"
val() { sed -n "s/^$1=//p" "$2"; }
packets=$(val packets "$dir/big.txt")
flows=$(val flows "$dir/big.txt")
strays=$(val stray_flows "$dir/big.txt")
size=$(stat -c %s "$dir/big/capture.pcap")
echo "capture: $size bytes, $packets packets, $flows flows ($(val dns_exchanges "$dir/big.txt") DNS exchanges, $strays stray flows), $(val seconds "$dir/big.txt") s of traffic"

# Into the page cache, so that no tool pays for the disk.
cat "$dir/big/capture.pcap" >/dev/null

# run NAME OUTPUT COMMAND...: wall seconds and peak KiB of one run.
run1() {
  local name=$1 out=$2
  shift 2
  /usr/bin/time -v -o "$dir/$name.time" "$@" >"$out" 2>"$dir/$name.err" || true
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/$name.time" |
    awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/$name.time")
  echo "$wall $rss"
}
# best NAME OUTPUT COMMAND...: the faster of two runs (the machine is shared), its peak KiB.
best() {
  local a b
  a=$(run1 "$@")
  b=$(run1 "$@")
  printf '%s\n%s\n' "$a" "$b" | sort -g | head -1
}

echo "== tcpdump -r FILE -w /dev/null (best of 2)" >&2
# -Z root: run as root, tcpdump would give its output file, /dev/null, to its own user.
read -r t_tcpdump m_tcpdump < <(best tcpdump /dev/null tcpdump -Z root -r "$dir/big/capture.pcap" -w /dev/null)
echo "== portolan audit --format json (best of 2)" >&2
read -r t_audit m_audit < <(best audit "$dir/audit.jsonl" "$portolan" audit "$dir/big/site.yaml" "$dir/big/capture.pcap" --format json)
echo "== tshark -q -z conv,ip (once: minutes)" >&2
read -r t_tshark m_tshark < <(run1 tshark "$dir/tshark.txt" tshark -r "$dir/big/capture.pcap" -q -z conv,ip)
echo "== portolan audit, same flows, a quarter of the packets" >&2
small_packets=$(val packets "$dir/small.txt")
cat "$dir/small/capture.pcap" >/dev/null
read -r t_small m_small < <(best small /dev/null "$portolan" audit "$dir/small/site.yaml" "$dir/small/capture.pcap" --format json)

audit_flows=$(grep -c '"type":"flow"' "$dir/audit.jsonl" || true)
audit_violations=$(grep -c '"status":"violation"' "$dir/audit.jsonl" || true)

awk -v p="$packets" -v sp="$small_packets" \
  -v tt="$t_tcpdump" -v ta="$t_audit" -v ts="$t_tshark" -v tsm="$t_small" \
  -v mt="$m_tcpdump" -v ma="$m_audit" -v ms="$m_tshark" -v msm="$m_small" \
  -v af="$audit_flows" -v av="$audit_violations" -v sf="$strays" 'BEGIN {
  printf "\n%-34s %9s %14s %12s\n", "tool", "seconds", "packets/s", "peak MiB"
  printf "%-34s %9.2f %14.0f %12.1f\n", "tcpdump -r FILE -w /dev/null", tt, p / tt, mt / 1024
  printf "%-34s %9.2f %14.0f %12.1f\n", "tshark -q -z conv,ip", ts, p / ts, ms / 1024
  printf "%-34s %9.2f %14.0f %12.1f\n", "portolan audit --format json", ta, p / ta, ma / 1024
  printf "%-34s %9.2f %14.0f %12.1f\n", "portolan audit, 1/4 of the packets", tsm, sp / tsm, msm / 1024
  printf "\naudit vs tshark: %.1fx faster (goal >= 10x)\n", ts / ta
  printf "audit vs tcpdump read: %.2fx its time (goal <= 3x)\n", ta / tt
  printf "audit memory: %.1f MiB for %d packets, %.1f MiB for %d packets, same flows\n", ma / 1024, p, msm / 1024, sp
  printf "audit found %d flows, %d violations (the generator wrote %d stray flows)\n", af, av, sf
}'
