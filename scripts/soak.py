#!/usr/bin/env python3
"""The soak of issue #13, driven by scripts/soak.sh (which builds vigil and makes the clip).

Runs one `vigil serve --data-dir` holding PIPELINES live pipelines (FileSink clips of CLIP_S
seconds, the gate held open by a trigger every TRIGGER_S seconds) against one looping RTSP camera
(scripts/peers/rtsp-camera.py), injects a fault every FAULT_EVERY_S seconds, samples the process
every SAMPLE_S seconds, checks every closed file against the camera's frame counter and deletes it,
and prints the report. Standard library only; needs ffprobe, /usr/bin/python3 with gi (the camera)
and, for the broker fault, mosquitto (+ mosquitto_pub/mosquitto_sub for the MQTT method fault).

Every setting comes from the environment (soak.sh sets them): VIGIL REPO WORK CLIP PIPELINES
MINUTES FAULT_EVERY_S, and optionally CLIP_S TRIGGER_S SAMPLE_S GRACE_S CAMERA_DOWN_S
BROKER_DOWN_S PAUSE_S MQTT(auto|0|1) KEEP_FILES DECODE_EVERY VIGIL_ARGS.

The camera's frame counter. The clip is 30 fps with exact timestamps, a key frame every GOP_S,
no B-frames, and the camera forwards it without re-encoding, stamping frame n of its run at
n x 3000 RTP ticks. So (1) a recording's timeline is the counter: a frame that vigil lost leaves
a hole in the presentation times (vigil keeps gaps as gaps, anchored to UTC by the `prft` box of
every fragment), and (2) every non-key frame is identified by its size in the looping clip (3
consecutive sizes are unique in the clip), so each recorded frame can be matched to the clip
frame the camera sent at that time: a frame out of sequence (duplicated, reordered, stamped with
another frame's time) is a sequence error even where the timeline looks whole.
Loss is counted on each pipeline's timeline (the union of its files; consecutive clips overlap by
the pre-roll): a hole that meets a fault window (a fault on the camera, the broker, the control
API, or on this very pipeline) may last the fault's duration + GRACE_S + one GOP (a session
starts at a key frame); the rest of it, and any hole away from the faults, is lost media.
"""
import collections
import http.client
import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

E = os.environ
VIGIL = E["VIGIL"]
REPO = E["REPO"]
WORK = E["WORK"]
CLIP = E["CLIP"]
N = int(E.get("PIPELINES", "16"))
MINUTES = float(E.get("MINUTES", "60"))
FAULT_EVERY = float(E.get("FAULT_EVERY_S", "180"))
CLIP_S = int(E.get("CLIP_S", "60"))
TRIGGER_S = float(E.get("TRIGGER_S", "3"))
SAMPLE_S = float(E.get("SAMPLE_S", "10"))
GRACE_S = float(E.get("GRACE_S", "1"))
CAMERA_DOWN_S = float(E.get("CAMERA_DOWN_S", "5"))
BROKER_DOWN_S = float(E.get("BROKER_DOWN_S", "5"))
PAUSE_S = float(E.get("PAUSE_S", "2"))
KEEP_FILES = E.get("KEEP_FILES", "0") == "1"
DECODE_EVERY = int(E.get("DECODE_EVERY", "8"))
VIGIL_ARGS = E.get("VIGIL_ARGS", "").split()
FPS = 30
GOP_S = 1.0
FRAME = 1 / FPS
DURATION = MINUTES * 60
WARMUP = min(300.0, DURATION * 0.1)
HZ = os.sysconf("SC_CLK_TCK")

mqtt_setting = E.get("MQTT", "auto")
MQTT = (mqtt_setting == "1" or (mqtt_setting == "auto" and os.path.exists("/usr/sbin/mosquitto")))
MQTT_CLIENTS = all(os.path.exists(f"/usr/bin/{c}") for c in ("mosquitto_pub", "mosquitto_sub"))

NAMES = [f"p{i}" for i in range(1, N + 1)]
OUT = os.path.join(WORK, "out")
EVENTS = os.path.join(WORK, "events.jsonl")
lock = threading.Lock()
stop = threading.Event()
early = threading.Event()


_log_file = None


def say(text):
    """Prints text, and appends it to WORK/soak.log."""
    global _log_file
    print(text, flush=True)
    try:
        if _log_file is None:
            _log_file = open(os.path.join(WORK, "soak.log"), "a")
        _log_file.write(text + "\n")
        _log_file.flush()
    except OSError:
        pass


def log(msg):
    say(f"soak: {msg}")


def fail(msg):
    log("FAILED TO RUN: " + msg)
    raise SystemExit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wall():
    return time.time()


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


# ---------------------------------------------------------------------------------- processes

