#!/usr/bin/env bash
# The performance race (issue #17): every path against its FFmpeg reference in one run, one table.
#
# usage: [VIGIL=binary] [MOTION_STREAMS=4 (0 skips)] [SERVICE_STREAMS=50] [BENCHES=1] [PROFILE=1]
#        benches/race.sh [SECONDS=20]
#
# Paths, each beside what FFmpeg does for the same work, on this machine in this run:
#   * motion path: MOTION_STREAMS pipelines of topologies/motion-to-files.json (decode, scale to
#     320 px luma, the motion-detector guest at 10 analyses a second, gate, MP4 files) in ONE
#     `vigil serve --config` process, against as many `ffmpeg -threads 1 -i URL -f null -`
#     (decoding every frame, nothing else); for a 1080p30 4 Mbit/s H.264 stream without B-frames
#     (what most cameras send), the same with two B-frames between references, and H.265;
#   * passthrough recording: benches/service-scale.sh SERVICE_STREAMS (0 skips it; it takes
#     about four minutes with 50);
#   * HttpExtension frame: `cargo bench --bench http_extension` (scale + pad + JPEG against
#     FFmpeg's scale + pad + MJPEG, in CPU time);
#   * motion guest against the same detector compiled natively: `cargo bench --bench wasm_filters`;
#   * memory of a recording-only service: PSS, and the share of it in FFmpeg's libraries.
# BENCHES=0 leaves out the two cargo benches (they build the working tree, not VIGIL).
# CPU is utime+stime of the processes over SECONDS (after a warm-up), per stream-second;
# wake-ups are context switches of every thread per stream-second; PSS from smaps_rollup.
# With PROFILE=1 (default) the H.264 motion path is profiled with perf (DWARF call graphs) into
# target/race/motion-path.svg (a flame graph; needs inferno: `cargo install inferno`), with its
# top functions printed. Needs scripts/setup.sh; builds vigil in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
MOTION_STREAMS=${MOTION_STREAMS:-4}
SERVICE_STREAMS=${SERVICE_STREAMS:-50}
PROFILE=${PROFILE:-1}
BENCHES=${BENCHES:-1}
WORK=target/race
mkdir -p "$WORK"
if [ -z "${VIGIL:-}" ]; then
    echo "race: building vigil (release)"
    cargo build --release --quiet
    VIGIL=target/release/vigil
fi
HZ=$(getconf CLK_TCK)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# The clips: 20 s of 1080p30 at about 4 Mbit/s with motion everywhere (testsrc2 + noise).
SCENE="testsrc2=s=1920x1080:r=30:d=20,noise=alls=8:allf=t"
RATE=(-b:v 4M -maxrate 4M -bufsize 8M -g 30 -keyint_min 30 -sc_threshold 0 -pix_fmt yuv420p)
make_clip() { # NAME CODEC-ARGS...
    local out=$WORK/$1.mp4; shift
    [ -s "$out" ] && return
    echo "race: encoding $out (once)"
    ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "$SCENE" "$@" "${RATE[@]}" "$out.tmp.mp4"
    mv "$out.tmp.mp4" "$out"
}
make_clip h264 -c:v libx264 -preset veryfast -bf 0
make_clip h264-bframes -c:v libx264 -preset veryfast -bf 2 -x264-params b-pyramid=none:b-adapt=0
make_clip h265 -c:v libx265 -preset veryfast -x265-params log-level=error:bframes=0

PORT=18770
declare -A URL
for clip in h264 h264-bframes h265; do
    /usr/bin/python3 scripts/peers/rtsp-camera.py "$WORK/$clip.mp4" --port $PORT --mount /cam \
        > "$WORK/camera-$clip.log" 2>&1 &
    pids+=($!)
    URL[$clip]=rtsp://127.0.0.1:$PORT/cam
    PORT=$((PORT + 1))
done
sleep 2

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
wakes() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}'; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
# Sums of ticks and wake-ups over PIDS.
measure() { local t=0 w=0 p; for p in "$@"; do t=$((t + $(ticks "$p"))); w=$((w + $(wakes "$p"))); done; echo "$t $w"; }
div() { awk -v x="$1" -v d="$2" -v f="${3:-%.5f}" 'BEGIN{printf f, (d > 0 ? x / d : 0)}'; }
ROWS=()
row() { ROWS+=("| $* |"); }

