#!/usr/bin/env bash
# Many pipelines in ONE `vigil serve` process against as many FFmpeg processes (issue #11).
#
# usage: [VIGIL=binary] [VIGIL_ARGS="--read-interval-ms 100"] [ACTIVATIONS=10] [CALLS=200]
#        [CONFIGURED=1000] benches/service-scale.sh [STREAMS=50] [SECONDS=30]
#
# One GStreamer RTSP camera (scripts/peers/rtsp-camera.py) serves a 1080p30 H.264 clip at about
# 4 Mbit/s on one URL, rtsp://127.0.0.1:PORT/cam; every client (pipeline or ffmpeg) opens its own
# RTSP session and TCP connection to it (counted in the report). The service may one day share
# one camera session among pipelines whose RtspSource has the same URL and credentials, so each
# pipeline gets credentials of its own (rtspUserName u1, u2, ...; the camera asks for none, so
# they are never sent): no two RtspSources are alike and nothing can be shared.
# Why not a URL of its own per client: the camera has one mount, and GstRtspServer does accept
# rtsp://127.0.0.1:PORT/cam?s=ID (it matches the mount on the path), but its media factory keys
# shared medias by the whole URL, query included, so every distinct URL gets a media of its own,
# and with more than one media the peer's RTP timestamps are jittered and step back by up to
# 0.8 s at key frames (measured with vigil and ffmpeg alike), which would corrupt the recordings
# being compared. One camera process per stream does not fit on 2 cores. DISTINCT=url uses the
# ?s=ID URLs anyway (for a build that shares sessions), with that caveat.
# Then, one after the other:
#   * one `vigil serve --data-dir` holding one topology (topologies/door-sensor-to-files.json with
#     the gate held open: minimumActivationTime 1 h, a trigger at start; 10 s pre-roll) and
#     STREAMS live pipelines, each with its own output directory, set, activated and triggered
#     through AVA's methods over HTTP (POST /api/methods/..., POST /pipelines/P/inputs/I);
#   * STREAMS `ffmpeg -rtsp_transport tcp -i URL -c copy -f mp4` processes (what Frigate does).
#   * unless FLOOR=0, the floor: benches/relay-floor.py, one thread holding STREAMS sessions that
#     drains them every 0.5 s and writes their bytes once a second (fdatasync every 5 s; FLOOR_ARGS
#     are passed on), parsing nothing: what receiving and writing the bytes costs by itself.
# Over SECONDS of recording each, after the pre-roll has filled:
#   * CPU seconds (utime+stime from /proc/PID/stat) per stream-second, and vigil/ffmpeg;
#   * memory per stream: PSS (/proc/PID/smaps_rollup) / STREAMS, also vigil's marginal cost
#     (PSS with STREAMS pipelines minus the idle service's, / STREAMS) and its growth;
#   * wake-ups (voluntary + involuntary context switches of every thread) per stream-second;
#   * the camera's CPU and the whole machine's busy share during each window (if the machine is
#     saturated, the figures say so rather than hiding it);
#   * every file probed afterwards: frames, and frames missing from its timeline (duration x 30 -
#     frames; the clip's timestamps are exact, so any loss or stall shows).
# With vigil's STREAMS pipelines still recording:
#   * activation -> first frame, ACTIVATIONS times on a fresh pipeline: livePipelineActivate is
#     sent at t0; reported are its answer, MediaSessionEstablished (the camera answered PLAY; its
#     eventTime is the wall clock) and the first key frame at the gate: a trigger sent 1.5 s later
#     opens the gate with 10 s of pre-roll, so the clip starts at the first key frame the gate
#     ever received, and RecordingStarted's eventTime is that frame's media time, which is its
#     arrival time on the wall clock (the session's clock is anchored on its first frame's
#     arrival, and the camera sends in real time). No event marks a non-key frame, and a clip can
#     only start at a key frame, so this includes the wait for the camera's next key frame (GOP
#     1 s: 0.5 s on average);
#   * control-call latency with CONFIGURED live pipelines (the active ones plus Inactive ones up
#     to the default limit of 1000): CALLS calls each of livePipelineGet (random names),
#     livePipelineList and livePipelineSet of an existing Inactive pipeline (same document, 200),
#     one after the other on one kept-alive connection from python's http.client; p50 and p99.
# Targets (issue #11): CPU <= 0.12x FFmpeg's; PSS per stream <= 2 MiB plus the pre-roll it holds
# (10 s offset + 1 s evaluation window + on average half a 1 s GOP = 11.5 s of the stream).
# Exits non-zero only when something fails to run, never because a target is missed.
# Needs scripts/setup.sh (GStreamer, ffmpeg); builds vigil in release mode. Leaves the recordings
# in target/bench-service (about 11 GB at 200 streams; each run deletes the last one's). On a
# shared machine the ratio is only meaningful when nothing else loads it: see "not vigil or the
# camera" in the report.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS=${1:-50}
SECS=${2:-30}
ACTIVATIONS=${ACTIVATIONS:-10}
CALLS=${CALLS:-200}
CONFIGURED=${CONFIGURED:-1000}
# What the gate's buffer holds: the 10 s pre-roll, a GOP and a read burst (11.5 s), plus the 5 s
# it keeps for events stamped in the past (EVENT_LATENCY_SLACK: late inference answers, triggers
# carrying their own time).
PREROLL_S=16.5
DISTINCT=${DISTINCT:-credentials}
WORK=target/bench-service
mkdir -p "$WORK"
if [ $((STREAMS + ACTIVATIONS)) -gt "$CONFIGURED" ]; then
    echo "bench: STREAMS + ACTIVATIONS must not exceed CONFIGURED ($CONFIGURED)" >&2; exit 2