class Camera:
    def __init__(self, port):
        self.port, self.proc, self.runs = port, None, 0

    def start(self, timeout=30):
        """Starts the camera; returns the wall time it printed `ready` (retrying a busy port)."""
        deadline = wall() + timeout
        while True:
            self.runs += 1
            path = f"{WORK}/camera-{self.runs}.log"
            with open(path, "w") as f:
                self.proc = subprocess.Popen(
                    ["/usr/bin/python3", f"{REPO}/scripts/peers/rtsp-camera.py", CLIP,
                     "--port", str(self.port), "--mount", "/cam"],
                    stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            while wall() < deadline:
                with open(path) as f:
                    if any(line.startswith("ready") for line in f):
                        return wall()
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            if self.proc.poll() is None or wall() >= deadline:
                self.kill()
                with open(path) as f:
                    fail(f"the camera did not start: {f.read()[-500:]}")
            time.sleep(0.5)  # exited (e.g. port still busy): try again

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def term(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Broker:
    def __init__(self, port):
        self.port, self.proc, self.runs = port, None, 0
        self.conf = f"{WORK}/mosquitto.conf"
        with open(self.conf, "w") as f:
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")

    def start(self, timeout=20):
        self.runs += 1
        log_file = open(f"{WORK}/mosquitto-{self.runs}.log", "w")
        self.proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", self.conf], stdout=log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = wall() + timeout
        while wall() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return wall()
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        fail(f"mosquitto did not start (see {WORK}/mosquitto-{self.runs}.log)")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------- HTTP client

class Client:
    """One kept-alive connection to vigil's listener."""

    def __init__(self, port, timeout=120):
        self.port, self.timeout, self.conn = port, timeout, None

    def request(self, verb, path, body=None, ctype="application/json"):
        """(status, parsed answer or text, seconds); status None when the connection failed."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                t0 = time.perf_counter()
                headers = {"content-type": ctype} if body is not None else {}
                self.conn.request(verb, path, body, headers)
                r = self.conn.getresponse()
                raw = r.read()
                dt = time.perf_counter() - t0
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                break
            except (http.client.HTTPException, OSError) as e:
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt:
                    return None, f"{type(e).__name__}: {e}", 0.0
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw.decode(errors="replace")
        return r.status, answer, dt

    def method(self, name, payload):
        return self.request("POST", "/api/methods/" + name, json.dumps(payload).encode())

    def trigger(self, pipeline, body=b"{}", ctype="application/json"):
        return self.request("POST", f"/pipelines/{pipeline}/inputs/recordingTrigger", body, ctype)


def must(answer, what, ok=(200, 201)):
    status, payload, _ = answer
    if status not in ok:
        fail(f"{what}: {status} {str(payload)[:300]}")
    return payload


# ------------------------------------------------------------------------------- the event log

class EventLog(threading.Thread):
    """Reads the event log as it grows; each event with its arrival (wall) time."""

    def __init__(self, files_q):
        super().__init__(daemon=True)
        self.offset, self.rest, self.events, self.files_q = 0, b"", [], files_q
        self.bad_lines = 0

    def poll(self):
        try:
            with open(EVENTS, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        now = wall()
        self.offset += len(chunk)
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                p = e["properties"]
                parts = p["subject"].split("/")
                kind = p["eventType"].rsplit(".", 1)[-1]
                cls = p["eventType"].split(".")[-2] if p["eventType"].count(".") >= 2 else ""
                t = datetime.fromisoformat(p["eventTime"].replace("Z", "+00:00")).timestamp()
            except (ValueError, KeyError, TypeError):
                self.bad_lines += 1
                continue
            ev = {"arr": now, "t": t, "kind": kind, "cls": cls, "subject": p["subject"],
                  "pipeline": parts[2] if len(parts) > 2 and parts[1] == "livePipelines" else "",
                  "body": e.get("body") or {}}
            with lock:
                self.events.append(ev)
            if kind == "RecordingAvailable" and ev["body"].get("outputType") == "filePath":
                self.files_q.append((ev["body"].get("outputLocation"), ev["pipeline"], now))

    def run(self):
        while not stop.is_set():
            self.poll()
            time.sleep(0.5)

    def since(self, t0, t1=None, kind=None, pipeline=None):
        with lock:
            evs = list(self.events)
        return [e for e in evs if e["arr"] >= t0 and (t1 is None or e["arr"] <= t1)
                and (kind is None or e["kind"] == kind)
                and (pipeline is None or e["pipeline"] == pipeline)]


# ------------------------------------------------------------------------------------ sampling

def read_kib(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_sample(pid):
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        threads = len(os.listdir(f"/proc/{pid}/task"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return {"t": wall(), "rss": read_kib(f"/proc/{pid}/status", "VmRSS"),
            "pss": read_kib(f"/proc/{pid}/smaps_rollup", "Pss"),
            "anon": read_kib(f"/proc/{pid}/status", "RssAnon"),
            "fds": fds, "threads": threads, "ticks": ticks,
            "load": float(open("/proc/loadavg").read().split()[0])}


def heap_sample(http_port):
    """vigil_heap_bytes{kind} from the service's /metrics, in KiB (empty when not offered)."""
    heap = {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode("utf-8", "replace")
        conn.close()
    except (OSError, http.client.HTTPException):
        return heap
    for m in re.finditer(r'^vigil_heap_bytes\{kind="(\w+)"\} (\d+)', text, re.M):
        heap[m.group(1)] = int(m.group(2)) // 1024
    return heap


class Sampler(threading.Thread):
    def __init__(self, vigil, http_port):
        super().__init__(daemon=True)
        self.vigil, self.samples, self.died_at = vigil, [], None
        self.http_port = http_port
        self.csv = open(f"{WORK}/samples.csv", "w")
        self.csv.write("time,elapsed_s,rss_kib,pss_kib,rss_anon_kib,fds,threads,cpu_ticks,load1,"
                       "heap_in_use_kib,heap_free_kib,heap_mapped_kib\n")

    def sample(self, t_start):
        if self.vigil.poll() is not None:
            if self.died_at is None:
                self.died_at = wall()
            return None
        s = proc_sample(self.vigil.pid)
        if s:
            s["heap"] = heap_sample(self.http_port)
            with lock:
                self.samples.append(s)
            heap = ",".join(str(s["heap"].get(k, "")) for k in ("in_use", "free", "mapped"))
            self.csv.write(f"{iso(s['t'])},{s['t'] - t_start:.1f},{s['rss']},{s['pss']},{s['anon']},"
                           f"{s['fds']},{s['threads']},{s['ticks']},{s['load']},{heap}\n")
            self.csv.flush()
        return s

    def run(self):
        t_start = wall()
        nxt = t_start
        while not stop.is_set():
            self.sample(t_start)
            nxt += SAMPLE_S
            stop.wait(max(0.0, nxt - wall()))


# ------------------------------------------------------------------------------------ triggers

class Triggers(threading.Thread):
    """A trigger to every pipeline every TRIGGER_S: each keeps its gate open (clips of CLIP_S)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.client, self.paused, self.statuses = Client(port, 30), set(), collections.Counter()
        self.failures = []  # (wall, pipeline, status, answer)

    def fire(self, name):
        status, answer, _ = self.client.trigger(name)
        with lock:
            self.statuses[status] += 1
            if status != 202:
                self.failures.append((wall(), name, status, str(answer)[:200]))

    def run(self):
        nxt = wall()
        while not stop.is_set():
            for name in NAMES:
                if name not in self.paused:
                    self.fire(name)
            nxt += TRIGGER_S
            stop.wait(max(0.0, nxt - wall()))


# ------------------------------------------------------------------------ the frame counter

def probe_packets(path):
    """[(pts_seconds, size, key)] of the first video stream, and its codec; None if unreadable."""
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                        "packet=pts,dts,size,flags:stream=time_base,codec_name", "-of", "json", path],
                       capture_output=True, text=True)
    try:
        j = json.loads(r.stdout)
        st = j["streams"][0]
        num, den = (int(x) for x in st["time_base"].split("/"))
        pk = []
        for p in j.get("packets", []):
            ts = p.get("pts", p.get("dts"))
            if ts is None or ts == "N/A":
                continue
            pk.append((int(ts) * num / den, int(p["size"]), "K" in p.get("flags", "")))
    except (ValueError, KeyError, IndexError):
        return None, (r.stderr.strip().splitlines() or ["no output"])[-1]
    if not pk:
        return None, "no video packet"
    pk.sort()
    return pk, (num, den)


def prft_boxes(path):
    """[(UTC seconds, media time in ticks)] of the file's prft boxes (top level)."""
    out = []
    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        off = 0
        while off + 8 <= total:
            f.seek(off)
            h = f.read(16)
            size, typ = struct.unpack(">I4s", h[:8])
            hdr = 8
            if size == 1 and len(h) >= 16:
                size, hdr = struct.unpack(">Q", h[8:16])[0], 16
            elif size == 0:
                size = total - off
            if size < hdr:
                break
            if typ == b"prft":
                f.seek(off + hdr)
                b = f.read(min(size - hdr, 32))
                if len(b) >= 20:
                    ntp = struct.unpack(">Q", b[8:16])[0]
                    mt = struct.unpack(">Q", b[16:24])[0] if b[0] == 1 and len(b) >= 24 else struct.unpack(">I", b[16:20])[0]
                    out.append(((ntp >> 32) - 2208988800 + (ntp & 0xFFFFFFFF) / 2 ** 32, mt))
            off += size
    return out


class CameraClip:
    """The looping clip's frames: sizes and key flags, and a lookup of 3 consecutive sizes."""

    def __init__(self, path):
        pk, _ = probe_packets(path)
        if not pk:
            fail(f"ffprobe cannot read the clip {path}")
        self.sizes = [p[1] for p in pk]
        self.keys = [p[2] for p in pk]
        self.n = len(pk)
        self.index, seen = {}, collections.Counter()
        for i in range(self.n):
            idx = [(i + k) % self.n for k in range(3)]
            if any(self.keys[x] for x in idx):
                continue
            tri = tuple(self.sizes[x] for x in idx)
            seen[tri] += 1
            self.index[tri] = i
        for tri, c in seen.items():
            if c > 1:
                del self.index[tri]

    def matches(self, i, size, key):
        return self.keys[i] == key and (key or self.sizes[i] == size)

    def locate(self, pk, j):
        """Clip index of packet j (from the sizes of the next 3 non-key packets), or None."""
        k = j + 1 if pk[j][2] else j
        tri = tuple(p[1] for p in pk[k:k + 3])
        if len(tri) < 3 or any(p[2] for p in pk[k:k + 3]):
            return None
        i = self.index.get(tri)
        if i is None:
            return None
        return (i - (k - j)) % self.n


def sequence(pk, clip):
    """The camera's frame counter: each frame must be the clip frame due at its time (the one
    after the previous frame, plus the frames its timestamp says were skipped). Returns the
    breaks [(pts, clip frame due, clip frame found)] and the count of frames not recognised."""
    breaks, unknown, cur = [], 0, None
    for j, (t, size, key) in enumerate(pk):
        if cur is not None:
            exp = (cur + round((t - pk[j - 1][0]) / FRAME)) % clip.n
            if clip.matches(exp, size, key):
                cur = exp
                continue
        i = clip.locate(pk, j)
        if i is None or not clip.matches(i, size, key):
            if len(pk) - j > 3:
                unknown += 1
            cur = None
            continue
        if cur is not None:
            breaks.append((t, exp, i))
        cur = i
    return breaks, unknown


def verify(path, pipeline, clip, decode):
    """Checks one closed file; returns its record (segments in UTC seconds)."""
    rec = {"path": path, "name": os.path.basename(path), "pipeline": pipeline, "playable": False,
           "frames": 0, "segments": [], "steps_back": 0, "seq_breaks": [], "unknown": 0,
           "prft_dev_ms": None, "decode_errors": None, "bytes": 0, "error": None}
    try:
        rec["bytes"] = os.path.getsize(path)
    except OSError as e:
        rec["error"] = f"missing: {e}"
        return rec
    pk, info = probe_packets(path)
    if pk is None:
        rec["error"] = f"ffprobe: {info}"
        return rec
    num, den = info
    try:
        boxes = prft_boxes(path)
    except (OSError, struct.error) as e:
        boxes = []
        rec["error"] = f"prft: {e}"
    rec["playable"] = True
    known = True
    if boxes:
        anchor = boxes[0][0] - boxes[0][1] * num / den
        rec["prft_dev_ms"] = max(abs(u - (anchor + mt * num / den)) for u, mt in boxes) * 1000
    else:
        # No prft: the clip's start from its name (${System.Runtime.PreciseDateTime}).
        m = re.search(r"(\d{8}T\d{6})(\.\d+)?Z", rec["name"])
        rec["error"] = "no prft box"
        if not m:
            rec["error"] += ", no time in the name: timeline unknown"
            anchor, known = 0.0, False
        else:
            anchor = datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc).timestamp() \
                + float(m.group(2) or 0) - pk[0][0]
    rec["frames"] = len(pk)
    times = [anchor + p[0] for p in pk]
    rec["first"], rec["last"] = times[0], times[-1] + FRAME
    seg_start = times[0]
    for a, b in zip(times, times[1:]):
        if b <= a:
            rec["steps_back"] += 1
        if b - a > 1.5 * FRAME:
            rec["segments"].append((seg_start, a + FRAME))
            seg_start = b
    rec["segments"].append((seg_start, times[-1] + FRAME))
    rec["timeline_minus_frames"] = round((times[-1] - times[0]) / FRAME) + 1 - len(pk)
    if not known:
        rec["segments"] = []
    breaks, rec["unknown"] = sequence(pk, clip)
    rec["seq_breaks"] = [(anchor + t, exp, got) for t, exp, got in breaks]
    if decode:
        r = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "null", "-"],
                           capture_output=True, text=True)
        rec["decode_errors"] = len([x for x in r.stderr.splitlines() if x.strip()]) + (r.returncode != 0)
    return rec


