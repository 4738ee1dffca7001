#!/usr/bin/env bash
# Sets up a Debian machine (as root) and runs every check: formatting, lints, and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
