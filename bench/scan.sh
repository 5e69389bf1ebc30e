#!/usr/bin/env bash
# Benchmark of `portolan scan` against nmap (not a test; CI does not run it).
#
# One run builds network namespaces (created and removed here): a scanner, a router, and two
# hosts behind the router, each with two TCP listeners (socat on 22 and 8443):
#   - the resetting host: the router forwards everything, closed ports answer with a reset;
#   - the dropping host: the router drops every new connection to it (nft forward policy),
#     as a firewall in front of a device does.
# Then, in the same run, each host's full TCP range is scanned by
#   - nmap -p- -T4 -Pn -n                   (Debian nmap; its SYN scan, no ping), and
#   - portolan scan --tcp 1-65535 --no-udp --no-icmp   (release build: the same work),
# each timed wall-clock, and the open sets compared (they must be equal). Prints both ratios
# (nmap time / portolan time).
#
# Needs root (namespaces), cargo, nmap, socat, nft, ip.
# Usage: sudo bench/scan.sh     Environment: PROFILE=debug to check the script with a debug
# build (its figures are not the benchmark); RATE to pass --rate; NMAP_LIMIT=SECONDS stops
# an nmap run after that long and reports its time as a lower bound (on a loaded 2-core
# machine nmap's scan of the dropping host ran past 25 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in nmap socat nft ip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench: $tool is missing (scripts/setup.sh installs it)" >&2
    exit 2
  fi
done
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root for its network namespaces" >&2; exit 2; }

p="pscanbench$$"
sc="$p-sc"; rt="$p-rt"; rs="$p-reset"; dr="$p-drop"
cleanup() {
  for ns in "$sc" "$rt" "$rs" "$dr"; do
    if ip netns pids "$ns" >/dev/null 2>&1; then
      for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT INT TERM

profile=${PROFILE:-release}
echo "== building ($profile)" >&2
if [ "$profile" = release ]; then
  cargo build --release -q -p portolan
else
  cargo build -q -p portolan
fi
portolan="${CARGO_TARGET_DIR:-target}/$profile/portolan"

for ns in "$sc" "$rt" "$rs" "$dr"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
link() { # ns-a if-a ns-b if-b
  ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}
link "$sc" s0 "$rt" r0
link "$rt" r1 "$rs" e0
link "$rt" r2 "$dr" e0
ip -n "$sc" addr add 10.71.0.1/24 dev s0
ip -n "$rt" addr add 10.71.0.254/24 dev r0
ip -n "$rt" addr add 10.71.1.254/24 dev r1
ip -n "$rt" addr add 10.71.2.254/24 dev r2
ip -n "$rs" addr add 10.71.1.2/24 dev e0
ip -n "$dr" addr add 10.71.2.2/24 dev e0
ip -n "$sc" route add default via 10.71.0.254
ip -n "$rs" route add default via 10.71.1.254
ip -n "$dr" route add default via 10.71.2.254
ip netns exec "$rt" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$rt" nft -f - <<'NFT'
table ip bench {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    ip daddr 10.71.2.2 drop
  }
}
NFT
for h in "$rs:10.71.1.2" "$dr:10.71.2.2"; do
  ns=${h%%:*}; addr=${h#*:}
  for port in 22 8443; do
    ip netns exec "$ns" socat "TCP-LISTEN:$port,bind=$addr,reuseaddr,fork" SYSTEM:true >/dev/null 2>&1 &
  done
done
sleep 0.5

now() { date +%s.%N; }
rate=()
[ -n "${RATE:-}" ] && rate=(--rate "$RATE")

run_one() { # label addr
  local label=$1 addr=$2 t0 t1 nmap_s port_s nmap_open port_open
  echo "== $label host $addr: nmap -p- -T4 -Pn" >&2
  t0=$(now)
  bound=""
  nmap_out=$(timeout "${NMAP_LIMIT:-0}" ip netns exec "$sc" nmap -n -p- -T4 -Pn -oG - "$addr") || bound=">"
  t1=$(now)
  nmap_s=$(echo "$t1 - $t0" | bc)
  [ -n "$bound" ] && echo "   nmap stopped after NMAP_LIMIT=${NMAP_LIMIT} s without finishing: its time is a lower bound" >&2
  nmap_open=$(echo "$nmap_out" | grep -o '[0-9]*/open/tcp' | cut -d/ -f1 | sort -n | paste -sd, -)
  echo "== $label host $addr: portolan scan" >&2
  t0=$(now)
  json=$("$portolan" scan --target "$addr" --profile oscar-templog-gateway --netns "$sc" \
    --tcp 1-65535 --no-udp --no-icmp "${rate[@]}" --format json || true)
  t1=$(now)
  port_s=$(echo "$t1 - $t0" | bc)
  port_open=$(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(str(p["port"]) for p in d["ports"] if p["transport"]=="tcp" and p["state"]=="open"))')
  same=no; [ "$nmap_open" = "$port_open" ] && same=yes
  printf '%-10s nmap %s%7.2f s  portolan %7.2f s  ratio %s%6.1fx  open nmap [%s] portolan [%s] equal: %s\n' \
    "$label" "$bound" "$nmap_s" "$port_s" "$bound" "$(echo "$nmap_s / $port_s" | bc -l)" "$nmap_open" "$port_open" "$same"
}

echo "portolan scan vs nmap, full TCP range, $profile build, $(nproc) cores, $(date -u +%FT%TZ)"
run_one resetting 10.71.1.2
run_one dropping 10.71.2.2
