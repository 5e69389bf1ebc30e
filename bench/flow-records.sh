#!/usr/bin/env bash
# Benchmark of flow-record decoding: `portolan audit` of an IPFIX file against `nfdump -r` of
# the same records (not a test; CI does not run it).
#
# gencap (crates/audit/examples/gencap.rs) writes a capture of 100,000 flows (FLOWS) and its
# site; softflowd (Debian softflowd) reads it (-r) and exports IPFIX twice, in a network
# namespace this script creates and removes: to a UDP socket that writes the datagrams to a
# file (what `portolan audit` reads) and to nfcapd (Debian nfdump), whose file `nfdump -r`
# reads. Then, in the same run, each timed best of 3 under GNU time:
#   - nfdump -R DIR -o csv             decoding and printing every record;
#   - portolan audit SITE FILE.ipfix   release build: decoding, folding, matching, JSON lines;
# and the records each counted (they must agree), records per second, and the ratio.
#
# Needs root (the namespace), cargo, softflowd, nfdump, socat, GNU time.
# Usage: sudo bench/flow-records.sh     Environment: FLOWS (default 100000), KEEP=1,
# PROFILE=debug to check the script with a debug build (its figures are not the benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in softflowd softflowctl nfcapd nfdump socat /usr/bin/time ip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench: $tool is missing (scripts/setup.sh installs softflowd and nfdump)" >&2
    exit 2
  fi
done
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root for its network namespace" >&2; exit 2; }

flows=${FLOWS:-100000}
dir=$(mktemp -d /tmp/portolan-flow-bench.XXXXXX)
ns="pflbench$$"
cleanup() {
  if ip netns pids "$ns" >/dev/null 2>&1; then
    for p in $(ip netns pids "$ns"); do kill "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM

profile=${PROFILE:-release}
echo "== building ($profile)" >&2
if [ "$profile" = release ]; then
  cargo build --release -q -p portolan
  cargo build --release -q -p portolan-audit --example gencap
else
  cargo build -q -p portolan
  cargo build -q -p portolan-audit --example gencap
fi
target=${CARGO_TARGET_DIR:-target}/$profile
portolan="$target/portolan"
"$target/examples/gencap" "$dir/gen" --flows "$flows" --packets-per-flow 8 >"$dir/gen.txt"

echo "== exporting with softflowd (IPFIX)" >&2
ip netns add "$ns"
ip -n "$ns" link set lo up
# softflowd sends as fast as it reads: room for the datagrams in the collectors' sockets.
ip netns exec "$ns" sysctl -qw net.core.rmem_max=67108864 2>/dev/null || true
mkdir -p "$dir/nfcapd"
ip netns exec "$ns" socat -u UDP-RECV:4739,rcvbuf=16777216 "CREATE:$dir/flows.ipfix" &
ip netns exec "$ns" nfcapd -p 9995 -B 33554432 -w "$dir/nfcapd" &
sleep 0.5
export_to() { # port
  local ctl="$dir/sf-$1.ctl"
  ip netns exec "$ns" softflowd -d -a -r "$dir/gen/capture.pcap" -v 10 -m 1000000 \
    -n "127.0.0.1:$1" -p "$dir/sf-$1.pid" -c "$ctl" >/dev/null 2>&1 &
  local pid=$!
  while [ ! -S "$ctl" ]; do sleep 0.1; done
  softflowctl -c "$ctl" statistics >/dev/null
  sleep 1
  softflowctl -c "$ctl" shutdown >/dev/null
  wait "$pid"
}
export_to 4739
export_to 9995
sleep 1
for p in $(ip netns pids "$ns"); do kill "$p" 2>/dev/null || true; done
sleep 1
# nfcapd may have rotated its file (every 5 minutes of the clock): nfdump reads the folder.
nfdir="$dir/nfcapd"

best() { # label cmd...  → "seconds maxrss_kb" of the fastest of 3
  shift
  local b="" m=""
  for _ in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$dir/time" "$@" >"$dir/out" 2>/dev/null || true
    read -r t k < <(tail -1 "$dir/time")  # after "Command exited with non-zero status"
    if [ -z "$b" ] || awk "BEGIN{exit !($t < $b)}"; then b=$t; m=$k; fi
  done
  echo "$b $m"
}
cat "$dir/flows.ipfix" "$nfdir"/nfcapd.* >/dev/null
read -r t_nf m_nf < <(best nfdump env TZ=UTC nfdump -R "$nfdir" -o csv)
n_nf=$(env TZ=UTC nfdump -R "$nfdir" -o csv | awk -F, '/^flows,bytes/ {getline; print $1}')
read -r t_pl m_pl < <(best portolan "$portolan" audit "$dir/gen/site.yaml" "$dir/flows.ipfix" --format json)
"$portolan" audit "$dir/gen/site.yaml" "$dir/flows.ipfix" --format json >"$dir/audit.jsonl" 2>/dev/null || true
n_pl=$(tail -1 "$dir/audit.jsonl" | sed -n 's/.*"flow_records":{"records":\([0-9]*\).*/\1/p')

echo "ipfix file: $(stat -c %s "$dir/flows.ipfix") bytes; nfcapd files: $(cat "$nfdir"/nfcapd.* | wc -c) bytes"
echo "records: nfdump $n_nf, portolan ${n_pl:-?} (softflowd: two one-way records per flow of the capture)"
if [ "$n_nf" != "${n_pl:-}" ]; then
  echo "bench: the record counts differ: a collector lost datagrams (nfcapd's socket buffer?)" >&2
fi
rate() { awk "BEGIN{ if ($2 > 0) printf \"%.0f\", $1 / $2; else print \"inf\" }"; }
printf '%-34s %8s s %12s records/s %8s MiB\n' "nfdump -R DIR -o csv" "$t_nf" "$(rate "$n_nf" "$t_nf")" "$((m_nf / 1024))"
printf '%-34s %8s s %12s records/s %8s MiB\n' "portolan audit SITE FILE.ipfix" "$t_pl" "$(rate "${n_pl:-0}" "$t_pl")" "$((m_pl / 1024))"
awk "BEGIN{ if ($t_pl > 0) printf \"ratio: portolan is %.2fx nfdump's speed\n\", $t_nf / $t_pl }"
