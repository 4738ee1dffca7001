#!/usr/bin/env bash
# Runs every fuzz target (fuzz/) for SECONDS each (default 60) with cargo-fuzz and libFuzzer, on
# the machine's stable toolchain (RUSTC_BOOTSTRAP lets cargo-fuzz use its flags), and prints
# the executions per target. Seeds: fuzz/corpus/<target>/ (kept in the repository, a few small
# inputs per target and every input that once crashed, replayed by the test suite) plus the
# repository's own topologies and clips; what the fuzzer finds grows target/fuzz-corpus/<target>/.
# A crash leaves its input in fuzz/artifacts/<target>/: fix it, then copy the input into
# fuzz/corpus/<target>/.
#
# usage: scripts/fuzz.sh [SECONDS=60] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(topology live_pipeline trigger control extension_reply mp4)
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz (a few minutes)"
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
echo "fuzz: building the targets (instrumented release build; several minutes the first time)"
(cd fuzz && cargo fuzz build -s none -O)
work=target/fuzz-work
mkdir -p "$work"
for t in "${TARGETS[@]}"; do
    seeds="$work/seeds-$t"
    rm -rf "$seeds"; mkdir -p "$seeds" "fuzz/corpus/$t" "target/fuzz-corpus/$t"
    case "$t" in
        topology) cp topologies/*.json tests/topologies/broken/*.json "$seeds/" 2>/dev/null || true ;;
        live_pipeline) for f in ../shared/ava-topologies/samples/*/operations.json; do [ -f "$f" ] && cp "$f" "$seeds/$(basename "$(dirname "$f")").json"; done ;;
        mp4) find target/test-work -name '*.mp4' -size -300k 2>/dev/null | sed -n 1,20p | while read -r f; do cp "$f" "$seeds/"; done ;;
    esac
    log="$work/$t.log"
    (cd fuzz && cargo fuzz run -s none -O "$t" "../target/fuzz-corpus/$t" "corpus/$t" "../$seeds" -- \
        -max_total_time="$SECS" -max_len=262144 -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1 || {
        echo "fuzz: $t FAILED (see $log and fuzz/artifacts/$t/)"; tail -30 "$log"; exit 1; }
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz: $t: $runs executions in ${SECS} s, corpus $(ls "target/fuzz-corpus/$t" | wc -l) inputs"
done