class Verifier(threading.Thread):
    def __init__(self, files_q, clip):
        super().__init__(daemon=True)
        self.q, self.clip, self.records, self.done, self.count = files_q, clip, [], set(), 0
        self.kept, self.faults = 0, []

    def near_fault(self, t, pipeline):
        return any(f["start"] - 2 <= t <= f.get("end", wall()) + GRACE_S + GOP_S + 5
                   and pipeline in f["targets"] for f in list(self.faults))

    def one(self, path, pipeline):
        if not path or path in self.done:
            return
        self.done.add(path)
        self.count += 1
        rec = verify(path, pipeline, self.clip, DECODE_EVERY > 0 and self.count % DECODE_EVERY == 1)
        with lock:
            self.records.append(rec)
        # Kept for a look: a file with a problem that no fault explains.
        holes = [(a[1], b[0]) for a, b in zip(rec["segments"], rec["segments"][1:])]
        problem = (not rec["playable"]) or rec["unknown"] or rec["steps_back"] or (rec["decode_errors"] or 0) > 0 \
            or any(not self.near_fault(t, pipeline) for t, _, _ in rec["seq_breaks"]) \
            or any(not self.near_fault(a[0], pipeline) for a in holes)
        if KEEP_FILES or (problem and self.kept < 50):
            self.kept += 1
        else:
            try:
                os.remove(path)
            except OSError:
                pass

    def run(self):
        while not stop.is_set():
            while self.q and self.q[0][2] < wall() - 1:
                path, pipeline, _ = self.q.popleft()
                self.one(path, pipeline)
            time.sleep(0.5)

    def drain(self):
        while self.q:
            path, pipeline, _ = self.q.popleft()
            self.one(path, pipeline)


# ------------------------------------------------------------------------------------- faults

