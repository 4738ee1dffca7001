#!/usr/bin/env bash
# The main job, end to end on one machine (Debian, as root): set up, build vigil, serve a
# generated clip as a looping RTSP camera (GStreamer), run AVA's evr-hubMessage-file-sink
# topology unchanged (our door-sensor-to-files.json where AVA's corpus is not beside this
# checkout), fire a door-sensor trigger over MQTT (Mosquitto), and show the clip it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --demo
cargo build --quiet
VIGIL=target/debug/vigil
WORK=target/demo
mkdir -p "$WORK"
scripts/peers/make-test-clips.sh "$WORK/clips" >/dev/null

CAM_PORT=${CAM_PORT:-8554}
MQTT_PORT=${MQTT_PORT:-18830}
HTTP=${HTTP:-127.0.0.1:7878}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

/usr/bin/python3 scripts/peers/rtsp-camera.py "$WORK/clips/camera-h264.mp4" --port "$CAM_PORT" \
    --mount /camera --user vigil --password vigil > "$WORK/camera.log" 2>&1 &
pids+=($!)
mosquitto -p "$MQTT_PORT" > "$WORK/mosquitto.log" 2>&1 &
pids+=($!)
sleep 1

AVA=../shared/ava-topologies/live/evr-hubMessage-file-sink/topology.json
if [ -f "$AVA" ]; then
    TOPOLOGY=$AVA        # AVA's own file, unchanged: it writes to /var/media
    PIPELINE=Sample-Pipeline-1
    SETS=(--set "rtspUrl=rtsp://127.0.0.1:$CAM_PORT/camera" --set rtspUserName=vigil --set rtspPassword=vigil)
    OUT=/var/media
else
    TOPOLOGY=topologies/door-sensor-to-files.json
    PIPELINE=demo
    OUT=$WORK/recordings
    SETS=(--set "rtspUrl=rtsp://127.0.0.1:$CAM_PORT/camera" --set "outputDirectory=$OUT")
fi
EVENTS=$WORK/events.jsonl
rm -f "$EVENTS"
echo "demo: running $TOPOLOGY as pipeline $PIPELINE"
"$VIGIL" run "$TOPOLOGY" --pipeline-name "$PIPELINE" "${SETS[@]}" --mqtt "127.0.0.1:$MQTT_PORT" \
    --http "$HTTP" --event-log "$EVENTS" 2> "$WORK/vigil.log" &
VIGIL_PID=$!
pids+=($VIGIL_PID)

wait_for() {  # wait_for EVENT SECONDS
    for _ in $(seq $(( $2 * 10 ))); do
        grep -q "\"eventType\":\"[^\"]*\.$1\"" "$EVENTS" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo: no $1 event after $2 s; see $WORK/vigil.log" >&2
    exit 1
}
wait_for MediaSessionEstablished 20
echo "demo: camera connected; the door opens in 3 s"
sleep 3
mosquitto_pub -p "$MQTT_PORT" -t "vigil/$PIPELINE/inputs/recordingTrigger" \
    -m '{"body": {"door": "front", "state": "open"}}'
echo "demo: trigger sent on vigil/$PIPELINE/inputs/recordingTrigger; recording..."
wait_for RecordingAvailable 40
kill -INT "$VIGIL_PID"; wait "$VIGIL_PID" || true

CLIP=$(grep RecordingAvailable "$EVENTS" | tail -1 | sed 's/.*"outputLocation":"\([^"]*\)".*/\1/')
echo "demo: events written to $EVENTS:"
sed 's/.*"eventType":"Microsoft.VideoAnalyzer.\([^"]*\)".*"eventTime":"\([^"]*\)".*/  \2  \1/' "$EVENTS"
echo "demo: clip $CLIP"
ffprobe -v error -count_frames -show_entries stream=codec_name,width,height,nb_read_frames,duration \
    -of default=noprint_wrappers=1 "$CLIP" | sed 's/^/  /'
