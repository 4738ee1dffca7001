#!/usr/bin/env bash
# Upload to the object store: this build against a reference build, in one run (issue #16).
#
# usage: [VIGIL=binary] [VIGIL_REF=binary | REF_COMMIT=47c4740] [RUNS=5] benches/store-upload.sh
#
# The reference is by default the last build with the hand-written S3 client (whole-object PUTs,
# its own SigV4 signer), built once from REF_COMMIT in a worktree under target/store-bench.
# One s3s-fs store on loopback. Two 40 s 1080p clips (about 4 and 8 Mbit/s); for each, `vigil
# replay` of the door-sensor-to-video topology with a trigger at 5 s records one 30 s segment and
# a short one (the pre-roll and the rest). Each binary replays each clip RUNS times with --store
# (a fresh archive and key prefix each time) and RUNS times without; after the replay the archive
# keeper makes one pass, uploading every segment, so
#   time to uploaded = median wall time with the store - median wall time without it,
#   throughput       = bytes uploaded / time to uploaded.
# Every upload is checked: the object in the store has the cache's bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
RUNS=${RUNS:-5}
REF_COMMIT=${REF_COMMIT:-47c4740}
WORK=target/store-bench
mkdir -p "$WORK"
WORK=$(realpath "$WORK")

if [ -z "${VIGIL:-}" ]; then
    cargo build --release --quiet --bin vigil
    VIGIL=$REPO/target/release/vigil
fi
if [ -z "${VIGIL_REF:-}" ]; then
    if [ ! -x "$WORK/ref-target/release/vigil" ] || [ "$(cat "$WORK/ref-commit" 2>/dev/null)" != "$REF_COMMIT" ]; then
        echo "bench: building the reference $REF_COMMIT (once; several minutes)"
        rm -rf "$WORK/ref"
        git worktree prune
        git worktree add --detach "$WORK/ref" "$REF_COMMIT" >/dev/null
        (cd "$WORK/ref" && CARGO_TARGET_DIR="$WORK/ref-target" cargo build --release --quiet --bin vigil)
        echo "$REF_COMMIT" > "$WORK/ref-commit"
        git worktree remove --force "$WORK/ref"
    fi
    VIGIL_REF=$WORK/ref-target/release/vigil
fi
S3S=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
[ -x "$S3S" ] || { echo "bench: s3s-fs not found: run scripts/setup-s3.sh" >&2; exit 1; }

for rate in 4 8; do
    clip=$WORK/clip-${rate}M.mp4
    [ -f "$clip" ] || ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi \
        -i "testsrc2=s=1920x1080:r=30:d=40,noise=alls=8:allf=t" -c:v libx264 -preset ultrafast \
        -b:v ${rate}M -maxrate ${rate}M -bufsize $((rate * 2))M -g 30 -bf 0 -pix_fmt yuv420p "$clip"
done
echo '{"at": 5.0, "input": "recordingTrigger", "body": {}}' > "$WORK/door.jsonl"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$WORK/s3data"; mkdir -p "$WORK/s3data/vigil"
"$S3S" --host 127.0.0.1 --port "$PORT" --access-key AKIATEST --secret-key secrettest "$WORK/s3data" >/dev/null 2>&1 &
S3PID=$!
trap 'kill $S3PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ACCESS_KEY_ID=AKIATEST AWS_SECRET_ACCESS_KEY=secrettest AWS_REGION=us-east-1

# One replay; prints its wall time in seconds. $4: the key prefix, or "" for no store.
replay() {
    local binary=$1 clip=$2 out=$3 prefix=$4
    rm -rf "$out"; mkdir -p "$out"
    local store=()
    [ -n "$prefix" ] && store=(--store "s3://vigil/$prefix")
    local t0 t1
    t0=$(date +%s.%N)
    "$binary" replay topologies/door-sensor-to-video.json --input "$clip" \
        --start-time 2026-01-01T00:00:00Z --events "$WORK/door.jsonl" --archive "$out/archive" \
        --event-log "$out/events.jsonl" "${store[@]}" 2>"$out/stderr" \
        || { echo "bench: $binary replay failed:" >&2; cat "$out/stderr" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f\n", b - a}'
}

# The uploads of one replay: "<segments> <bytes>", each object checked against the cache.
check_uploads() {
    local out=$1
    python3 - "$out" "$WORK/s3data/vigil" <<'EOF'
import json, os, sys
out, bucket = sys.argv[1], sys.argv[2]
n = total = 0
for line in open(os.path.join(out, "events.jsonl")):
    e = json.loads(line)
    if not e["properties"]["eventType"].endswith("SegmentUploaded"):
        continue
    body = e["body"]
    stored = open(os.path.join(bucket, body["key"]), "rb").read()
    if len(stored) != body["bytes"]:
        sys.exit(f"{body['key']}: {len(stored)} bytes in the store, {body['bytes']} announced")
    n += 1; total += body["bytes"]
if n == 0:
    sys.exit(f"no SegmentUploaded in {out}")
print(n, total)
EOF
}

median() { sort -n | awk '{a[NR]=$1} END{print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "bench: $RUNS runs each; this build $VIGIL, reference $VIGIL_REF ($REF_COMMIT); s3s-fs on loopback; $(nproc) cores"
printf "bench: %-10s %-9s %8s %10s %12s %14s %12s\n" build clip segments MB "without (s)" "with store (s)" "upload (s)"
declare -A upload
for rate in 4 8; do
    clip=$WORK/clip-${rate}M.mp4
    for who in ref new; do
        binary=$VIGIL; [ "$who" = ref ] && binary=$VIGIL_REF
        without=(); with=(); segs=0; bytes=0
        for i in $(seq "$RUNS"); do
            without+=("$(replay "$binary" "$clip" "$WORK/run" "")")
            with+=("$(replay "$binary" "$clip" "$WORK/run" "$who-$rate-$i")")
            read -r segs bytes < <(check_uploads "$WORK/run")
        done
        w0=$(printf '%s\n' "${without[@]}" | median)
        w1=$(printf '%s\n' "${with[@]}" | median)
        up=$(awk -v a="$w0" -v b="$w1" 'BEGIN{printf "%.3f", b - a}')
        upload[$who-$rate]=$up
        mb=$(awk -v b="$bytes" 'BEGIN{printf "%.1f", b / 1048576}')
        printf "bench: %-10s %-9s %8s %10s %12s %14s %12s   (%s MB/s)\n" "$who" "${rate}Mbit/s" "$segs" "$mb" "$w0" "$w1" "$up" \
            "$(awk -v b="$bytes" -v t="$up" 'BEGIN{ if (t > 0) printf "%.0f", b / 1048576 / t; else print "-" }')"
    done
    echo "bench: ${rate} Mbit/s: upload time new/ref = $(awk -v n="${upload[new-$rate]}" -v r="${upload[ref-$rate]}" 'BEGIN{ if (r > 0) printf "%.2f", n / r; else print "-" }')"
done
