#!/usr/bin/env bash
# Benchmark of `portolan enforce` against dnsmasq with `nftset=` (not a test; CI does not run
# it). As root: it creates network namespaces and removes them on exit; traffic runs only
# between them.
#
# Two identical firewall namespaces share one upstream namespace, where ONE dnsmasq answers
# n<I>.bench.example (I < NAMES) from a hosts file, each with its own address in 198.18.0.0/15,
# TTL 300 (--local-ttl), and m<I>.other.example likewise:
#   dev-p (10.70.0.10-13) -- fw-p: `portolan apply --enforce` + `portolan enforce` (release
#                            build, per-device scoping: every answer adds `device . peer`
#                            to the flow's set, held until the kernel committed it)
#   dev-d (10.71.0.10-13) -- fw-d: dnsmasq --nftset=/bench.example/4#inet#plbench#dn4
#                            (--cache-size=0, so every answer goes upstream and is written;
#                            a set of ipv4_addr with a default timeout: no per-device key)
#                                  + dnsmasq without nftset on port 5300 (forwarding alone)
# Both forwarders ask the same upstream process. bench/dns_load.py (python3) sends the same
# query mix to each: a fresh name per query (so every answer writes one new element in both),
# sources rotating over the four device addresses. Per round and tool:
#   - latency: one query outstanding, COUNT queries: p50/p99 of send-to-answer;
#   - throughput: DEPTH outstanding, TCOUNT queries: answers/s (and p50/p99 under load);
# and the floor: the same queries from dev-d straight to the upstream through fw-d (routing
# only). Added latency per answer = the tool's percentile minus the floor's. Rounds (ROUNDS,
# default 3) run every phase in turn, so load on the shared machine falls on all alike; the
# median round is printed, and the ratios Portolan / dnsmasq-nftset.
#
# Needs: python3, nft, ip, dnsmasq. Usage: bench/enforce.sh
# Environment: COUNT (default 2000), TCOUNT (5000), DEPTH (32), ROUNDS (3), PORTOLAN (a built
# binary; else a release build), PORTOLAN_NFT_BACKEND=process (the old one-nft-per-commit path).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-2000}
TCOUNT=${TCOUNT:-5000}
DEPTH=${DEPTH:-32}
ROUNDS=${ROUNDS:-3}
if [ "$(id -u)" != 0 ]; then
  echo "bench: run as root (network namespaces)" >&2
  exit 2
fi
for tool in python3 nft ip dnsmasq; do
  command -v "$tool" >/dev/null || {
    echo "bench: $tool is missing" >&2
    exit 2
  }
done
if [ -z "${PORTOLAN:-}" ]; then
  echo "== building (release)" >&2
  cargo build --release -q -p portolan
  PORTOLAN=${CARGO_TARGET_DIR:-target}/release/portolan
fi
PORTOLAN=$(realpath "$PORTOLAN")
LOAD=$(realpath bench/dns_load.py)

W=$(mktemp -d /tmp/portolan-enforce-bench.XXXXXX)
# dnsmasq reads its hosts file after dropping to user nobody.
chmod 755 "$W"
TAG="ple$$"
UP="$TAG-up" FWP="$TAG-fwp" FWD="$TAG-fwd" DEVP="$TAG-devp" DEVD="$TAG-devd"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "$UP" "$FWP" "$FWD" "$DEVP" "$DEVD"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# (Backgrounded processes are started with `ip netns exec` itself, not through this function,
# so that `$!` is the process and the cleanup's kill reaches it.)
nsx() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}
for ns in "$UP" "$FWP" "$FWD" "$DEVP" "$DEVD"; do
  ip netns add "$ns"
  nsx "$ns" ip link set lo up
done
# link NS_A IF_A ADDR_A NS_B IF_B ADDR_B
link() {
  ip link add "$TAG-x" type veth peer name "$TAG-y"
  ip link set "$TAG-x" netns "$1"
  ip link set "$TAG-y" netns "$4"
  nsx "$1" ip link set "$TAG-x" name "$2"
  nsx "$4" ip link set "$TAG-y" name "$5"
  nsx "$1" ip addr add "$3" dev "$2"
  nsx "$4" ip addr add "$6" dev "$5"
  nsx "$1" ip link set "$2" up
  nsx "$4" ip link set "$5" up
}
link "$FWP" lan0 10.70.0.1/24 "$DEVP" eth0 10.70.0.10/24
link "$FWD" lan0 10.71.0.1/24 "$DEVD" eth0 10.71.0.10/24
link "$FWP" wan0 198.51.100.1/30 "$UP" eth0 198.51.100.2/30
link "$FWD" wan0 198.51.100.5/30 "$UP" eth1 198.51.100.6/30
for i in 11 12 13; do
  nsx "$DEVP" ip addr add "10.70.0.$i/24" dev eth0
  nsx "$DEVD" ip addr add "10.71.0.$i/24" dev eth0
