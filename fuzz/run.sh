#!/usr/bin/env bash
# Runs every fuzz target for DURATION each (`30s`, `10m`; default 10m), FUZZ_JOBS at a time
# (default 1: one after another), with the seeds of the repository and a dictionary where
# one helps. A crash, a hang (an input taking over 10 s; 60 s for the two targets that run
# the kernel's tools) or a memory blow-up (over 2 GiB) stops the run with exit 1 and
# leaves the input in fuzz/artifacts/TARGET/; minimise it with
# `cargo +nightly fuzz tmin TARGET FILE` and add it as a regression test.
#
# usage: [FUZZ_JOBS=N] [FUZZ_OUT=DIR] fuzz/run.sh [DURATION] [TARGET...]
# FUZZ_OUT: where corpus/ and artifacts/ go (default fuzz/), e.g. for a run beside another.
# FUZZ_SEED: libFuzzer's random seed (default: a new one each run). The CI smoke fixes it, so
# that a commit's result does not depend on luck; long runs leave it unset to explore.
# The table at the end gives per target: executions, corpus (files, kB), peak RSS, crashes.
# site_nft_check and profile_compile check outputs with nft, ipset, iptables-restore and
# dnsmasq inside a network namespace of their own: they need root and those tools.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). The
# working corpora grow in fuzz/corpus/ (not committed); the seeds are fuzz/seeds/, the
# catalog, test-data/, examples/ and the MUD corpus in ../shared/interop/mud.
set -euo pipefail
cd "$(dirname "$0")"
duration=${1:-10m}
shift || true
case "$duration" in
  *s) secs=${duration%s} ;;
  *m) secs=$(( ${duration%m} * 60 )) ;;
  *) secs=$(( duration * 60 )) ;;
esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(profile_yaml site_yaml mud_json capture audit_input zeek_tsv zeek_json conntrack nftlog dns_message
    nft_json site_nft_check profile_compile flow_records inventory)
fi
repo=$(cd .. && pwd)
mud_corpus="$repo/../shared/interop/mud"
work=${FUZZ_OUT:-.}

# Seed directories of a target (existing ones only).
seeds() {
  local d=()
  case "$1" in
    profile_yaml) d=("$repo/catalog" "$repo/test-data/profiles/good" "$repo/test-data/profiles/bad") ;;
    site_yaml) d=("$repo/examples" "$repo/test-data/sites/good" "$repo/test-data/sites/bad") ;;
    mud_json) d=("$mud_corpus" "$repo/test-data/mud") ;;
    # inventory: the first byte picks CSV (even) or NetBox JSON (odd); seeds/inventory holds
    # the fixtures' inventories, each behind the byte that picks its kind.
    inventory) d=(seeds/inventory) ;;
    audit_input) d=(seeds/capture seeds/zeek_tsv seeds/zeek_json seeds/conntrack seeds/nftlog) ;;
    nft_json) d=("$repo/crates/nft/tests/data" "$repo/crates/nft/tests/data/diff" seeds/nft_json) ;;
    # site_nft_check, profile_compile: generated inputs (the bytes are choices, not text)
    # start from their regression inputs.
    *) d=("seeds/$1") ;;
  esac
  for x in "${d[@]}"; do
    # Absolute, so that `-path '*/seeds/*'` below matches fuzz/seeds/ files of any name.
    [ -d "$x" ] && (cd "$x" && pwd)
  done
  return 0
}

dict() {
  case "$1" in
    profile_yaml | site_yaml) echo "-dict=dict/yaml.dict" ;;
    mud_json) echo "-dict=dict/mud.dict" ;;
    capture | audit_input) echo "-dict=dict/capture.dict" ;;
  esac
}

# The longest input: a generator's choices fit in a few kilobytes; text formats get more.
max_len() {
  case "$1" in
    site_nft_check | profile_compile) echo 4096 ;;
    *) echo 65536 ;;
  esac
}

# Seconds one input may take: the targets that run nft, iptables-restore and dnsmasq wait on
# processes, which a loaded machine slows far more than pure parsing (0.3 s became 10 s).
timeout_s() {
  case "$1" in
    site_nft_check | profile_compile) echo 60 ;;
    *) echo 10 ;;
  esac
}

