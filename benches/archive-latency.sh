#!/bin/bash
# Archive latencies, live, on loopback: one GStreamer camera (the generated 640x360 test clip),
# s3s-fs as the object store, `vigil run` on topologies/door-sensor-to-video.json with --store.
#   1. gate opening -> first fragment playable through the live HLS playlist;
#   2. the live edge: how far behind the camera (wall clock) the last listed fragment ends,
#      sampled every 100 ms for 8 s while the clip records;
#   3. end of a segment (RecordingStopped) -> its upload complete (SegmentUploaded).
# usage: bash benches/archive-latency.sh       (needs scripts/setup.sh done, s3s-fs installed)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=target/bench-archive
rm -rf "$WORK"; mkdir -p "$WORK"
cargo build --quiet --bin vigil
SIZE=640x360 bash scripts/peers/make-test-clips.sh target/test-clips >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CAM=$(free_port); HTTP=$(free_port); S3=$(free_port)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
/usr/bin/python3 scripts/peers/rtsp-camera.py --file target/test-clips/camera-h264.mp4 --port "$CAM" \
  --mount /camera --user vigil --password vigil >"$WORK/camera.log" 2>&1 &
pids+=($!)
S3FS=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")
mkdir -p "$WORK/s3"
"$S3FS" --host 127.0.0.1 --port "$S3" --access-key AKIATEST --secret-key secrettest "$WORK/s3" >/dev/null 2>&1 &
pids+=($!)
sleep 1
AWS_ENDPOINT_URL=http://127.0.0.1:$S3 AWS_ACCESS_KEY_ID=AKIATEST AWS_SECRET_ACCESS_KEY=secrettest \
  target/debug/vigil run topologies/door-sensor-to-video.json --pipeline-name bench \
  --set rtspUrl=rtsp://127.0.0.1:$CAM/camera --set minActivation=PT10S --set maxActivation=PT10S \
  --archive "$WORK/archive" --store s3://vigil/bench --http 127.0.0.1:$HTTP \
  --event-log "$WORK/events.jsonl" 2>"$WORK/vigil.log" &
pids+=($!)
sleep 6
python3 - "$HTTP" "$WORK/events.jsonl" <<'EOF'
import json, sys, time, urllib.request
from datetime import datetime, timezone
http, log = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{http}"
def manifest():
    try:
        return urllib.request.urlopen(f"{base}/api/videos/frontdoor/manifest.m3u8", timeout=2).read().decode()
    except Exception:
        return ""
def live_edge(text):
    """UTC end of the last listed fragment."""
    t, end = None, None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            t = datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00")).timestamp()
        elif line.startswith("#EXTINF:") and t is not None:
            t += float(line[8:].rstrip(","))
            end = t
    return end
def seen(kind):
    try:
        return any(json.loads(l)["properties"]["eventType"].endswith(kind) for l in open(log))
    except Exception:
        return False
req = urllib.request.Request(f"{base}/pipelines/bench/inputs/recordingTrigger", data=b"{}", method="POST", headers={"content-type": "application/json"})
t0 = time.time()
urllib.request.urlopen(req)
while "#EXTINF" not in manifest():
    time.sleep(0.01)
print(f"archive-latency: gate opening -> first fragment in the live playlist: {(time.time() - t0) * 1000:.0f} ms")
lags = []
end = time.time() + 8
while time.time() < end:
    edge = live_edge(manifest())
    if edge:
        lags.append(time.time() - edge)
    time.sleep(0.1)
# The first samples catch the pre-roll being written out (5 s of it, fragment by fragment).
steady = sorted(lags[5:])
print(f"archive-latency: live edge behind the wall clock while recording: median {steady[len(steady)//2]*1000:.0f} ms, "
      f"max {steady[-1]*1000:.0f} ms over {len(steady)} samples (fragments are 1 s GOPs); "
      f"while the pre-roll was written: up to {max(lags[:5])*1000:.0f} ms")
while not seen("RecordingStopped"):
    time.sleep(0.01)
t1 = time.time()
while not seen("SegmentUploaded"):
    time.sleep(0.01)
print(f"archive-latency: segment end (RecordingStopped) -> upload complete: {(time.time() - t1) * 1000:.0f} ms")
EOF