class Faults:
    def __init__(self, ctx):
        self.ctx, self.list, self.count = ctx, [], collections.Counter()
        self.kinds = ["camera", "calls", "deactivate"] + (["broker"] if MQTT else [])

    def run(self, k):
        kind = self.kinds[k % len(self.kinds)]
        self.count[kind] += 1
        f = {"kind": kind, "n": self.count[kind], "targets": NAMES, "detail": [], "unexpected": []}
        f["start"] = wall()
        try:
            getattr(self, "fault_" + kind)(f)
        except (Exception, SystemExit) as e:  # a fault that cannot be run is reported, the soak goes on
            f["unexpected"].append(f"the fault itself failed: {type(e).__name__}: {e}")
            self.ctx.setdefault("failed", []).append(f"fault {k + 1} {kind}: {type(e).__name__}: {e}")
        f.setdefault("end", wall())
        self.list.append(f)
        log(f"fault {k + 1} {kind} #{f['n']} at +{f['start'] - self.ctx['t0']:.0f} s lasted "
            f"{f['end'] - f['start']:.1f} s: {'; '.join(f['detail'])}"
            + (f"  UNEXPECTED: {'; '.join(f['unexpected'])}" if f["unexpected"] else ""))

    def fault_camera(self, f):
        cam = self.ctx["camera"]
        cam.kill()  # SIGKILL: the camera's sockets close under every session
        time.sleep(CAMERA_DOWN_S)
        f["end"] = cam.start()
        f["detail"].append(f"camera killed (SIGKILL), back after {f['end'] - f['start']:.1f} s")

    def fault_broker(self, f):
        br = self.ctx["broker"]
        br.kill()
        time.sleep(BROKER_DOWN_S)
        f["end"] = br.start()
        f["detail"].append(f"mosquitto killed (SIGKILL), back after {f['end'] - f['start']:.1f} s")

    def fault_deactivate(self, f):
        c, trig = self.ctx["client"], self.ctx["triggers"]
        name = NAMES[(f["n"] - 1) % N]
        f["targets"] = [name]
        trig.paused.add(name)
        try:
            s1, a1, d1 = c.method("livePipelineDeactivate", {"@apiVersion": "1.1", "name": name})
            time.sleep(PAUSE_S)
            s2, a2, d2 = c.method("livePipelineActivate", {"@apiVersion": "1.1", "name": name})
            f["end"] = wall()
        finally:
            trig.paused.discard(name)
        trig.fire(name)
        f["detail"].append(f"{name}: livePipelineDeactivate {s1} in {d1:.2f} s, {PAUSE_S:g} s Inactive, "
                           f"livePipelineActivate {s2} in {d2:.2f} s")
        for s, a, what in ((s1, a1, "deactivate"), (s2, a2, "activate")):
            if s != 200:
                f["unexpected"].append(f"{what} answered {s} {str(a)[:200]}")

    def fault_calls(self, f):
        """Malformed and oversized calls on a fresh connection, then raw-socket abuse."""
        port, name = self.ctx["http"], NAMES[(f["n"] - 1) % N]
        f["targets"] = NAMES
        c = Client(port, 60)
        big_topology = json.dumps({"@apiVersion": "1.1", "name": "soakBig",
                                   "properties": {"description": "x" * (3 << 20)}}).encode()
        bad_pipeline = {"@apiVersion": "1.1", "name": "soakBad", "properties": {
            "topologyName": "SoakFiles", "parameters": [{"name": "maxActivation", "value": "PT2H"}]}}
        cases = [
            ("truncated JSON", "/api/methods/livePipelineSet", b'{"@apiVersion": "1.1", "name": "p1", "properties": {', "application/json", {400}),
            ("3 MiB payload", "/api/methods/pipelineTopologySet", big_topology, "application/json", {413}),
            ("array payload", "/api/methods/livePipelineActivate", b"[1, 2, 3]", "application/json", {400}),
            ("deep nesting", "/api/methods/livePipelineGet", b"[" * 50000 + b"]" * 50000, "application/json", {400}),
            ("unknown method", "/api/methods/soakNoSuchMethod", b"{}", "application/json", {501}),
            ("invalid pipeline (maximumActivationTime 2 h)", "/api/methods/livePipelineSet",
             json.dumps(bad_pipeline).encode(), "application/json", {400}),
            ("text/plain method", "/api/methods/livePipelineList", b"{}", "text/plain", {415}),
            ("non-JSON trigger", f"/pipelines/{name}/inputs/recordingTrigger", b"not json", "application/json", {400}),
            ("100 KiB trigger", f"/pipelines/{name}/inputs/recordingTrigger",
             json.dumps({"pad": "y" * (100 << 10)}).encode(), "application/json", {413}),
        ]
        got = []
        for label, path, body, ctype, ok in cases:
            s, a, _ = c.request("POST", path, body, ctype)
            got.append(f"{label} {s}")
            if s not in ok:
                f["unexpected"].append(f"{label}: {s} (expected {'/'.join(map(str, sorted(ok)))}) {str(a)[:160]}")
        if any(x.startswith("invalid pipeline") and x.endswith(("200", "201")) for x in got):
            c.method("livePipelineDelete", {"@apiVersion": "1.1", "name": "soakBad"})
        # Raw sockets: a body shorter than its Content-Length, then a garbage request line.
        got.append("short body " + raw_exchange(port, b"POST /api/methods/livePipelineList HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"a\":", close_early=True))
        got.append("garbage request " + raw_exchange(port, b"\x16\x03\x01\x00\xa5GARBAGE \xff\xfe\r\n\r\n"))
        if MQTT and MQTT_CLIENTS:
            got.append("MQTT " + mqtt_bad_calls(self.ctx["mqtt_port"], f["n"], f))
        s, a, _ = Client(port, 10).request("GET", "/healthz")
        got.append(f"then /healthz {s}")
        if s != 200:
            f["unexpected"].append(f"/healthz answered {s} {a}")
        s, a, _ = c.method("livePipelineList", {"@apiVersion": "1.1"})
        if s == 200:
            states = collections.Counter(p["properties"].get("state") for p in a["payload"]["value"])
            got.append("pipelines " + ", ".join(f"{v} {k}" for k, v in states.items()))
        else:
            f["unexpected"].append(f"livePipelineList answered {s}")
        f["end"] = wall()
        f["detail"].append(", ".join(got))


def raw_exchange(port, data, close_early=False):
    """Sends raw bytes; the first line of the answer, or what happened."""
    try:
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.settimeout(5)
        s.sendall(data)
        if close_early:
            s.close()
            return "(closed by us)"
        answer = s.recv(200)
        s.close()
        return answer.split(b"\r\n")[0].decode(errors="replace") or "(connection closed)"
    except OSError as e:
        return f"({type(e).__name__})"