# One `vigil serve --config` with N motion pipelines on URL; prints "cpu wakes pss_mib files".
vigil_motion() { # CLIP N
    local clip=$1 n=$2 dir=$WORK/motion-$1
    rm -rf "$dir"; mkdir -p "$dir/config"
    cp topologies/motion-to-files.json "$dir/config/"
    local i
    for i in $(seq "$n"); do
        mkdir -p "$dir/out$i"
        cat > "$dir/config/m$i.json" <<EOF
{"name": "m$i", "properties": {"topologyName": "MotionToFiles", "parameters": [
  {"name": "rtspUrl", "value": "${URL[$clip]}"}, {"name": "rtspUserName", "value": "u$i"},
  {"name": "outputDirectory", "value": "$(realpath "$dir")/out$i"}]}}
EOF
    done
    "$VIGIL" serve --config "$dir/config" --http 127.0.0.1:18790 --event-log "$dir/events.jsonl" \
        2> "$dir/log" &
    local vpid=$!; pids+=("$vpid")
    sleep 8   # sessions up, decoders and guests warm, the pre-roll full
    read -r t0 w0 < <(measure "$vpid")
    if [ "$PROFILE" = 1 ] && [ "$clip" = h264 ]; then
        perf record -q -F 99 --call-graph dwarf,32768 -p "$vpid" -o "$WORK/motion.perf.data" \
            -- sleep "$SECS" 2> "$WORK/perf.log" || echo "race: perf record failed (see $WORK/perf.log)" >&2
    else
        sleep "$SECS"
    fi
    read -r t1 w1 < <(measure "$vpid")
    local pss; pss=$(pss_kib "$vpid")
    kill -INT "$vpid"; wait "$vpid" || true
    local dropped; dropped=$(grep -c '"DataDropped"' "$dir/events.jsonl" || true)
    echo "$(div $((t1 - t0)) $((HZ * n * SECS))) $(div $((w1 - w0)) $((n * SECS)) %.1f) $(div "$pss" $((1024 * n)) %.2f) $dropped"
}

# N `ffmpeg -threads 1 -i URL -f null -`; prints "cpu wakes pss_mib".
ffmpeg_decode() { # CLIP N
    local clip=$1 n=$2 fp=() i
    for i in $(seq "$n"); do
        ffmpeg -hide_banner -loglevel error -nostdin -threads 1 -rtsp_transport tcp -i "${URL[$clip]}" \
            -f null - 2> "$WORK/ffmpeg-$clip-$i.log" &
        fp+=($!); pids+=($!)
    done
    sleep 5
    read -r t0 w0 < <(measure "${fp[@]}")
    sleep "$SECS"
    read -r t1 w1 < <(measure "${fp[@]}")
    local pss=0; for i in "${fp[@]}"; do pss=$((pss + $(pss_kib "$i"))); done
    for i in "${fp[@]}"; do kill -INT "$i" 2>/dev/null || true; done
    for i in "${fp[@]}"; do wait "$i" || true; done
    echo "$(div $((t1 - t0)) $((HZ * n * SECS))) $(div $((w1 - w0)) $((n * SECS)) %.1f) $(div "$pss" $((1024 * n)) %.2f)"
}

echo "race: $(nproc) cores, windows of $SECS s, $(date -u +%FT%TZ), vigil $(git rev-parse --short HEAD)"
for clip in h264 h264-bframes h265; do
    [ "$MOTION_STREAMS" -gt 0 ] || break
    echo "race: motion path, $clip, $MOTION_STREAMS streams"
    read -r vc vw vp dropped < <(vigil_motion "$clip" "$MOTION_STREAMS")
    read -r fc fw fpss < <(ffmpeg_decode "$clip" "$MOTION_STREAMS")
    per_core=$(div 1 "$vc" %.0f)
    row "motion path, 1080p30 $clip ($MOTION_STREAMS in one service) vs \`ffmpeg -threads 1 -f null\` | $vc | $fc | **$(div "$vc" "$fc" %.2f)** | ≤ 0.8 | $vw, $fw | $vp, $fpss | $((per_core * $(nproc))) streams per $(nproc) cores; $dropped DataDropped events"
done

if [ "$SERVICE_STREAMS" -gt 0 ]; then
    echo "race: passthrough recording, $SERVICE_STREAMS pipelines (benches/service-scale.sh)"
    VIGIL=$VIGIL CONFIGURED=$SERVICE_STREAMS ACTIVATIONS=0 CALLS=20 bash benches/service-scale.sh "$SERVICE_STREAMS" "$SECS" \
        > "$WORK/service-scale.log" 2>&1 || echo "race: service-scale.sh failed (see $WORK/service-scale.log)" >&2
    v=$(sed -n 's/.*bench: vigil  (1 process.*CPU s per stream-second \([0-9.]*\).*wake-ups per stream-second \([0-9.]*\).*/\1 \2/p' "$WORK/service-scale.log")
    f=$(sed -n 's/.*bench: ffmpeg (.*CPU s per stream-second \([0-9.]*\).*wake-ups per stream-second \([0-9.]*\).*PSS \([0-9.]*\) MiB.*/\1 \2 \3/p' "$WORK/service-scale.log")
    vp=$(sed -n 's/.*= \([0-9.]*\) MiB per stream.*/\1/p' "$WORK/service-scale.log")
    read -r vc vw <<< "${v:-0 0}"; read -r fc fw fpss <<< "${f:-0 0 0}"
    row "passthrough recording ($SERVICE_STREAMS in one service) vs \`ffmpeg -c copy\` each | $vc | $fc | **$(div "$vc" "$fc" %.2f)** | ≤ 0.12 | $vw, $fw | ${vp:-?}, $fpss | see $WORK/service-scale.log"
fi