done
nsx "$DEVP" ip route add default via 10.70.0.1
nsx "$DEVD" ip route add default via 10.71.0.1
nsx "$FWP" ip route add default via 198.51.100.2
nsx "$FWD" ip route add default via 198.51.100.6
nsx "$UP" ip route add 10.71.0.0/24 via 198.51.100.5
nsx "$FWP" sysctl -q -w net.ipv4.ip_forward=1
nsx "$FWD" sysctl -q -w net.ipv4.ip_forward=1

# The upstream's names: enough for every phase of every round to use fresh ones.
NAMES=$((ROUNDS * (4 * COUNT + 2 * TCOUNT) + 20))
python3 - "$NAMES" "$COUNT" >"$W/hosts" <<'EOF'
import sys
n, m = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print("198.%d.%d.%d n%d.bench.example" % (18 + (i >> 16), (i >> 8) & 255, i & 255, i))
for i in range(n):
    print("198.%d.%d.%d m%d.other.example" % (18 + (i >> 16), (i >> 8) & 255, i & 255, i))
EOF
DNSMASQ=(dnsmasq --keep-in-foreground --no-resolv --no-hosts --pid-file= --conf-file=/dev/null
  --bind-interfaces --log-facility=/dev/null --dns-forward-max=1000)
ip netns exec "$UP" "${DNSMASQ[@]}" --listen-address=198.51.100.2 --listen-address=198.51.100.6 \
  --addn-hosts="$W/hosts" --local-ttl=300 --cache-size=10000 &
PIDS+=($!)

# Portolan: a profile opening *.bench.example (TCP 443) and the site's DNS; four devices.
cat >"$W/bench-cam.yaml" <<'EOF'
portolan: 1
id: bench-cam
vendor: Example
product: Camera
sources:
  - id: doc
    title: Benchmark profile
    file: bench.txt
endpoints:
  - id: dns
    service: dns
    source: {doc: doc, ref: "dns"}
  - id: cloud
    domains: ["*.bench.example"]
    source: {doc: doc, ref: "domains"}
flows:
  - id: dns
    from: device
    to: dns
    initiation: device
    protocol: udp
    ports: 53
    source: {doc: doc, ref: "row 1"}
  - id: cloud-443
    from: device
    to: cloud
    initiation: device
    protocol: tcp
    ports: 443
    source: {doc: doc, ref: "row 2"}
listens: none
EOF
{
  printf 'portolan: 1\nsite: enforce-bench\nzones:\n  - id: lan\n    interface: lan0\n    networks: [10.70.0.0/24]\nservices:\n  dns: firewall\ndevices:\n'
  for i in 10 11 12 13; do
    printf '  - id: cam-%s\n    profile: bench-cam\n    zone: lan\n    addresses: [10.70.0.%s]\n' "$i" "$i"
  done
} >"$W/site.yaml"
"$PORTOLAN" apply "$W/site.yaml" --catalog "$W/bench-cam.yaml" --enforce --netns "$FWP" \
  --state-dir "$W/state" >/dev/null
"$PORTOLAN" enforce "$W/site.yaml" --catalog "$W/bench-cam.yaml" --netns "$FWP" \
  --listen 10.70.0.1:53 --upstream 198.51.100.2 >"$W/enforce.log" &
PIDS+=($!)

# dnsmasq with nftset= (and one without) in fw-d.
nsx "$FWD" nft -f - <<'EOF'
table inet plbench {
	set dn4 {
		type ipv4_addr
		flags timeout
		timeout 330s
	}
}
EOF
ip netns exec "$FWD" "${DNSMASQ[@]}" --listen-address=10.71.0.1 --server=198.51.100.6 --cache-size=0 \
  --nftset=/bench.example/4#inet#plbench#dn4 &
PIDS+=($!)
ip netns exec "$FWD" "${DNSMASQ[@]}" --listen-address=10.71.0.1 --port=5300 --server=198.51.100.6 \
  --cache-size=0 &
PIDS+=($!)

SRCP=10.70.0.10,10.70.0.11,10.70.0.12,10.70.0.13
SRCD=10.71.0.10,10.71.0.11,10.71.0.12,10.71.0.13
for _ in $(seq 50); do
  if nsx "$DEVP" python3 "$LOAD" 10.70.0.1 0 1 1 10.70.0.10 2>/dev/null | grep -q '"answers": 1' &&
    nsx "$DEVD" python3 "$LOAD" 10.71.0.1 1 1 1 10.71.0.10 2>/dev/null | grep -q '"answers": 1' &&
    nsx "$DEVD" python3 "$LOAD" 10.71.0.1:5300 2 1 1 10.71.0.10 2>/dev/null | grep -q '"answers": 1'; then
    break
  fi
  sleep 0.2
done
grep -o '"commit":"[a-z-]*"' "$W/enforce.log" | head -1 >&2 || true