fi
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CAM=$(free_port); HTTP=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
/usr/bin/python3 scripts/peers/rtsp-camera.py "$CLIP" --port "$CAM" --mount /cam > "$WORK/camera.log" 2>&1 &
CAMPID=$!; pids+=($CAMPID)
for _ in $(seq 150); do grep -q "^ready" "$WORK/camera.log" && break; sleep 0.2; done
grep -q '^ready' "$WORK/camera.log" || { echo "bench: the camera did not start:" >&2; cat "$WORK/camera.log" >&2; exit 1; }
URL=rtsp://127.0.0.1:$CAM/cam

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
# VALUE / DIVISOR, printed with FORMAT.
ratio() { awk -v x="$1" -v d="$2" -v f="$3" 'BEGIN{printf f, x/d}'; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
field_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/$3" 2>/dev/null || echo 0; }
# Established TCP connections of process PID to the camera.
conns() { ss -tnpH state established "( dport = :$CAM )" 2>/dev/null | grep -c "pid=$1," || true; }
threads() { ls "/proc/$1/task" 2>/dev/null | wc -l; }
# Busy and total jiffies of the whole machine (busy = all but idle and iowait).
machine() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
# A snapshot of the processes PID...: "ticks system-ticks switches machine-busy machine-total time
# camera-ticks". Ticks are user + system CPU; switches are the context switches (wake-ups) of
# every thread. Each file list is read by one process in one pass, so that 200 processes are read
# within milliseconds of each other (a loop of awk per process takes seconds on a loaded machine,
# and each process's share of those seconds would be counted in its window).
snapshot() {
    local stat=() status=() p cpu sw
    for p in "$@"; do stat+=("/proc/$p/stat"); status+=(/proc/"$p"/task/*/status); done
    cpu=$(cat "${stat[@]}" 2>/dev/null | awk '{u += $14 + $15; s += $15} END {print u + 0, s + 0}')
    sw=$(cat "${status[@]}" 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}')
    echo "$cpu $sw $(machine) $(date +%s.%N) $(cpu_ticks "$CAMPID")"
}
mib() { ratio "$1" 1024 "%.1f"; }

BYTES_PER_S=$(ffprobe -v error -show_entries format=bit_rate -of csv=p=0 "$CLIP" | awk '{print $1 / 8}')
PREROLL_MIB=$(awk -v b="$BYTES_PER_S" -v s="$PREROLL_S" 'BEGIN{printf "%.1f", b * s / 1048576}')

# The control API's client: python's http.client on one kept-alive connection.
cat > "$WORK/client.py" <<'PY'
import http.client, json, math, os, random, sys, time
from datetime import datetime

PORT = int(os.environ["HTTP"])
conn = None

def call(path, body):
    """POST body (JSON) to path: (HTTP status, parsed answer, seconds)."""
    global conn
    data = json.dumps(body).encode()
    for attempt in (0, 1):
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        try:
            t0 = time.perf_counter()
            conn.request("POST", path, data, {"content-type": "application/json"})
            r = conn.getresponse()
            raw = r.read()
            dt = time.perf_counter() - t0
            break
        except (http.client.HTTPException, ConnectionError):
            conn.close(); conn = None
            if attempt:
                raise
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = raw.decode(errors="replace")
    return r.status, answer, dt, len(raw)

def method(name, payload, ok=(200, 201)):
    status, answer, dt, size = call("/api/methods/" + name, payload)
    if status not in ok:
        sys.exit(f"bench: {name} {payload.get('name', '')}: {status} {answer}")
    return answer["payload"], dt, size

def pipeline_doc(name, i):
    """Live pipeline `name`: its own output directory, and credentials (or URL) of its own."""
    url = os.environ["URL"]
    if os.environ["DISTINCT"] == "url":
        url += f"?s={i}"
    return {"@apiVersion": "1.1", "name": name, "properties": {
        "topologyName": "DoorSensorToFiles",
        "parameters": [{"name": "rtspUrl", "value": url},
                       {"name": "rtspUserName", "value": f"u{i}"},
                       {"name": "outputDirectory", "value": f"{os.environ['OUT']}/{name}"}]}}

def pct(xs, p):
    s = sorted(xs)
    return s[max(0, math.ceil(p * len(s)) - 1)]

def ms(x):
    return f"{x * 1000:.1f}"

def summary(label, xs):
    return f"{label}: p50 {ms(pct(xs, .5))} ms, p99 {ms(pct(xs, .99))} ms, max {ms(max(xs))} ms ({len(xs)} calls)"

class Events:
    """The event log, read as it grows: {(pipeline, eventType suffix): [eventTime seconds]}."""
    def __init__(self, path):
        self.path, self.offset, self.seen, self.rest = path, 0, {}, b""
    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset); chunk = f.read()
        except FileNotFoundError:
            return
        self.offset += len(chunk)
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            p = e["properties"]
            parts = p["subject"].split("/")
            kind = p["eventType"].rsplit(".", 1)[-1]
            t = datetime.fromisoformat(p["eventTime"].replace("Z", "+00:00")).timestamp()
            self.seen.setdefault((parts[2] if len(parts) > 2 else "", kind), []).append(t)
    def first(self, pipeline, kind):
        v = self.seen.get((pipeline, kind))
        return v[0] if v else None
    def wait(self, pipelines, kind, timeout):
        deadline = time.time() + timeout
        while True:
            self.poll()
            missing = [p for p in pipelines if self.first(p, kind) is None]
            if not missing:
                return
            if time.time() > deadline:
                sys.exit(f"bench: no {kind} after {timeout} s for {len(missing)} pipelines: {missing[:5]}")
            time.sleep(0.05)

def trigger(name):
    status, answer, _, _ = call(f"/pipelines/{name}/inputs/recordingTrigger", {})
    if status != 202:
        sys.exit(f"bench: trigger {name}: {status} {answer}")

def setup(n):
    """The topology, then n live pipelines s1..sn set and activated; they record once triggered."""
    with open(os.environ["TOPO"]) as f:
        method("pipelineTopologySet", json.load(f))
    names = [f"s{i}" for i in range(1, n + 1)]
    sets, acts = [], []
    for i, name in enumerate(names, 1):
        sets.append(method("livePipelineSet", pipeline_doc(name, i), ok=(201,))[1])
    for name in names:
        acts.append(method("livePipelineActivate", {"@apiVersion": "1.1", "name": name})[1])
    ev = Events(os.environ["EVENTS"])
    t0 = time.time()
    ev.wait(names, "MediaSessionEstablished", 60)
    sessions = time.time() - t0
    time.sleep(2)
    for name in names:
        trigger(name)
    ev.wait(names, "RecordingStarted", 60)
    print(f"bench: set up {n} pipelines: {summary('livePipelineSet (new)', sets)}; "
          f"{summary('livePipelineActivate', acts)}; every camera session up {sessions:.1f} s after the last activation")

def activation(k):
    """k fresh pipelines a1..ak: livePipelineActivate -> answer, session, first key frame."""
    ev = Events(os.environ["EVENTS"])
    answers, sessions, frames = [], [], []
    for j in range(1, k + 1):
        name = f"a{j}"
        method("livePipelineSet", pipeline_doc(name, f"a{j}"), ok=(201,))
        time.sleep(0.5)
        t0 = time.time()
        method("livePipelineActivate", {"@apiVersion": "1.1", "name": name})
        answers.append(time.time() - t0)
        ev.wait([name], "MediaSessionEstablished", 30)
        sessions.append(ev.first(name, "MediaSessionEstablished") - t0)
        time.sleep(1.5)
        trigger(name)
        ev.wait([name], "RecordingStarted", 30)
        frames.append(ev.first(name, "RecordingStarted") - t0)
    med = lambda xs: ms(sorted(xs)[len(xs) // 2] if len(xs) % 2 else sum(sorted(xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2)
    print(f"bench: activation -> answer (200): median {med(answers)} ms, max {ms(max(answers))} ms; "
          f"-> MediaSessionEstablished: median {med(sessions)} ms, max {ms(max(sessions))} ms; "
          f"-> first key frame at the gate (RecordingStarted's media time): median {med(frames)} ms, "
          f"range {ms(min(frames))}-{ms(max(frames))} ms ({k} fresh pipelines)")
    print("bench:   first key frame per activation (ms): " + " ".join(ms(x) for x in frames))

def latency(total, calls):
    """Inactive pipelines up to `total` configured, then Get, List and Set timed `calls` times each."""
    have = [p["name"] for p in method("livePipelineList", {"@apiVersion": "1.1"})[0]["value"]]
    fill, sets = [], []
    i = 0
    while len(have) + len(fill) < total:
        i += 1
        name = f"idle{i}"
        sets.append(method("livePipelineSet", pipeline_doc(name, name), ok=(201,))[1])
        fill.append(name)
    names = have + fill
    listed = method("livePipelineList", {"@apiVersion": "1.1"})[0]["value"]
    if len(listed) != total:
        sys.exit(f"bench: {len(listed)} pipelines listed, {total} expected")
    rng = random.Random(11)
    get, lst, upd = [], [], []
    size = 0
    for _ in range(calls):
        get.append(method("livePipelineGet", {"@apiVersion": "1.1", "name": rng.choice(names)})[1])
    for _ in range(calls):
        _, dt, size = method("livePipelineList", {"@apiVersion": "1.1"})
        lst.append(dt)
    target = fill[0] if fill else None
    for _ in range(calls if target else 0):
        _, dt, _ = method("livePipelineSet", pipeline_doc(target, target), ok=(200,))
        upd.append(dt)
    if sets:
        print(f"bench: filled to {total} live pipelines ({len(fill)} Inactive): {summary('livePipelineSet (new)', sets)}")
    print(f"bench: control calls with {total} live pipelines configured ({total - len(fill)} Active):")
    print(f"bench:   {summary('livePipelineGet', get)}")
    print(f"bench:   {summary('livePipelineList', lst)}, answer {size / 1e6:.2f} MB")
    if upd:
        print(f"bench:   {summary('livePipelineSet (existing, Inactive)', upd)}")

def events_summary():
    """Counts of events by type, and every event that reports a problem."""
    counts, problems = {}, []
    with open(os.environ["EVENTS"]) as f:
        for line in f:
            e = json.loads(line)
            p = e["properties"]
            kind = p["eventType"].rsplit(".", 1)[-1]
            counts[kind] = counts.get(kind, 0) + 1
            if ".Diagnostics." in p["eventType"] and kind != "MediaSessionEstablished":
                problems.append(f"{p['eventTime']} {p['subject']} {kind} {json.dumps(e['body'])[:200]}")
    print("bench: events: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for line in problems[:20]:
        print("bench:   problem event: " + line)
    if len(problems) > 20:
        print(f"bench:   ... {len(problems) - 20} more problem events")

def probe(paths):
    """Frames of each file, frames missing from its timeline (duration * 30 - frames), and
    steps back of the timeline (a frame stamped before the one before it)."""
    import subprocess
    frames, missing, backs, bad = [], [], [], []
    for path in paths:
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "packet=pts:stream=duration:format=duration", "-of", "json", path],
                             capture_output=True, text=True).stdout
        try:
            j = json.loads(out)
            pts = [int(p["pts"]) for p in j["packets"] if "pts" in p]
            d = float(j["streams"][0].get("duration") or j["format"]["duration"])
        except (ValueError, KeyError, IndexError):
            bad.append(path); continue
        frames.append(len(pts)); missing.append(round(d * 30 - len(pts)))
        backs.append(sum(b < a for a, b in zip(pts, pts[1:])))
    if not frames:
        print(f"no readable file of {len(paths)}"); return
    text = (f"{len(frames)} files, {min(frames)}-{max(frames)} frames each, timeline minus frames "
            f"{min(missing)} to {max(missing)}, {sum(abs(m) > 1 for m in missing)} files off by more than 1 frame, "
            f"{sum(b > 0 for b in backs)} files whose timeline steps back ({sum(backs)} steps)")
    if bad:
        text += f", {len(bad)} unreadable ({bad[0]})"
    print(text)

cmd = sys.argv[1]
if cmd == "setup": setup(int(sys.argv[2]))
elif cmd == "activation": activation(int(sys.argv[2]))
elif cmd == "latency": latency(int(sys.argv[2]), int(sys.argv[3]))
elif cmd == "events": events_summary()
elif cmd == "probe": probe(sys.argv[2:])
PY

TOPO=$WORK/held-open.json
sed -e 's/"default": "PT10S"/"default": "PT1H"/' -e 's/"default": "PT60S"/"default": "PT1H"/' \
    -e 's/"activationSignalOffset": "-PT5S"/"activationSignalOffset": "-PT10S"/' \
    topologies/door-sensor-to-files.json > "$TOPO"

echo "bench: $STREAMS streams, ${SECS} s each run, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), clip $(ratio "$BYTES_PER_S" 125000 "%.2f") Mbit/s"

# ---- vigil: one service, STREAMS pipelines
rm -rf "$WORK/data" "$WORK/v" "$WORK"/f*.mp4 "$WORK"/f*.log "$WORK/events.jsonl"
mkdir -p "$WORK/v"
"$VIGIL" serve --data-dir "$WORK/data" --http "127.0.0.1:$HTTP" --event-log "$WORK/events.jsonl" \
    ${VIGIL_ARGS:-} 2> "$WORK/serve.log" &
VPID=$!; pids+=($VPID)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null || { echo "bench: vigil serve did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
sleep 1
pss_idle=$(pss_kib $VPID)
export HTTP URL TOPO DISTINCT OUT="$(pwd)/$WORK/v" EVENTS="$WORK/events.jsonl"
python3 "$WORK/client.py" setup "$STREAMS"
sleep 12   # the pre-roll buffers fill (10 s) before measuring
read -r start sys0 sw0 mb0 mt0 time0 cam0 < <(snapshot $VPID)
pss_start=$(pss_kib $VPID)
# PSS sampled six times over the window: growth while nothing changes would be a leak.
samples="$(mib "$pss_start")"; step=$(ratio "$SECS" 6 "%.3f")
for _ in 1 2 3 4 5 6; do sleep "$step"; samples="$samples $(mib "$(pss_kib $VPID)")"; done
read -r end sys1 sw1 mb1 mt1 time1 cam1 < <(snapshot $VPID)
pss=$(pss_kib $VPID); rss=$(field_kib $VPID VmRSS status); anon=$(field_kib $VPID RssAnon status)
pss_anon=$(field_kib $VPID Pss_Anon smaps_rollup); nthreads=$(threads $VPID); vconns=$(conns $VPID)
kill -0 $VPID 2>/dev/null || { echo "bench: vigil serve died:" >&2; tail -20 "$WORK/serve.log" >&2; exit 1; }
vigil_ticks=$((end - start))
vsecs=$(awk -v a="$time0" -v b="$time1" 'BEGIN{printf "%.2f", b - a}')
vigil_cpu=$(ratio "$vigil_ticks" "$(awk -v h="$HZ" -v n="$STREAMS" -v s="$vsecs" 'BEGIN{print h * n * s}')" "%.5f")
vigil_wakes=$(ratio $((sw1 - sw0)) "$(awk -v n="$STREAMS" -v s="$vsecs" 'BEGIN{print n * s}')" "%.1f")
vcam_cpu=$(ratio $((cam1 - cam0)) "$(awk -v h="$HZ" -v n="$STREAMS" -v s="$vsecs" 'BEGIN{print h * n * s}')" "%.5f")
vbusy=$(ratio $(( (mb1 - mb0) * $(nproc) )) $((mt1 - mt0)) "%.2f")
vother=$(awk -v b="$vbusy" -v t=$((vigil_ticks + cam1 - cam0)) -v h="$HZ" -v s="$vsecs" 'BEGIN{printf "%.2f", b - t / (h * s)}')
pss_mib=$(ratio "$pss" $((1024 * STREAMS)) "%.2f")
marginal_mib=$(ratio $((pss - pss_idle)) $((1024 * STREAMS)) "%.2f")
growth=$(ratio $((pss - pss_start)) "$vsecs" "%.0f")

[ "$ACTIVATIONS" -gt 0 ] && python3 "$WORK/client.py" activation "$ACTIVATIONS"
pss_act=$(pss_kib $VPID)
python3 "$WORK/client.py" latency "$CONFIGURED" "$CALLS"
pss_conf=$(pss_kib $VPID)
t_stop=$(date +%s.%N)
kill -INT $VPID
wait $VPID || echo "bench: vigil serve exited with status $?"
stop_s=$(awk -v a="$t_stop" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
python3 "$WORK/client.py" events
# PrerollIncomplete is expected: every gate is triggered as soon as its pipeline is active.
warns=$(grep -E 'WARN|ERROR' "$WORK/serve.log" | grep -c -v PrerollIncomplete || true)
vfiles=("$WORK"/v/s*/*.mp4)
vprobe=$(python3 "$WORK/client.py" probe "${vfiles[@]}")
per_dir=$(for d in "$WORK"/v/s*/; do ls "$d"*.mp4 2>/dev/null | wc -l; done | sort | uniq -c | awk '{printf "%s%s dirs with %s files", (NR > 1 ? ", " : ""), $1, $2}')

# ---- ffmpeg: STREAMS processes
fpids=()
for i in $(seq "$STREAMS"); do
    furl=$URL; [ "$DISTINCT" = url ] && furl="$URL?s=f$i"
    ffmpeg -hide_banner -loglevel error -nostdin -y -rtsp_transport tcp -i "$furl" -c copy -f mp4 "$WORK/f$i.mp4" \
        2> "$WORK/f$i.log" &
    fpids+=($!); pids+=($!)
done
sleep $((5 + STREAMS / 20))
alive=0; for p in "${fpids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
fconns=$(ss -tnpH state established "( dport = :$CAM )" 2>/dev/null | grep -c '"ffmpeg"' || true)
read -r start fsys0 sw0 mb0 mt0 time0 cam0 < <(snapshot "${fpids[@]}")
sleep "$SECS"
read -r end fsys1 sw1 mb1 mt1 time1 cam1 < <(snapshot "${fpids[@]}")
frss=0; fpss=0; alive1=0
for p in "${fpids[@]}"; do
    kill -0 "$p" 2>/dev/null && alive1=$((alive1 + 1))
    frss=$((frss + $(field_kib "$p" VmRSS status)))
    fpss=$((fpss + $(pss_kib "$p")))
done
for p in "${fpids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${fpids[@]}"; do wait "$p" || true; done
[ "$alive1" -gt 0 ] || { echo "bench: no ffmpeg process survived" >&2; cat "$WORK/f1.log" >&2; exit 1; }
fsecs=$(awk -v a="$time0" -v b="$time1" 'BEGIN{printf "%.2f", b - a}')
ffmpeg_cpu=$(ratio $((end - start)) "$(awk -v h="$HZ" -v n="$alive1" -v s="$fsecs" 'BEGIN{print h * n * s}')" "%.5f")
fpss_mib=$(ratio "$fpss" $((1024 * alive1)) "%.2f")
frss_mib=$(ratio "$frss" $((1024 * alive1)) "%.1f")
ffmpeg_wakes=$(ratio $((sw1 - sw0)) "$(awk -v n="$alive1" -v s="$fsecs" 'BEGIN{print n * s}')" "%.1f")
fcam_cpu=$(ratio $((cam1 - cam0)) "$(awk -v h="$HZ" -v n="$alive1" -v s="$fsecs" 'BEGIN{print h * n * s}')" "%.5f")
fbusy=$(ratio $(( (mb1 - mb0) * $(nproc) )) $((mt1 - mt0)) "%.2f")
fother=$(awk -v b="$fbusy" -v t=$((end - start + cam1 - cam0)) -v h="$HZ" -v s="$fsecs" 'BEGIN{printf "%.2f", b - t / (h * s)}')
ffiles=("$WORK"/f*.mp4)
fprobe=$(python3 "$WORK/client.py" probe "${ffiles[@]}")
ferrs=$(cat "$WORK"/f*.log | sort | uniq -c | sort -rn | head -3)

# ---- the floor: one thread receiving every stream and writing its bytes, nothing parsed
if [ "${FLOOR:-1}" = 1 ]; then
    rm -rf "$WORK/floor"
    python3 benches/relay-floor.py "$URL" "$STREAMS" "$WORK/floor" ${FLOOR_ARGS:-} > "$WORK/floor.log" 2>&1 &
    RPID=$!; pids+=($RPID)
    for _ in $(seq 300); do grep -q '^ready' "$WORK/floor.log" && break; sleep 0.1; done
    grep -q '^ready' "$WORK/floor.log" || { echo "bench: relay-floor did not start:" >&2; cat "$WORK/floor.log" >&2; exit 1; }
    sleep 3
    read -r rstart rsys0 sw0 mb0 mt0 time0 cam0 < <(snapshot $RPID)
    sleep "$SECS"
    read -r rend rsys1 sw1 mb1 mt1 time1 cam1 < <(snapshot $RPID)
    kill -INT $RPID; wait $RPID || true
    rsecs=$(awk -v a="$time0" -v b="$time1" 'BEGIN{printf "%.2f", b - a}')
    floor_cpu=$(ratio $((rend - rstart)) "$(awk -v h="$HZ" -v n="$STREAMS" -v s="$rsecs" 'BEGIN{print h * n * s}')" "%.5f")
    floor_wakes=$(ratio $((sw1 - sw0)) "$(awk -v n="$STREAMS" -v s="$rsecs" 'BEGIN{print n * s}')" "%.1f")
    rbusy=$(ratio $(( (mb1 - mb0) * $(nproc) )) $((mt1 - mt0)) "%.2f")
    rother=$(awk -v b="$rbusy" -v t=$((rend - rstart + cam1 - cam0)) -v h="$HZ" -v s="$rsecs" 'BEGIN{printf "%.2f", b - t / (h * s)}')
    rbytes=$(awk '/^bytes/ {print $2}' "$WORK/floor.log")
    rm -rf "$WORK/floor"
fi

echo "bench: ---- report: $STREAMS streams, windows of $vsecs s (vigil) and $fsecs s (ffmpeg), $(nproc) cores"
echo "bench: vigil  (1 process, $nthreads threads, $vconns camera connections): CPU s per stream-second $vigil_cpu ($((sys1 - sys0)) of $vigil_ticks ticks in the kernel)   wake-ups per stream-second $vigil_wakes"
echo "bench: vigil  memory: PSS $(mib "$pss") MiB = $pss_mib MiB per stream (idle service $(mib "$pss_idle") MiB; marginal $marginal_mib MiB per stream; Pss_Anon $(mib "$pss_anon") MiB, RssAnon $(mib "$anon") MiB, RSS $(mib "$rss") MiB)"
echo "bench: vigil  PSS over time: during the window $samples MiB ($growth KiB/s), after $ACTIVATIONS activations $(mib "$pss_act") MiB, with $CONFIGURED configured $(mib "$pss_conf") MiB"
echo "bench: vigil  machine busy $vbusy of $(nproc) cores ($vother not vigil or the camera); camera CPU s per stream-second $vcam_cpu; shutdown (SIGINT) took $stop_s s; $warns WARN/ERROR lines in its log (PrerollIncomplete aside)"
echo "bench: vigil  files: $vprobe; $per_dir"
echo "bench: ffmpeg ($alive of $STREAMS alive at the window's start, $alive1 at its end, $fconns camera connections): CPU s per stream-second $ffmpeg_cpu ($((fsys1 - fsys0)) of $((end - start)) ticks in the kernel)   wake-ups per stream-second $ffmpeg_wakes   memory per stream PSS $fpss_mib MiB, RSS $frss_mib MiB"
echo "bench: ffmpeg machine busy $fbusy of $(nproc) cores ($fother not ffmpeg or the camera); camera CPU s per stream-second $fcam_cpu"
echo "bench: ffmpeg files: $fprobe"
[ -z "$ferrs" ] || echo "bench: ffmpeg stderr (most frequent lines): $(echo "$ferrs" | head -3 | tr '\n' ';')"
if [ "${FLOOR:-1}" = 1 ]; then
    echo "bench: floor  (relay-floor.py ${FLOOR_ARGS:-}: 1 thread, $STREAMS sessions, bytes in and out, nothing parsed; $(ratio "${rbytes:-0}" 1048576 "%.0f") MiB received): CPU s per stream-second $floor_cpu ($((rsys1 - rsys0)) of $((rend - rstart)) ticks in the kernel)   wake-ups per stream-second $floor_wakes; machine busy $rbusy of $(nproc) cores ($rother not it or the camera)"
    awk -v v="$vigil_cpu" -v f="$ffmpeg_cpu" -v r="$floor_cpu" 'BEGIN{ if (f > 0 && r > 0)
        printf "bench: ratio floor/ffmpeg: CPU %.3f (receiving and writing the bytes alone; vigil/floor %.2f)\n", r / f, v / r }'
fi
awk -v v="$vigil_cpu" -v f="$ffmpeg_cpu" -v vp="$pss_mib" -v fp="$fpss_mib" -v vw="$vigil_wakes" -v fw="$ffmpeg_wakes" \
    -v pre="$PREROLL_MIB" -v pres="$PREROLL_S" 'BEGIN{
    if (f > 0) printf "bench: ratio vigil/ffmpeg: CPU %.3f (target <= 0.12: %s)   wake-ups %.3f   PSS %.2f\n", v / f, (v / f <= 0.12 ? "met" : "NOT met"), (fw > 0 ? vw / fw : 0), vp / fp;
    printf "bench: PSS per stream %.2f MiB, target <= 2 MiB + pre-roll %.1f MiB (%.1f s of the stream) = %.1f MiB: %s\n", vp, pre, pres, 2 + pre, (vp <= 2 + pre ? "met" : "NOT met") }'