def mqtt_bad_calls(port, n, f):
    """A truncated and a 3 MiB method payload over MQTT; the answers' statuses."""
    big = f"{WORK}/mqtt-big.json"
    if not os.path.exists(big):
        with open(big, "w") as fh:
            json.dump({"@apiVersion": "1.1", "name": "soakBig", "properties": {"description": "x" * (3 << 20)}}, fh)
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", "vigil/methods/res/#",
                            "-v", "-C", "2", "-W", "15"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    pub = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t"]
    subprocess.run(pub + [f"vigil/methods/POST/livePipelineSet/?$rid=soak{n}a", "-m", '{"name": '], timeout=15)
    subprocess.run(pub + [f"vigil/methods/POST/pipelineTopologySet/?$rid=soak{n}b", "-f", big], timeout=15)
    try:
        out, _ = sub.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        sub.kill()
        out, _ = sub.communicate()
    statuses = {}
    for line in out.splitlines():
        topic = line.split(" ", 1)[0]
        parts = topic.split("/")
        if len(parts) >= 4 and "$rid=" in topic:
            statuses[topic.split("$rid=")[1]] = parts[3]
    a, b = statuses.get(f"soak{n}a"), statuses.get(f"soak{n}b")
    if a != "400":
        f["unexpected"].append(f"MQTT truncated payload answered {a or 'nothing'} (expected 400)")
    if b != "413":
        f["unexpected"].append(f"MQTT 3 MiB payload answered {b or 'nothing'} (expected 413)")
    return f"truncated {a or 'no answer'}, 3 MiB {b or 'no answer'}"


# ------------------------------------------------------------------------------------ analysis

def merge(segments, tol=0.6 * FRAME):
    out = []
    for a, b in sorted(segments):
        if out and a <= out[-1][1] + tol:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def analyse_loss(records, faults, t_stop):
    """Per pipeline: lost seconds away from faults, beyond the faults' allowance, and recovery."""
    per = {}
    recov = collections.defaultdict(list)  # fault index -> [hole - fault duration]
    for name in NAMES:
        segs = [s for r in records if r["pipeline"] == name for s in r["segments"]]
        iv = merge(segs)
        holes = [(a[1], b[0]) for a, b in zip(iv, iv[1:])]
        tail = None
        if iv and t_stop - iv[-1][1] > 1.5:
            tail = (iv[-1][1], t_stop)
        outside = beyond = 0.0
        details = []
        for g0, g1 in holes + ([tail] if tail else []):
            length = g1 - g0 - (1.5 if (g0, g1) == tail else 0)
            hit = [i for i, f in enumerate(faults) if name in f["targets"]
                   and g0 <= f["end"] + GRACE_S + GOP_S + 5 and g1 >= f["start"] - 2]
            if hit:
                allowed = sum(faults[i]["end"] - faults[i]["start"] for i in hit) + GRACE_S + GOP_S
                for i in hit:
                    recov[i].append(g1 - g0 - (faults[i]["end"] - faults[i]["start"]))
                if length > allowed:
                    beyond += length - allowed
                    details.append(f"{iso(g0)}+{length:.2f}s (fault {hit[0] + 1} {faults[hit[0]]['kind']}, "
                                   f"{length - allowed:.2f} s beyond its {allowed:.2f} s)")
            elif length > 0:
                outside += length
                details.append(f"{iso(g0)}+{length:.2f}s (no fault)")
        covered = sum(b - a for a, b in iv)
        per[name] = {"outside": outside, "beyond": beyond, "covered": covered, "holes": details,
                     "start": iv[0][0] if iv else None, "end": iv[-1][1] if iv else None}
    return per, recov


def fault_events(ev, faults, t_end):
    """For each fault: the events that came in during it and up to 15 s after (TriggerReceived
    and the periodic recording events left out), and the expected events missing."""
    routine = {"TriggerReceived", "RecordingStarted", "RecordingStopped", "RecordingAvailable"}
    for i, f in enumerate(faults):
        nxt = faults[i + 1]["start"] if i + 1 < len(faults) else t_end
        w1 = min(f["end"] + 15, nxt)
        evs = ev.since(f["start"], w1)
        counts = collections.Counter(e["kind"] + ("(/broker)" if e["subject"] == "/broker" else "")
                                     for e in evs if e["kind"] not in routine)
        f["events"] = dict(sorted(counts.items()))
        missing = []
        if f["kind"] == "camera":
            failed = {e["pipeline"] for e in evs if e["cls"] == "Diagnostics" and "/sources/" in e["subject"]
                      and e["kind"] != "MediaSessionEstablished"}
            back = {}
            for e in evs:
                if e["kind"] == "MediaSessionEstablished" and e["t"] >= f["start"] and e["pipeline"] not in back:
                    back[e["pipeline"]] = e["t"] - f["end"]
            if len(failed) < N:
                missing.append(f"camera failure event from {N - len(failed)} of {N} pipelines")
            if len(back) < N:
                missing.append(f"MediaSessionEstablished from {N - len(back)} of {N} pipelines")
            if back:
                f["reconnect"] = (min(back.values()), max(back.values()))
        elif f["kind"] == "deactivate":
            name = f["targets"][0]
            for kind in ("LivePipelineDeactivated", "LivePipelineActivated", "MediaSessionEstablished", "RecordingAvailable"):
                if not [e for e in evs if e["kind"] == kind and e["pipeline"] == name]:
                    missing.append(f"{kind} of {name}")
        elif f["kind"] == "broker":
            if not [e for e in evs if e["subject"] == "/broker" and e["kind"] == "NetworkError"]:
                missing.append("NetworkError on /broker")
        elif f["kind"] == "calls":
            if len([e for e in evs if e["kind"] == "InvalidMessage"]) < 2:
                missing.append("InvalidMessage for the 2 malformed triggers")
        f["missing"] = missing


def mib(kib):
    return f"{kib / 1024:.1f}"


def slope_kib_per_min(samples, key):
    xs = [s["t"] for s in samples]
    ys = [s[key] for s in samples]
    if len(xs) < 3:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 60 if den else 0.0


# ---------------------------------------------------------------------------------------- main

def main():
    os.makedirs(OUT, exist_ok=True)
    clip = CameraClip(CLIP)
    ctx = {"http": free_port()}
    cam = Camera(free_port())
    ctx["camera"] = cam
    cam.start()
    url = f"rtsp://127.0.0.1:{cam.port}/cam"
    broker = None
    if MQTT:
        ctx["mqtt_port"] = free_port()
        broker = Broker(ctx["mqtt_port"])
        ctx["broker"] = broker
        broker.start()
    args = [VIGIL, "serve", "--data-dir", f"{WORK}/data", "--http", f"127.0.0.1:{ctx['http']}",
            "--event-log", EVENTS] + (["--mqtt", f"127.0.0.1:{ctx['mqtt_port']}"] if MQTT else []) + VIGIL_ARGS
    vigil = subprocess.Popen(args, stdout=open(f"{WORK}/serve.out", "w"), stderr=open(f"{WORK}/serve.log", "w"),
                             stdin=subprocess.DEVNULL, start_new_session=True)
    ctx["vigil"] = vigil
    procs = [cam, broker]
    try:
        return soak(ctx, clip, url, vigil, cam, broker)
    finally:
        stop.set()
        if vigil.poll() is None:
            vigil.kill()
        for p in procs:
            if p:
                p.kill() if isinstance(p, Broker) else p.term()