# The MUD corpus is nested by source: libFuzzer reads only a directory's own files.
flat_seeds() {
  local t=$1 out="$work/corpus/.seeds-$1"
  rm -rf "$out"
  mkdir -p "$out"
  while read -r dir; do
    find "$dir" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' -o -path '*/seeds/*' \) \
      -size -256k -exec cp -t "$out" --backup=numbered {} + 2>/dev/null || true
  done < <(seeds "$t")
  echo "$out"
}

# No sanitizer: the code has no `unsafe` for ASan to watch, and it builds and runs several
# times faster; debug assertions make integer overflow a crash, as it is in a test.
echo "fuzz: building the targets (nightly, release with debug assertions)" >&2
cargo +nightly fuzz build --sanitizer none --debug-assertions >/dev/null
bin=${CARGO_TARGET_DIR:-target}/$(rustc +nightly -vV | awk '/^host:/ { print $2 }')/release
jobs=${FUZZ_JOBS:-1}
results=$(mktemp -d)
# The scratch folders the inventory target makes, one per process (libFuzzer ends a process
# with exit(), so the target cannot remove its own): those of processes that are gone.
scratch_left() {
  local d
  for d in "${TMPDIR:-/tmp}"/portolan-fuzz-inventory-*; do
    [ -d "$d" ] || continue
    kill -0 "${d##*-}" 2>/dev/null || rm -rf "$d"
  done
}
trap 'rm -rf "$results"; scratch_left' EXIT

# One target's run; its table row goes to $results/TARGET, a failure to $results/TARGET.failed.
run_one() {
  local t=$1 s log
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  s=$(flat_seeds "$t")
  log="$work/artifacts/$t/last-run.log"
  touch "$log.start"
  # The binary built above, run directly: no rebuild between targets.
  # shellcheck disable=SC2046
  if ! "$bin/$t" "$work/corpus/$t" "$s" -artifact_prefix="$work/artifacts/$t/" \
      -max_total_time="$secs" -timeout="$(timeout_s "$t")" -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
      -print_final_stats=1 $(dict "$t") ${FUZZ_SEED:+-seed="$FUZZ_SEED"} >"$log" 2>&1; then
    {
      echo "fuzz: $t FAILED; the input is in $work/artifacts/$t/ (log: $log):"
      # The panic's message follows its `panicked at` line: print both (up to 20 lines).
      grep -E -A12 'panicked at' "$log" | head -20 || true
      grep -E 'ERROR|Test unit written|SUMMARY' "$log" | head -4 || true
      # The input itself, so that a failure on a machine whose artifacts are gone (CI) can be
      # replayed: `echo B64 | base64 -d > x; cargo +nightly fuzz run TARGET x`.
      find "$work/artifacts/$t" -type f -newer "$log.start" \( -name 'crash-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) -size -8k -print0 | head -zn 2 |
        while IFS= read -r -d '' f; do echo "input $(basename "$f") (base64): $(base64 -w0 "$f")"; done
    } >"$results/$t.failed"
  fi
  local runs rss files kb crashes
  runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
  rss=$(awk '/stat::peak_rss_mb:/ { print $2 }' "$log" | tail -1)
  files=$(find "$work/corpus/$t" -type f | wc -l)
  kb=$(du -sk "$work/corpus/$t" | awk '{ print $1 }')
  crashes=$(find "$work/artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
    -o -name 'leak-*' \) -newer "$log.start" | wc -l)
  printf '%-16s %8s %12s %8s %8s %10s %9s %8s\n' "$t" "$secs" "${runs:-?}" \
    "$(awk -v r="${runs:-0}" -v s="$secs" 'BEGIN { printf "%.0f", r / s }')" \
    "$files" "$kb" "${rss:-?}MB" "$crashes" >"$results/$t"
}

running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait
status=0
printf '%-16s %8s %12s %8s %8s %10s %9s %8s\n' target seconds executions exec/s corpus corpus_kB \
  peak_rss crashes
for t in "${targets[@]}"; do
  cat "$results/$t" 2>/dev/null || echo "$t: no result"
done
for t in "${targets[@]}"; do
  if [ -e "$results/$t.failed" ] || [ ! -e "$results/$t" ]; then
    cat "$results/$t.failed" >&2 2>/dev/null || true
    status=1
  fi
done
exit $status