NEXT=10
# run NAME NS SERVER COUNT DEPTH SRCS [SUFFIX]: appends one JSON line to $W/NAME.
run() {
  local first=$NEXT
  NEXT=$((NEXT + $4))
  nsx "$2" python3 "$LOAD" "$3" "$first" "$4" "$5" "$6" "${7:-bench.example}" >>"$W/$1"
}
for r in $(seq "$ROUNDS"); do
  echo "== round $r" >&2
  run floor "$DEVD" 198.51.100.6 "$COUNT" 1 "$SRCD"
  run dnsmasq-fwd "$DEVD" 10.71.0.1:5300 "$COUNT" 1 "$SRCD"
  run dnsmasq-nftset "$DEVD" 10.71.0.1 "$COUNT" 1 "$SRCD"
  run portolan "$DEVP" 10.70.0.1 "$COUNT" 1 "$SRCP"
  NEXT=$((NEXT - COUNT))
  run portolan-nothing-opened "$DEVP" 10.70.0.1 "$COUNT" 1 "$SRCP" other.example
  run dnsmasq-nftset-load "$DEVD" 10.71.0.1 "$TCOUNT" "$DEPTH" "$SRCD"
  run portolan-load "$DEVP" 10.70.0.1 "$TCOUNT" "$DEPTH" "$SRCP"
done

echo "portolan enforce events:" >&2
grep -o '"event":"[a-z-]*"' "$W/enforce.log" | sort | uniq -c >&2 || true
grep -m3 '"event":"\(upstream-error\|commit-error\)"' "$W/enforce.log" >&2 || true
python3 -c '
import json, sys
ms = sorted(json.loads(l).get("commit_ms", 0) for l in open(sys.argv[1]) if "\"answer\"" in l)
print("portolan commit_ms per answer: p50 %.3f p99 %.3f max %.3f" % (ms[len(ms) // 2], ms[int(len(ms) * 0.99)], ms[-1]))
' "$W/enforce.log" >&2 || true
ELEMS_P=$(nsx "$FWP" nft list table inet portolan | grep -o 'expires' | wc -l || true)
ELEMS_D=$(nsx "$FWD" nft list set inet plbench dn4 | grep -o 'expires' | wc -l || true)
python3 - "$W" "$ROUNDS" "$COUNT" "$TCOUNT" "$DEPTH" "$ELEMS_P" "$ELEMS_D" <<'EOF'
import json, statistics, sys
w, rounds, count, tcount, depth, ep, ed = sys.argv[1:8]
def rows(name):
    return [json.loads(l) for l in open(f"{w}/{name}")]
def med(name, key):
    v = [r[key] for r in rows(name) if r[key] is not None]
    return statistics.median(v) if v else float("nan")
def errs(name):
    return sum(r["errors"] for r in rows(name))
for name in ["floor", "dnsmasq-fwd", "dnsmasq-nftset", "portolan", "portolan-nothing-opened",
             "dnsmasq-nftset-load", "portolan-load"]:
    codes = [r.get("error_rcodes") for r in rows(name) if r.get("error_rcodes")]
    if codes:
        print(f"{name}: error answers by rcode {codes} (the rest of its errors: no answer in 3 s)")
print(f"enforce benchmark: {rounds} rounds (median shown), {count} queries at depth 1, "
      f"{tcount} at depth {depth}; a fresh name (one new element) per answer")
print(f"elements in the kernel at the end: portolan {ep} (device . peer), dnsmasq {ed} (peer)")
print(f"{'':26}{'p50 us':>9}{'p99 us':>9}{'+p50 us':>9}{'+p99 us':>9}{'errors':>8}")
f50, f99 = med("floor", "p50_us"), med("floor", "p99_us")
for n in ["floor", "dnsmasq-fwd", "dnsmasq-nftset", "portolan", "portolan-nothing-opened"]:
    p50, p99 = med(n, "p50_us"), med(n, "p99_us")
    print(f"{n:26}{p50:9.0f}{p99:9.0f}{p50 - f50:9.0f}{p99 - f99:9.0f}{errs(n):8}")
print(f"{'':26}{'answers/s':>10}{'p50 us':>9}{'p99 us':>9}{'errors':>8}")
for n in ["dnsmasq-nftset-load", "portolan-load"]:
    print(f"{n:26}{med(n, 'answers_per_s'):10.0f}{med(n, 'p50_us'):9.0f}"
          f"{med(n, 'p99_us'):9.0f}{errs(n):8}")
a50 = med("portolan", "p50_us") - f50
d50 = med("dnsmasq-nftset", "p50_us") - f50
a99 = med("portolan", "p99_us") - f99
d99 = med("dnsmasq-nftset", "p99_us") - f99
print(f"ratio portolan / dnsmasq-nftset, added latency: p50 {a50 / d50:.2f}x, p99 {a99 / d99:.2f}x"
      f" (goal <= 2x)")
print(f"ratio portolan / dnsmasq-nftset, answers/s at depth {depth}: "
      f"{med('portolan-load', 'answers_per_s') / med('dnsmasq-nftset-load', 'answers_per_s'):.2f}x")
EOF
