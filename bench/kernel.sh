#!/usr/bin/env bash
# Benchmark of the kernel's per-packet cost through Portolan's ruleset as devices grow
# (not a test; CI does not run it). As root: it creates network namespaces and removes them.
#
# For each SIZES (default 10 10000 100000) a site of that many devices (gen_site.py, SHAPE
# grouped by default) is compiled to nftables (release build) and loaded into a firewall
# namespace between a device namespace (the field zone, interface lan0) and a server
# namespace (the mgmt zone, interface mgmt0), all three made by this script with unique
# names and removed on exit. Traffic only runs between these namespaces. From device
# 10.0.0.1 (group g0: ThingPark LRR, IPsec, its SLRC bound to 172.16.0.10) kernel_send.py
# sends UDP on a raw socket:
#   - admitted, one 5-tuple: UDP 4500 to the SLRC (the profile's IKE NAT-T flow): after the
#     first packet, conntrack's established path;
#   - dropped, a new source port each packet: UDP 9 to the same server, which no rule admits:
#     every packet goes through the spoofing check, the per-device verdict maps, the group's
#     chain and its rate-limited log-and-drop;
# and, as the floor, the admitted one with an empty firewall (forwarding, no ruleset). Rounds
# (default 3) go over every size in turn, so that load on the shared machine falls on all
# alike; the best round counts. Printed: ns per packet (wall and system CPU of the sending
# loop; on veth the forwarding runs in the softirq the send raises, on the same CPU), the
# firewall's share (minus the floor), and each size against 10 devices.
#
# Needs: python3, nft, ip (iproute2). Usage: bench/kernel.sh
# Environment: SIZES, SHAPE, COUNT (packets per run, default 200000), ROUNDS, PORTOLAN.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-10 10000 100000}
SHAPE=${SHAPE:-grouped}
COUNT=${COUNT:-200000}
ROUNDS=${ROUNDS:-3}
if [ "$(id -u)" != 0 ]; then
  echo "bench: run as root (network namespaces)" >&2
  exit 2
fi
for tool in python3 nft ip; do
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

W=$(mktemp -d /tmp/portolan-kernel-bench.XXXXXX)
TAG="plk$$"
FW="$TAG-fw" DEV="$TAG-dev" SRV="$TAG-srv"
cleanup() {
  for ns in "$FW" "$DEV" "$SRV"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$FW"
ip netns add "$DEV"
ip netns add "$SRV"
ip link add lan0 netns "$FW" type veth peer name eth0 netns "$DEV"
ip link add mgmt0 netns "$FW" type veth peer name eth0 netns "$SRV"
ip -n "$FW" addr add 10.255.255.254/8 dev lan0
ip -n "$FW" addr add 172.31.255.254/12 dev mgmt0
ip -n "$DEV" addr add 10.0.0.1/8 dev eth0
ip -n "$SRV" addr add 172.16.0.10/12 dev eth0
for ns in "$FW" "$DEV" "$SRV"; do
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
ip -n "$FW" link set lan0 up
ip -n "$FW" link set mgmt0 up
ip -n "$DEV" link set eth0 up
ip -n "$SRV" link set eth0 up
ip -n "$DEV" route add default via 10.255.255.254
ip -n "$SRV" route add default via 172.31.255.254
ip netns exec "$FW" sysctl -qw net.ipv4.ip_forward=1
# The server namespace swallows what arrives (no ICMP port unreachable back).
printf 'table inet sink {\n chain in { type filter hook input priority 0; policy drop; }\n}\n' |
  ip netns exec "$SRV" nft -f -

echo "== compiling sites of $SIZES devices ($SHAPE)" >&2
for n in $SIZES; do
  python3 bench/gen_site.py "$n" "$SHAPE" >"$W/site-$n.yaml"
  "$PORTOLAN" compile "$W/site-$n.yaml" --target nftables -o "$W/site-$n.nft" 2>"$W/compile-$n.err" || {
    echo "bench: compile of $n devices failed:" >&2
    cat "$W/compile-$n.err" >&2
    exit 2
  }
done

# load N: the ruleset of N devices (or none for "floor") in the firewall namespace.
load() {
  ip netns exec "$FW" nft flush ruleset
  if [ "$1" != floor ]; then
    ip netns exec "$FW" nft -f "$W/site-$1.nft"
  fi
}
# send MODE: "wall sys" ns per packet.
send() {
  local dport=4500
  [ "$1" = vary ] && dport=9
  ip netns exec "$DEV" python3 bench/kernel_send.py 10.0.0.1 172.16.0.10 "$dport" "$COUNT" "$1" |
    sed -n 's/.*wall_ns_per_packet=\([0-9]*\) sys_ns_per_packet=\([0-9]*\).*/\1 \2/p'
}
# The admitted flow must pass and the other must not: the server's counters say.
check() {
  ip netns exec "$SRV" nft flush ruleset
  printf 'table inet sink {\n chain in { type filter hook input priority 0; policy drop;\n udp dport 4500 counter\n udp dport 9 counter\n }\n}\n' |
    ip netns exec "$SRV" nft -f -
  ip netns exec "$DEV" python3 bench/kernel_send.py 10.0.0.1 172.16.0.10 4500 100 fixed >/dev/null
  ip netns exec "$DEV" python3 bench/kernel_send.py 10.0.0.1 172.16.0.10 9 100 vary >/dev/null
  ip netns exec "$SRV" nft list chain inet sink in | grep -o 'dport [0-9]* counter packets [0-9]*' | tr '\n' ';'
}

for n in $SIZES; do
  load "$n"
  seen=$(check)
  echo "$n devices: at the server, $seen (expected: 4500 = 100 packets, 9 = 0)" >&2
done

declare -A best
for r in $(seq "$ROUNDS"); do
  echo "== round $r of $ROUNDS" >&2
  for n in floor $SIZES; do
    load "$n"
    for mode in fixed vary; do
      read -r wall sys < <(send "$mode")
      key="$n/$mode"
      if [ -z "${best[$key]:-}" ] || [ "$wall" -lt "${best[$key]%% *}" ]; then
        best[$key]="$wall $sys"
      fi
    done
  done
done

echo
echo "loadavg at the end: $(cut -d' ' -f1-3 /proc/loadavg); $COUNT packets per run, best of $ROUNDS"
printf '%-10s %-26s %10s %10s %14s %10s\n' devices path "wall ns" "sys ns" "firewall ns" "vs 10"
for mode in fixed vary; do
  read -r fw0 _ <<<"${best[floor/$mode]}"
  base=""
  for n in $SIZES; do
    read -r wall sys <<<"${best[$n/$mode]}"
    # The floor of the dropped path delivers its packets to the server: no floor for it.
    share=$((wall - fw0))
    [ "$mode" = vary ] && share=-1
    [ -z "$base" ] && base=$wall
    what="admitted, established"
    [ "$mode" = vary ] && what="dropped, new each packet"
    awk -v n="$n" -v w="$what" -v wall="$wall" -v sys="$sys" -v share="$share" -v base="$base" \
      'BEGIN { printf "%-10s %-26s %10d %10d %14s %9.3fx\n", n, w, wall, sys, share < 0 ? "-" : share, wall / base }'
  done
  if [ "$mode" = fixed ]; then
    printf '%-10s %-26s %10d\n' none "no ruleset (the floor)" "$fw0"
  fi
done
