#!/usr/bin/env bash
# Sets up a Debian machine (as root), builds vigil and runs the main job.
# Until the media path lands, the main job validates every topology in topologies/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release
for topology in topologies/*.json; do
    ./target/release/vigil validate "$topology"
done
