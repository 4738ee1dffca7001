#!/usr/bin/env bash
# Sets up a Debian machine (as root) and runs every check: formatting, lints, and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
mkdir -p target
echo "== guest modules: native unit tests"
cargo test --quiet --manifest-path guest-modules/Cargo.toml -p vigil-guest -p motion-detector -p object-filter 2>&1 | tee target/guest-test-output.txt | tail -3
echo "== cargo test"
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee target/test-output.txt
# One closing line for the whole run (cargo prints one summary per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0) }' target/guest-test-output.txt target/test-output.txt
