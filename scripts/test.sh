#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (kernel tests included: they
# need root and create their own network namespaces), the lab proof of the example site, and
# a short run of every fuzz target (FUZZ_SMOKE=30s for longer; fuzz/run.sh 10m for real runs).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The Kafka-protocol broker the Kafka audit tests run against (crates/kafka/tests): tansu, an
# Apache-Kafka-compatible broker in Rust (no Kafka broker is packaged for Debian). Pinned and
# built once into the cache (a cold build takes minutes; later runs only check), here rather
# than in setup.sh so that the README's main job does not wait for it; `dynostore` gives the
# in-memory storage (`memory://`) the tests use. The tests read the same path, or
# $PORTOLAN_TANSU.
TANSU_VERSION=0.6.0
TANSU_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/portolan/tansu-$TANSU_VERSION"
TANSU="${PORTOLAN_TANSU:-$TANSU_ROOT/bin/tansu}"
if [ ! -x "$TANSU" ]; then
  echo "test: building the tansu $TANSU_VERSION broker into $TANSU_ROOT (minutes, once)" >&2
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore --root "$TANSU_ROOT"
fi
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
echo "== portolan lab examples/site.yaml (the example site proven on a real kernel)" >&2
cargo run -q -p portolan -- lab examples/site.yaml
echo "== portolan lab examples/site.yaml --dns enforce (names opened per device by portolan enforce)" >&2
cargo run -q -p portolan -- lab examples/site.yaml --dns enforce
# Every parser fuzzed briefly (fuzz/README.md), two targets at a time: 12 targets x 15 s / 2
# plus the build stays well under six minutes on two cores. The fuzz crate needs a nightly
# toolchain; a machine without one skips this step and says so, loudly.
echo "== fuzz smoke: every target for ${FUZZ_SMOKE:-15s}, ${FUZZ_JOBS:-2} at a time" >&2
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  # A fixed seed: the same commit explores the same inputs on every machine (a failure here
  # is reproducible; its input is printed in base64). Long runs (fuzz/run.sh 10m) explore.
  FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_JOBS=${FUZZ_JOBS:-2} fuzz/run.sh "${FUZZ_SMOKE:-15s}"
else
  echo "!! FUZZ SMOKE SKIPPED: no nightly toolchain on this machine (rustup toolchain list)" >&2
fi
# One closing line for the whole run, summing every test binary's result line; kernel trials
# skipped where the kernel lacks a feature are counted as ignored (portolan-testkit's policy).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) g += $(i-1) } }
     END { printf "total: %d passed, %d failed, %d ignored\n", p, f, g }' "$log"