if [ "$BENCHES" = 1 ]; then
echo "race: HttpExtension frame (cargo bench --bench http_extension)"
cargo bench --quiet --bench http_extension > "$WORK/http_extension.log" 2>&1 || true
h=$(sed -n 's/.*(CPU, decode subtracted): \([0-9.]*\) ms per frame; .* = \([0-9.]*\)$/\1 \2/p' "$WORK/http_extension.log")
hv=$(sed -n 's/.*thread CPU (\([0-9.]*\) scale, \([0-9.]*\) encode.*/\1 \2/p' "$WORK/http_extension.log")
read -r hf hr <<< "${h:-0 0}"; read -r hs he <<< "${hv:-0 0}"
row "HttpExtension frame: 1080p → 416² pad → JPEG q90 (ms CPU) | $(awk -v a="$hs" -v b="$he" 'BEGIN{printf "%.2f", a + b}') ($hs scale, $he JPEG) | $hf | **$hr** | ≤ 1.0 | — | —"

echo "race: motion guest vs native (cargo bench --bench wasm_filters)"
cargo bench --quiet --bench wasm_filters > "$WORK/wasm_filters.log" 2>&1 || true
g=$(sed -n 's/^native \([0-9.]*\) µs per frame, guest \([0-9.]*\) µs per frame: guest\/native = \([0-9.]*\)/\2 \1 \3/p' "$WORK/wasm_filters.log")
read -r gg gn gr <<< "${g:-0 0 0}"
row "motion detector, guest vs native, 320×180 (µs per frame) | $gg | $gn (native) | **$gr** | ≤ 1.5 | — | —"
fi

echo "race: memory of a recording-only service"
dir=$WORK/passthrough; rm -rf "$dir"; mkdir -p "$dir/config" "$dir/out"
sed -e 's/"default": "PT10S"/"default": "PT1H"/' topologies/door-sensor-to-files.json > "$dir/config/topology.json"
cat > "$dir/config/p1.json" <<EOF
{"name": "p1", "properties": {"topologyName": "DoorSensorToFiles", "parameters": [
  {"name": "rtspUrl", "value": "${URL[h264]}"}, {"name": "outputDirectory", "value": "$(realpath "$dir")/out"}]}}
EOF
"$VIGIL" serve --config "$dir/config" --http 127.0.0.1:18791 --event-log "$dir/events.jsonl" 2> "$dir/log" &
vpid=$!; pids+=("$vpid")
sleep 6
curl -s -o /dev/null -X POST -H 'content-type: application/json' -d '{}' \
    http://127.0.0.1:18791/pipelines/p1/inputs/recordingTrigger || true
sleep 4
libs=$(python3 - "$vpid" <<'EOF'
import re, sys
pid = sys.argv[1]
total, media, names, path = 0, 0, set(), None
for line in open(f"/proc/{pid}/smaps"):
    head = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
    if head:
        path = head.group(1)
        continue
    if line.startswith("Pss:"):
        kib = int(line.split()[1])
        total += kib
        if path and ".so" in path and not re.search(r"/(libc|libm|libgcc_s|ld-linux[^/]*|libstdc\+\+)\.so", path):
            media += kib
            names.add(path)
ffmpeg = "yes" if any("libavcodec" in n for n in names) else "no"
print(f"{total / 1024:.1f} {media / 1024:.1f} {len(names)} {ffmpeg}")
EOF
)
kill -INT "$vpid"; wait "$vpid" || true
read -r ptotal pmedia nlibs ffmpeg_mapped <<< "$libs"
row "recording-only service, 1 pipeline: PSS (MiB) | $ptotal, of which $pmedia in $nlibs shared libraries beyond libc/libm/libgcc/libstdc++; libavcodec mapped: $ffmpeg_mapped | — | — | FFmpeg not mapped until a node decodes | — | —"

if [ "$PROFILE" = 1 ] && [ -s "$WORK/motion.perf.data" ]; then
    echo "race: profile of the H.264 motion path"
    perf report -i "$WORK/motion.perf.data" --no-children --sort dso,symbol --percent-limit 2 --stdio 2>/dev/null \
        | grep -E '^ +[0-9]' | head -15 > "$WORK/motion-top.txt" || true
    if command -v inferno-collapse-perf > /dev/null; then
        perf script -i "$WORK/motion.perf.data" 2>/dev/null | inferno-collapse-perf | inferno-flamegraph \
            --title "vigil motion path, 1080p30 H.264, $MOTION_STREAMS streams" > "$WORK/motion-path.svg" \
            && echo "race: flame graph in $WORK/motion-path.svg"
    else
        echo "race: no flame graph: inferno is not installed (cargo install inferno)"
    fi
fi

echo
echo "| path | vigil (CPU s per stream-s, or as named) | FFmpeg | ratio | target | wake-ups per stream-s (vigil, FFmpeg) | PSS per stream, MiB (vigil, FFmpeg) |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
if [ -s "$WORK/motion-top.txt" ]; then
    echo
    echo "Motion path, where the CPU goes (perf, shared object and function, ≥ 2 %):"
    sed 's/^/    /' "$WORK/motion-top.txt"
fi
