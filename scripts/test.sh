#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (kernel tests included: they
# need root and create their own network namespaces), and the lab proof of the example site.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test" >&2
cargo test --workspace
echo "== portolan lab examples/site.yaml (the example site proven on a real kernel)" >&2
cargo run -q -p portolan -- lab examples/site.yaml