def soak(ctx, clip, url, vigil, cam, broker):
    c = Client(ctx["http"])
    ctx["client"] = c
    for _ in range(300):
        if vigil.poll() is not None:
            break
        if Client(ctx["http"], 2).request("GET", "/healthz")[0] == 200:
            break
        time.sleep(0.1)
    if Client(ctx["http"], 2).request("GET", "/healthz")[0] != 200:
        fail(f"vigil serve did not start: {open(f'{WORK}/serve.log').read()[-1500:]}")
    version = subprocess.run([VIGIL, "--version"], capture_output=True, text=True).stdout.strip() or "?"

    # One topology (ours, with the clip's start to the millisecond in its name), N pipelines.
    with open(f"{REPO}/topologies/door-sensor-to-files.json") as f:
        topo = json.load(f)
    topo["name"] = "SoakFiles"
    topo["properties"]["sinks"][0]["fileNamePattern"] = "soak-${System.PipelineName}-${System.Runtime.PreciseDateTime}"
    must(c.method("pipelineTopologySet", topo), "pipelineTopologySet")
    files_q = collections.deque()
    ev = EventLog(files_q)
    ev.start()
    for i, name in enumerate(NAMES, 1):
        # Credentials of its own (the camera asks for none): a session of its own per pipeline.
        doc = {"@apiVersion": "1.1", "name": name, "properties": {"topologyName": "SoakFiles", "parameters": [
            {"name": "rtspUrl", "value": url}, {"name": "rtspUserName", "value": f"u{i}"},
            {"name": "outputDirectory", "value": f"{os.path.abspath(OUT)}/{name}"},
            {"name": "minActivation", "value": "PT10S"}, {"name": "maxActivation", "value": f"PT{CLIP_S}S"}]}}
        must(c.method("livePipelineSet", doc), f"livePipelineSet {name}")
    for name in NAMES:
        must(c.method("livePipelineActivate", {"@apiVersion": "1.1", "name": name}), f"livePipelineActivate {name}")
    deadline = wall() + 60
    while {e["pipeline"] for e in ev.since(0, kind="MediaSessionEstablished")} < set(NAMES):
        if wall() > deadline or vigil.poll() is not None:
            fail("not every pipeline reached the camera within 60 s")
        time.sleep(0.2)
    time.sleep(1.5)
    trig = Triggers(ctx["http"])
    ctx["triggers"] = trig
    trig.start()
    deadline = wall() + 30
    while {e["pipeline"] for e in ev.since(0, kind="RecordingStarted")} < set(NAMES):
        if wall() > deadline or vigil.poll() is not None:
            fail("not every pipeline started recording within 30 s of its trigger")
        time.sleep(0.2)

    t0 = wall()
    ctx["t0"] = t0
    t_end = t0 + DURATION
    sampler = Sampler(vigil, ctx["http"])
    sampler.start()
    verifier = Verifier(files_q, clip)
    faults = Faults(ctx)
    verifier.faults = faults.list
    verifier.start()
    log(f"{N} pipelines recording since {iso(t0)} UTC; {MINUTES:g} min, a fault every {FAULT_EVERY:g} s "
        f"({', '.join(faults.kinds)}), warm-up {WARMUP:.0f} s, clips of {CLIP_S} s, MQTT {'on' if MQTT else 'off'}")
    k = 0
    last_note = t0
    while wall() < t_end and sampler.died_at is None and not early.is_set():
        due = t0 + (k + 1) * FAULT_EVERY
        if due + min(30, FAULT_EVERY / 2) <= t_end and wall() >= due:
            faults.run(k)
            k += 1
            continue
        if wall() - last_note >= 300:
            last_note = wall()
            s = sampler.samples[-1] if sampler.samples else None
            if s:
                log(f"+{(wall() - t0) / 60:.0f} min: RSS {mib(s['rss'])} MiB, PSS {mib(s['pss'])} MiB, {s['fds']} fds, "
                    f"{s['threads']} threads, {verifier.count} files checked")
        time.sleep(min(1.0, max(0.05, min(due, t_end) - wall())))

    # Stop: the last sample, then SIGINT; every file left is checked.
    died_at = sampler.died_at
    final = sampler.sample(t0) if died_at is None else None
    stop.set()
    trig.join(10)
    pipelines_state = None
    if died_at is None:
        s, a, _ = c.method("livePipelineList", {"@apiVersion": "1.1"})
        if s == 200:
            pipelines_state = collections.Counter(p["properties"].get("state") for p in a["payload"]["value"])
        s, a, _ = c.request("GET", "/api/pipelines")
        restarts = None
        if s == 200 and isinstance(a, dict):
            restarts = sum((p.get("status") or {}).get("restarts", 0) for p in a.get("pipelines", []))
    else:
        restarts = None
    t_stop = wall()
    exit_status = None
    stop_s = None
    if vigil.poll() is None:
        vigil.send_signal(signal.SIGINT)
        try:
            exit_status = vigil.wait(90)
        except subprocess.TimeoutExpired:
            vigil.kill()
            exit_status = "killed after 90 s"
        stop_s = wall() - t_stop
    else:
        exit_status = vigil.returncode
    ev.join(5)
    ev.poll()
    verifier.join(120)
    verifier.drain()
    announced = set(verifier.done)
    unannounced = []
    for name in NAMES:
        d = os.path.join(OUT, name)
        for fn in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            p = os.path.join(d, fn)
            if fn.endswith(".mp4") and p not in announced and os.path.abspath(p) not in announced:
                unannounced.append(p)
                verifier.one(p, name)
    records = verifier.records
    return report(ctx, version, ev, sampler, faults.list, records, trig, t0, t_end, t_stop, died_at,
                  exit_status, stop_s, pipelines_state, restarts, unannounced, final)


