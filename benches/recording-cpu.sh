#!/usr/bin/env bash
# Recording CPU and memory per stream, passthrough, against FFmpeg doing the same work.
#
# usage: [VIGIL=binary] [VIGIL_ARGS="--read-interval-ms 100"] benches/recording-cpu.sh [STREAMS=4] [SECONDS=30]
#
# One GStreamer RTSP camera serves a 1080p30 H.264 clip at about 4 Mbit/s (all clients share
# the stream). Then, one after the other:
#   * STREAMS `vigil run` processes, each recording it with the gate held open (a trigger at
#     start, minimumActivationTime 1 h) and a 10 s pre-roll (activationSignalOffset -PT10S);
#   * STREAMS `ffmpeg -rtsp_transport tcp -i URL -c copy -f mp4` processes (what Frigate does).
# Reports CPU seconds per stream-second (utime+stime from /proc), the ratio vigil/ffmpeg,
# context switches (wake-ups) per stream-second of every thread, and memory per process:
# PSS (shared libraries and the binary's pages divided among the processes that map them) and
# RSS (counting them whole in every process). Needs scripts/setup.sh; builds vigil in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS=${1:-4}
SECS=${2:-30}
WORK=target/bench-recording
mkdir -p "$WORK"
# VIGIL=path/to/vigil compares another build (say, the previous commit's) against the same run.
if [ -z "${VIGIL:-}" ]; then
    cargo build --release --quiet
    VIGIL=target/release/vigil
fi
CLIP=$WORK/1080p-4mbit.mp4
if [ ! -s "$CLIP" ]; then
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=s=1920x1080:r=30:d=20,noise=alls=8:allf=t" \
        -c:v libx264 -preset veryfast -b:v 4M -maxrate 4M -bufsize 8M -g 30 -keyint_min 30 -sc_threshold 0 \
        -bf 0 -pix_fmt yuv420p "$CLIP"
fi
PORT=18654
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
/usr/bin/python3 scripts/peers/rtsp-camera.py "$CLIP" --port $PORT --mount /cam > "$WORK/camera.log" 2>&1 &
pids+=($!)
sleep 2
URL=rtsp://127.0.0.1:$PORT/cam

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
# VALUE / DIVISOR, printed with FORMAT.
ratio() { awk -v x="$1" -v d="$2" -v f="$3" 'BEGIN{printf f, x/d}'; }
# Context switches of every live thread of a process (each one is a wake-up).
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}'; }

TOPO=$WORK/held-open.json
sed -e 's/"default": "PT10S"/"default": "PT1H"/' -e 's/"default": "PT60S"/"default": "PT1H"/' \
    -e 's/"activationSignalOffset": "-PT5S"/"activationSignalOffset": "-PT10S"/' \
    topologies/door-sensor-to-files.json > "$TOPO"

echo "bench: $STREAMS streams, ${SECS} s each run, $(nproc) cores"
# vigil
vpids=()
for i in $(seq "$STREAMS"); do
    rm -rf "$WORK/v$i"; mkdir -p "$WORK/v$i"
    "$VIGIL" run "$TOPO" --pipeline-name "s$i" --set "rtspUrl=$URL" --set "outputDirectory=$WORK/v$i" \
        --http "127.0.0.1:$((19000 + i))" --event-log "$WORK/v$i/events.jsonl" ${VIGIL_ARGS:-} 2> "$WORK/v$i/log" &
    vpids+=($!); pids+=($!)
done
sleep 3
for i in $(seq "$STREAMS"); do
    curl -s -o /dev/null -X POST -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$((19000 + i))/pipelines/s$i/inputs/recordingTrigger"
done
sleep 12   # the pre-roll buffers fill (10 s) before measuring
start=0; sys0=0; sw0=0
for p in "${vpids[@]}"; do
    start=$((start + $(cpu_ticks "$p"))); sys0=$((sys0 + $(sys_ticks "$p"))); sw0=$((sw0 + $(switches "$p")))
done
sleep "$SECS"
end=0; rss=0; pss=0; sys1=0; sw1=0
for p in "${vpids[@]}"; do
    end=$((end + $(cpu_ticks "$p"))); sys1=$((sys1 + $(sys_ticks "$p"))); sw1=$((sw1 + $(switches "$p")))
    rss=$((rss + $(awk '/VmRSS/ {print $2}' "/proc/$p/status")))
    pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
done
vigil_ticks=$((end - start))
vigil_wakes=$(ratio $((sw1 - sw0)) $((STREAMS * SECS)) "%.0f")
for p in "${vpids[@]}"; do kill -INT "$p"; done
for p in "${vpids[@]}"; do wait "$p" || true; done
vigil_cpu=$(ratio "$vigil_ticks" $((HZ * STREAMS * SECS)) "%.5f")
rss_mib=$(ratio "$rss" $((1024 * STREAMS)) "%.1f")
pss_mib=$(ratio "$pss" $((1024 * STREAMS)) "%.1f")

# ffmpeg
fpids=()
for i in $(seq "$STREAMS"); do
    ffmpeg -hide_banner -loglevel error -nostdin -y -rtsp_transport tcp -i "$URL" -c copy -f mp4 "$WORK/f$i.mp4" &
    fpids+=($!); pids+=($!)
done
sleep 5
start=0; sw0=0; for p in "${fpids[@]}"; do start=$((start + $(cpu_ticks "$p"))); sw0=$((sw0 + $(switches "$p"))); done
sleep "$SECS"
end=0; frss=0; fpss=0; sw1=0
for p in "${fpids[@]}"; do
    end=$((end + $(cpu_ticks "$p"))); sw1=$((sw1 + $(switches "$p")))
    frss=$((frss + $(awk '/VmRSS/ {print $2}' "/proc/$p/status")))
    fpss=$((fpss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
done
for p in "${fpids[@]}"; do kill -INT "$p"; done
for p in "${fpids[@]}"; do wait "$p" || true; done
ffmpeg_cpu=$(ratio $((end - start)) $((HZ * STREAMS * SECS)) "%.5f")
frss_mib=$(ratio "$frss" $((1024 * STREAMS)) "%.1f")
fpss_mib=$(ratio "$fpss" $((1024 * STREAMS)) "%.1f")
ffmpeg_wakes=$(ratio $((sw1 - sw0)) $((STREAMS * SECS)) "%.0f")

echo "bench: vigil  CPU s per stream-second: $vigil_cpu ($((sys1 - sys0)) of $vigil_ticks ticks in the kernel)   wake-ups per stream-second: $vigil_wakes   memory per stream: PSS $pss_mib MiB, RSS $rss_mib MiB (10 s pre-roll)"
echo "bench: ffmpeg CPU s per stream-second: $ffmpeg_cpu   wake-ups per stream-second: $ffmpeg_wakes   memory per stream: PSS $fpss_mib MiB, RSS $frss_mib MiB"
awk -v v="$vigil_cpu" -v f="$ffmpeg_cpu" 'BEGIN{ if (f > 0) printf "bench: ratio vigil/ffmpeg = %.2f\n", v/f }'
ls -la "$WORK"/v1/*.mp4 | head -3
