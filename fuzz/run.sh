#!/usr/bin/env bash
# Runs every fuzz target for DURATION each (`30s`, `10m`; default 10m), one after another,
# with the seeds of the repository and a dictionary where one helps. A crash, a hang (an
# input taking over 10 s) or a memory blow-up (over 2 GiB) stops the run with exit 1 and
# leaves the input in fuzz/artifacts/TARGET/; minimise it with
# `cargo +nightly fuzz tmin TARGET FILE` and add it as a regression test.
#
# usage: fuzz/run.sh [DURATION] [TARGET...]
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
  targets=(profile_yaml site_yaml mud_json capture audit_input zeek_tsv zeek_json conntrack nftlog dns_message nft_json)
fi
repo=$(cd .. && pwd)
mud_corpus="$repo/../shared/interop/mud"

# Seed directories of a target (existing ones only).
seeds() {
  local d=()
  case "$1" in
    profile_yaml) d=("$repo/catalog" "$repo/test-data/profiles/good" "$repo/test-data/profiles/bad") ;;
    site_yaml) d=("$repo/examples" "$repo/test-data/sites/good" "$repo/test-data/sites/bad") ;;
    mud_json) d=("$mud_corpus" "$repo/test-data/mud") ;;
    audit_input) d=(seeds/capture seeds/zeek_tsv seeds/zeek_json seeds/conntrack seeds/nftlog) ;;
    nft_json) d=("$repo/crates/nft/tests/data" "$repo/crates/nft/tests/data/diff") ;;
    *) d=("seeds/$1") ;;
  esac
  for x in "${d[@]}"; do
    [ -d "$x" ] && echo "$x"
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

# The MUD corpus is nested by source: libFuzzer reads only a directory's own files.
flat_seeds() {
  local t=$1 out="corpus/.seeds-$1"
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
bin=target/$(rustc +nightly -vV | awk '/^host:/ { print $2 }')/release
status=0
printf '%-14s %10s %12s %8s\n' target seconds executions exec/s
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  s=$(flat_seeds "$t")
  log="artifacts/$t/last-run.log"
  # The binary built above, run directly: no rebuild between targets.
  # shellcheck disable=SC2046
  if ! "$bin/$t" "corpus/$t" "$s" -artifact_prefix="artifacts/$t/" \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 $(dict "$t") >"$log" 2>&1; then
    echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/ (log: fuzz/$log):" >&2
    grep -E 'panicked|ERROR|Test unit written|SUMMARY' "$log" | head -8 >&2 || true
    status=1
  fi
  runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
  printf '%-14s %10s %12s %8s\n' "$t" "$secs" "${runs:-?}" \
    "$(awk -v r="${runs:-0}" -v s="$secs" 'BEGIN { printf "%.0f", r / s }')"
done
exit $status
