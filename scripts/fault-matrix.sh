#!/usr/bin/env bash
# Vigil's fault matrix (issue #13): every fault against every seed use case, one table.
#
#   bash scripts/fault-matrix.sh           # the full matrix (about 15-20 min on 2 cores): the README's table
#   bash scripts/fault-matrix.sh --quick   # the fast subset CI runs (about 3 min)
#   bash scripts/fault-matrix.sh --list    # the cells; --only door:camera-kill,motion:store-down runs some
#
# The binary is $VIGIL, else target/debug/vigil (build it first). Exits 1 when a cell fails
# (did not survive, an event missing, more than 1 s lost beyond the fault, a file unplayable, the
# archive inconsistent), 2 when something it needs is missing. See scripts/fault-matrix.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export VIGIL="${VIGIL:-$PWD/target/debug/vigil}"
if [ ! -x "$VIGIL" ]; then
  echo "fault-matrix: no vigil binary at $VIGIL (cargo build, or set VIGIL)" >&2
  exit 2
fi
for tool in ffmpeg ffprobe mosquitto mosquitto_pub; do
  command -v "$tool" >/dev/null || { echo "fault-matrix: $tool missing (scripts/setup-media.sh)" >&2; exit 2; }
done
exec python3 scripts/fault-matrix.py "$@"
