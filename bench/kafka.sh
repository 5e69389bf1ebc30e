#!/usr/bin/env bash
# Benchmark of audit as a Kafka consumer group (not a test; CI does not run it):
#   - records per second through 1 and then 2 `portolan audit --from` workers (goal: 2 workers
#     >= 1.7x one), 6 partitions, goflow2 FlowMessages (protobuf): once with every record one
#     violating flow (a finding per record, which the broker takes and serves again), once
#     with one record in 100 violating. All records are produced first, then the workers
#     start; the rate is taken from the moment the group is stable (every worker holds
#     partitions, as their `assigned partitions` lines say) to the moment 90 % of what was left
#     is committed, read from the group's committed offsets (a window's offset is committed
#     only after its findings were delivered); with the CPU seconds the broker and the
#     workers spent over that span;
#   - produce-to-finding latency (p50/p99) at a steady rate with one worker and 1-second
#     windows: each record's flow start is its produce time, each finding's `first` is read
#     when the finding arrives;
#   - resident memory of a worker holding 100,000 live flows (its window kept open) less the
#     same worker idle.
# One local tansu broker (memory storage), started and stopped here; the broker, the workers
# and the driver share this machine's cores, which the figures include.
#
# Needs cargo and the tansu broker (scripts/test.sh builds it).
# Usage: bench/kafka.sh     Environment: RECORDS (1000000), RECORDS_MIX (2000000), RATE (2000),
# SECONDS (10), WINDOW (2000), PORTOLAN (the worker binary, default the build's; to compare
# builds in one hour), KAFKA_OPTIONS (the workers' --kafka-option KEY=VALUEs, none by
# default), MIXES ("1 100"), PHASES ("throughput latency memory"), PROFILE=debug to check the
# script quickly (its figures are not the benchmark), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU="${PORTOLAN_TANSU:-${XDG_CACHE_HOME:-$HOME/.cache}/portolan/tansu-0.6.0/bin/tansu}"
[ -x "$TANSU" ] || { echo "bench: no tansu at $TANSU (scripts/test.sh builds it)" >&2; exit 2; }
profile=${PROFILE:-release}
flag=""
[ "$profile" = release ] && flag="--release"
cargo build -q $flag -p portolan --bin portolan
cargo build -q $flag -p portolan-kafka --example kafka_bench

dir=$(mktemp -d /tmp/portolan-kafka-bench.XXXXXX)
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM

cat > "$dir/kafka-device.yaml" <<'YAML'
portolan: 1
id: kafka-device
vendor: Test
product: Device
sources:
  - {id: doc, title: Test page, url: "https://example.com/device"}
endpoints:
  - {id: cloud, hosts: [api.vendor.example]}
  - {id: dns, service: dns}
flows:
  - {id: https, from: device, to: cloud, initiation: device, protocol: tcp, ports: 443, source: {doc: doc, ref: r1}}
  - {id: dns, from: device, to: dns, initiation: device, protocol: udp, ports: 53, source: {doc: doc, ref: r2}}
listens: none
YAML
cat > "$dir/site.yaml" <<'YAML'
portolan: 1
site: kafka-bench
zones:
  - {id: field, interface: lan0, networks: [10.20.0.0/16]}
  - {id: wan, interface: wan0}
services:
  dns: [10.20.255.1]
devices:
  - {id: devices, profile: kafka-device.yaml, zone: field, addresses: [10.20.0.0/22]}
YAML

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TANSU" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$dir/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

echo "bench: $profile build, load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores" >&2
BROKER="127.0.0.1:$port" BROKER_PID="$broker_pid" TANSU="$TANSU" PORTOLAN="${PORTOLAN:-target/$profile/portolan}" SITE="$dir/site.yaml" \
  "target/$profile/examples/kafka_bench"