def report(ctx, version, ev, sampler, faults, records, trig, t0, t_end, t_stop, died_at, exit_status,
           stop_s, states, restarts, unannounced, final):
    survived = died_at is None
    warm_text = f"{WARMUP / 60:.0f} min" if WARMUP >= 60 else f"{WARMUP:.0f} s"
    run_s = (died_at or t_stop) - t0
    warm = [s for s in sampler.samples if s["t"] >= t0 + WARMUP]
    allsm = sampler.samples
    lines = []
    out = lines.append
    fault_events(ev, faults, t_stop)
    loss, recov = analyse_loss(records, faults, died_at or t_stop)

    out(f"---- report: {N} pipelines in one `vigil serve`, {run_s / 60:.1f} of {MINUTES:g} min"
        + (" (ended early by a signal)" if early.is_set() else "") + ", warm-up "
        f"{WARMUP:.0f} s, {len(faults)} faults, {os.cpu_count()} cores, {datetime.now(timezone.utc):%Y-%m-%d %H:%MZ}, {version}")
    out(f"camera: {os.path.basename(CLIP)} looped by rtsp-camera.py, 640x360 30 fps, GOP {GOP_S:g} s, "
        f"{os.path.getsize(CLIP) * 8 / (clip_frames() / FPS) / 1e6:.2f} Mbit/s, one RTSP session per pipeline; "
        f"clips of {CLIP_S} s (trigger every {TRIGGER_S:g} s), MQTT broker {'on' if MQTT else 'off'}")
    if survived:
        out(f"survived: yes; SIGINT -> exit status {exit_status} in {stop_s:.1f} s; pipeline restarts "
            f"{restarts if restarts is not None else '?'}; states at the end: "
            + (", ".join(f"{v} {k}" for k, v in states.items()) if states else "?"))
    else:
        out(f"survived: NO: vigil exited (status {exit_status}) at +{(died_at - t0) / 60:.1f} min; "
            f"see {WORK}/serve.log")
    crashes = ev.since(0, kind="RuntimeError")
    if crashes:
        out(f"RuntimeError events: {len(crashes)}: " + "; ".join(f"{e['subject']} {json.dumps(e['body'])[:160]}" for e in crashes[:3]))

    if warm:
        w, last = warm[0], warm[-1]
        growth = (last["rss"] - w["rss"]) / w["rss"] * 100
        pgrowth = (last["pss"] - w["pss"]) / w["pss"] * 100 if w["pss"] else 0
        out(f"RSS: {mib(w['rss'])} MiB after warm-up (+{(w['t'] - t0):.0f} s), {mib(last['rss'])} MiB at the end: "
            f"{growth:+.1f} % (target < 5 %: {'met' if growth < 5 else 'NOT met'}); max {mib(max(s['rss'] for s in allsm))} MiB; "
            f"slope after warm-up {slope_kib_per_min(warm, 'rss'):+.0f} KiB/min")
        # One sample against another moves with where each falls in the allocator's swings
        # (bursts freed but not yet trimmed): also the mean of the first WINDOW_S after the
        # warm-up against the mean of the last WINDOW_S.
        span = warm[-1]["t"] - warm[0]["t"]
        window = min(300.0, span / 4) if span > 0 else 0.0
        first_w = [s["rss"] for s in warm if s["t"] <= warm[0]["t"] + window] or [w["rss"]]
        last_w = [s["rss"] for s in warm if s["t"] >= warm[-1]["t"] - window] or [last["rss"]]
        mean_growth = (statistics.fmean(last_w) - statistics.fmean(first_w)) / statistics.fmean(first_w) * 100
        ctx["rss_means"] = (statistics.fmean(first_w), statistics.fmean(last_w), mean_growth, window)
        out(f"RSS means over {window / 60:.1f} min: {mib(statistics.fmean(first_w))} MiB just after the warm-up, "
            f"{mib(statistics.fmean(last_w))} MiB at the end: {mean_growth:+.1f} % "
            f"(target < 5 %: {'met' if mean_growth < 5 else 'NOT met'})")
        out(f"PSS: {mib(w['pss'])} -> {mib(last['pss'])} MiB ({pgrowth:+.1f} %; it moves with other processes mapping the same binary); RssAnon {mib(w['anon'])} -> {mib(last['anon'])} MiB; "
            f"slope {slope_kib_per_min(warm, 'anon'):+.0f} KiB/min (anon)")
        if w.get("heap") and last.get("heap"):
            out("heap (vigil_heap_bytes): " + "; ".join(
                f"{k} {mib(w['heap'].get(k, 0))} -> {mib(last['heap'].get(k, 0))} MiB"
                for k in ("in_use", "free", "mapped")))
        fds = [s["fds"] for s in warm]
        th = [s["threads"] for s in warm]
        calm = [s for s in warm if not any(f["start"] - 1 <= s["t"] <= f["end"] + 10 for f in faults)] or warm
        cfds = [s["fds"] for s in calm]
        cth = [s["threads"] for s in calm]
        out(f"open fds after warm-up: min {min(fds)}, max {max(fds)} (first {fds[0]}, last {fds[-1]}; away from faults "
            f"{min(cfds)}-{max(cfds)}); threads min {min(th)}, max {max(th)} (first {th[0]}, last {th[-1]}; away from faults "
            f"{min(cth)}-{max(cth)}); {len(warm)} samples every {SAMPLE_S:g} s")
        cpu = (last["ticks"] - allsm[0]["ticks"]) / HZ / max(1e-9, last["t"] - allsm[0]["t"])
        out(f"vigil CPU {cpu:.3f} cores on average; machine load (1 min) {statistics.fmean(s['load'] for s in allsm):.2f} average")
    else:
        growth = None
        out("RSS: no sample after the warm-up")

    playable = [r for r in records if r["playable"]]
    devs = [r["prft_dev_ms"] for r in playable if r["prft_dev_ms"] is not None]
    per_pipeline = collections.Counter(r["pipeline"] for r in records)
    bad = [r for r in records if not r["playable"]]
    decoded = [r for r in records if r["decode_errors"] is not None]
    frames = [r["frames"] for r in playable]
    near = lambda t, r: any(f["start"] - 2 <= t <= f["end"] + GRACE_S + GOP_S + 5 and r["pipeline"] in f["targets"] for f in faults)
    off = [r for r in playable if len(r["segments"]) > 1]
    off_calm = [r for r in off if any(not near(a[1], r) for a in r["segments"][:-1])]
    steps = sum(r["steps_back"] for r in playable)
    seq_out = []
    for r in playable:
        for t, exp, got in r["seq_breaks"]:
            if not near(t, r):
                seq_out.append((r["name"], t, exp, got))
    unknown = sum(r["unknown"] for r in playable)
    out(f"files: {len(records)} recorded ({sum(r['bytes'] for r in records) / 1e6:.0f} MB), {len(bad)} unplayable (ffprobe)"
        + (": " + "; ".join(f"{r['name']}: {r['error']}" for r in bad[:3]) if bad else "")
        + f"; {len(unannounced)} found on disk without RecordingAvailable"
        + (f"; files per pipeline {min(per_pipeline[n] for n in NAMES)}-{max(per_pipeline[n] for n in NAMES)}")
        + (f"; frames per file {min(frames)}-{max(frames)}" if frames else "")
        + f"; {len(off)} files with holes in their timeline ({len(off_calm)} away from faults); {steps} steps back")
    out(f"decode check (ffmpeg -f null, 1 file in {DECODE_EVERY}): {len(decoded)} files, "
        f"{sum(1 for r in decoded if r['decode_errors'])} with errors"
        + (f"; prft boxes vs the timeline: max {max(devs):.1f} ms apart" if devs else "; no prft box read"))
    out(f"camera frame counter: {sum(r['frames'] for r in playable)} frames matched against the clip's {clip_frames()}-frame loop; "
        f"{len(seq_out)} out of sequence away from faults, {sum(len(r['seq_breaks']) for r in playable) - len(seq_out)} "
        f"at faults (camera restarted: expected), {unknown} unrecognised")
    for name, t, exp, got in seq_out[:5]:
        out(f"  out of sequence: {name} at {iso(t)}: clip frame {got} where {exp} was due")
    total_out = sum(v["outside"] for v in loss.values())
    total_beyond = sum(v["beyond"] for v in loss.values())
    per = " ".join(f"{n}:{round((v['outside'] + v['beyond']) * FPS)}" for n, v in loss.items())
    out(f"frames lost outside faults: {round(total_out * FPS)} away from any fault + {round(total_beyond * FPS)} beyond the "
        f"faults' allowance (duration + {GRACE_S:g} s + one GOP) = {round((total_out + total_beyond) * FPS)} in all; per pipeline {per}")
    for n, v in loss.items():
        for h in v["holes"][:4]:
            out(f"  hole {n}: {h}")
        if v["start"] is None:
            out(f"  {n}: NO media recorded")
    tf = [x for x in trig.failures if not any(f["start"] - 1 <= x[0] <= f["end"] + 5 for f in faults)]
    out(f"triggers: {sum(trig.statuses.values())} sent, answers " + ", ".join(f"{k}: {v}" for k, v in sorted(trig.statuses.items(), key=str))
        + f"; {len(tf)} not accepted away from faults" + (f" (first: {tf[0][1]} {tf[0][2]} {tf[0][3]})" if tf else ""))
    for i, f in enumerate(faults):
        r = recov.get(i, [])
        extra = f", media back {min(r):.2f}-{max(r):.2f} s after the fault's end (hole minus fault) on {len(r)} pipelines" if r else ""
        if "reconnect" in f:
            extra += f", sessions re-established {f['reconnect'][0]:.2f}-{f['reconnect'][1]:.2f} s after the camera"
        out(f"fault {i + 1} {f['kind']} at +{f['start'] - t0:.0f} s ({f['end'] - f['start']:.1f} s){extra}; events: "
            + (", ".join(f"{k} {v}" for k, v in f["events"].items()) or "none")
            + (f"; MISSING: {'; '.join(f['missing'])}" if f["missing"] else "")
            + (f"; UNEXPECTED: {'; '.join(f['unexpected'])}" if f["unexpected"] else ""))
    fault_time = lambda t: any(f["start"] - 2 <= t <= f["end"] + 20 for f in faults)
    stray = [e for e in ev.since(t0) if e["cls"] == "Diagnostics" and e["kind"] not in ("MediaSessionEstablished",)
             and not fault_time(e["arr"])]
    kinds = collections.Counter(f"{e['kind']} {e['subject']}" for e in stray)
    out(f"diagnostics events away from faults: {len(stray)}" + (": " + ", ".join(f"{k} x{v}" for k, v in kinds.most_common(6)) if stray else ""))
    for e in stray[:3]:
        out(f"  {iso(e['arr'])} {e['kind']} {e['subject']} {json.dumps(e['body'])[:200]}")
    # vigil's log: WARN/ERROR lines other than the events it echoes (the event log has those).
    warns, others = 0, collections.Counter()
    try:
        for line in open(f"{WORK}/serve.log", errors="replace"):
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)
            m = re.match(r"\S+\s+(WARN|ERROR)\s+(\S+?):? (.*)", line)
            if m:
                warns += 1
                if m.group(2) != "vigil::bus::event_log":
                    others[f"{m.group(1)} {m.group(2)}: {re.sub(r'[0-9]+', 'N', m.group(3))[:120]}"] += 1
    except OSError:
        pass
    out(f"vigil log: {warns} WARN/ERROR lines, {sum(others.values())} of them not events ({WORK}/serve.log)"
        + "".join(f"; {v} x {k}" for k, v in others.most_common(4)))
    out(f"files: samples {WORK}/samples.csv, faults {WORK}/faults.json, checked files {WORK}/files.json, events {EVENTS}")
    for line in lines:
        log(line)

    # The block for the README.
    kinds = collections.Counter(f["kind"] for f in faults)
    cam_rec = [x for i, f in enumerate(faults) if f["kind"] == "camera" for x in recov.get(i, [])]
    md = []
    md.append(f"Soak (`scripts/soak.sh {N} {MINUTES:g} {FAULT_EVERY:g}`), {datetime.now(timezone.utc):%Y-%m-%d}, {os.cpu_count()} cores, {version}:")
    md.append("")
    md.append("| figure | value |")
    md.append("|---|---|")
    md.append(f"| set-up | {N} pipelines in one `vigil serve`, {run_s / 60:.0f} min against one looping 640x360 30 fps camera "
              f"(one session each){' (ended early)' if early.is_set() else ''}, {CLIP_S} s clips; a fault every {FAULT_EVERY:g} s: "
              + ", ".join(f"{v} x {k}" for k, v in kinds.items()) + " |")
    md.append(f"| survived | {'yes' if survived else 'NO'}" + (f", {restarts} pipeline restarts" if restarts is not None else "") + " |")
    if warm:
        md.append(f"| RSS | {mib(warm[0]['rss'])} MiB after the {warm_text} warm-up, {mib(warm[-1]['rss'])} MiB at the end: "
                  f"**{growth:+.1f} %** (target < 5 %), max {mib(max(s['rss'] for s in allsm))} MiB"
                  + (f"; means over {ctx['rss_means'][3] / 60:.0f} min {mib(ctx['rss_means'][0])} -> "
                     f"{mib(ctx['rss_means'][1])} MiB, **{ctx['rss_means'][2]:+.1f} %**" if "rss_means" in ctx else "")
                  + " |")
        md.append(f"| open fds / threads after warm-up | {min(fds)}-{max(fds)} / {min(th)}-{max(th)} "
                  f"(away from faults {min(cfds)}-{max(cfds)} / {min(cth)}-{max(cth)}) |")
    md.append(f"| files | {len(records)} recorded, {len(bad)} unplayable |")
    md.append(f"| frames lost outside faults | {round((total_out + total_beyond) * FPS)} (of {sum(frames)} recorded; "
              f"{len(seq_out)} out of sequence against the camera's counter) |")
    if cam_rec:
        md.append(f"| camera kill ({CAMERA_DOWN_S:g} s away) | media back {min(cam_rec):.1f}-{max(cam_rec):.1f} s after the camera |")
    miss = [f"{f['kind']} {f['n']}: {m}" for f in faults for m in f["missing"]]
    unexp = [f"{f['kind']} {f['n']}: {m}" for f in faults for m in f["unexpected"]]
    md.append(f"| fault events missing / unexpected answers | {len(miss)} / {len(unexp)} |")
    say("\n" + "\n".join(md) + "\n")
    with open(f"{WORK}/summary.md", "w") as f:
        f.write("\n".join(md) + "\n")
    with open(f"{WORK}/report.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(f"{WORK}/faults.json", "w") as f:
        json.dump(faults, f, indent=1, default=str)
    with open(f"{WORK}/files.json", "w") as f:
        json.dump(records, f, default=str)
    for msg in ctx.get("failed", []):
        log(f"FAILED TO RUN: {msg}")
    return 0 if survived and not ctx.get("failed") else 1


_clip_frames = None


def clip_frames():
    global _clip_frames
    if _clip_frames is None:
        _clip_frames = len(probe_packets(CLIP)[0])
    return _clip_frames


def on_signal(signum, _frame):
    """The first SIGINT/SIGTERM ends the run early (and reports); the next one aborts."""
    if not early.is_set():
        early.set()
        log("signal: ending the run now (again to abort)")
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # soak.sh forwards Ctrl-C as SIGTERM
        signal.signal(signal.SIGINT, on_signal)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
