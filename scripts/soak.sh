#!/usr/bin/env bash
# The soak of issue #13: PIPELINES live pipelines in ONE `vigil serve` for MINUTES against a
# looping camera, with a fault every FAULT_EVERY_S seconds. Reports RSS growth after the warm-up
# (target < 5 %), open fds and threads (flat), files recorded and unplayable, frames lost outside
# the faults (checked against the camera's frame counter), the events each fault produced and
# whether the process survived; ends with a block to paste into the README.
#
# usage: [VIGIL=binary] scripts/soak.sh [PIPELINES=16] [MINUTES=60] [FAULT_EVERY_S=180]
#   env: CLIP_S=60 (clip length: the gate's maximumActivationTime)  TRIGGER_S=3  SAMPLE_S=10
#        GRACE_S=1  CAMERA_DOWN_S=5  BROKER_DOWN_S=5  PAUSE_S=2 (a deactivated pipeline's rest)
#        MQTT=auto|0|1 (a Mosquitto broker, and its restart as a fault; auto = when installed)
#        KEEP_FILES=1 (keep every file; by default a checked file is deleted unless it shows a
#        problem, so disk use stays at about a clip per pipeline)  DECODE_EVERY=8 (decode 1 file
#        in N with ffmpeg; 0: never)  VIGIL_ARGS="--read-interval-ms 100"  WORK=target/soak-run
#
# Set-up (as benches/service-scale.sh): one GStreamer RTSP camera (scripts/peers/rtsp-camera.py)
# loops a 20 s 640x360 30 fps H.264 clip (~0.5 Mbit/s, a key frame every 30 frames, no B-frames,
# exact timestamps) on rtsp://127.0.0.1:PORT/cam. Each pipeline has credentials of its own
# (rtspUserName u1, u2, ...; the camera asks for none, so they are never sent), so the service
# cannot share sessions: PIPELINES sessions, as with PIPELINES cameras. One topology
# (topologies/door-sensor-to-files.json with a millisecond start time in its file names),
# minimumActivationTime 10 s, maximumActivationTime CLIP_S, and a trigger to every pipeline every
# TRIGGER_S over HTTP: each pipeline writes a new file every CLIP_S seconds, consecutive files
# overlapping by the 5 s pre-roll. Everything goes through AVA's methods over HTTP.
# Faults, in turn: the camera killed (SIGKILL) and started again CAMERA_DOWN_S later; malformed and
# oversized calls (truncated JSON, 3 MiB payload, 100k-deep nesting, unknown method, invalid
# pipeline, wrong content type, non-JSON and 100 KiB triggers, a short body, a garbage request,
# and over MQTT a truncated and a 3 MiB method payload); one pipeline deactivated and activated
# again (each time the next one); the MQTT broker killed and restarted (with MQTT on).
# Every 10 s: VmRSS, PSS (smaps_rollup), RssAnon, open fds, threads, CPU ticks (samples.csv).
# Warm-up: the first 5 minutes, or 10 % of the run if that is shorter.
# Every closed file (RecordingAvailable) is checked at once (scripts/soak.py: ffprobe packets,
# prft boxes): its timeline in UTC, holes, steps back, and every frame against the clip frame the
# camera sent at that time (frame sizes identify the clip's frames). Media missing from a
# pipeline's timeline (the union of its files) counts as lost unless it meets a fault, which may
# cost its duration + GRACE_S + one GOP.
# Exits non-zero only when something fails to run (or vigil dies), never because a target is
# missed. Needs scripts/setup.sh (GStreamer, ffmpeg, Mosquitto). Leaves its work in WORK
# (deleted at each start): report.txt, summary.md, samples.csv, faults.json, files.json, events,
# vigil's log, the files that showed a problem.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PIPELINES=${1:-16}
MINUTES=${2:-60}
FAULT_EVERY_S=${3:-180}
WORK=${WORK:-target/soak-run}
case "$(basename "$WORK")" in
    *soak*) ;;
    *) echo "soak: WORK must name a folder of its own (with 'soak' in its name): $WORK" >&2; exit 2 ;;
esac
for x in "$PIPELINES" "$MINUTES" "$FAULT_EVERY_S"; do
    [[ "$x" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "usage: [VIGIL=binary] scripts/soak.sh [PIPELINES=16] [MINUTES=60] [FAULT_EVERY_S=180]" >&2; exit 2; }
done
for tool in ffmpeg ffprobe /usr/bin/python3 python3; do
    command -v "$tool" >/dev/null || { echo "soak: $tool not found: run scripts/setup.sh" >&2; exit 1; }
done
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null \
    || { echo "soak: GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) is missing: run scripts/setup.sh" >&2; exit 1; }

if [ -z "${VIGIL:-}" ]; then
    # A target folder of its own: another build may be using target/.
    CARGO_TARGET_DIR=/work/target-soak cargo build --release --quiet --bin vigil
    VIGIL=/work/target-soak/release/vigil
fi
VIGIL=$(realpath "$VIGIL")
[ -x "$VIGIL" ] || { echo "soak: $VIGIL is not an executable" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
CLIP=$WORK/camera-360p.mp4
ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i "testsrc2=s=640x360:r=30:d=20" \
    -c:v libx264 -preset veryfast -profile:v main -b:v 500k -maxrate 600k -bufsize 1M \
    -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 -x264-params open-gop=0 -pix_fmt yuv420p \
    -an -map_metadata -1 -movflags +faststart "$CLIP"

echo "soak: $PIPELINES pipelines, $MINUTES min, a fault every $FAULT_EVERY_S s; vigil $VIGIL; work in $WORK"
export VIGIL REPO WORK CLIP PIPELINES MINUTES FAULT_EVERY_S
# The driver writes its output to WORK/soak.log too. A first Ctrl-C (or SIGTERM) ends the run
# early and still reports; a second one aborts. The camera, broker and vigil run in sessions of
# their own and are stopped by the driver.
python3 scripts/soak.py 2>&1 &
driver=$!
trap 'kill -TERM $driver 2>/dev/null || true' INT TERM
rc=0
while true; do
    wait "$driver" && rc=0 || rc=$?
    kill -0 "$driver" 2>/dev/null || break   # wait returns early when a trapped signal arrives
done
exit "$rc"
