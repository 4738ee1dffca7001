#!/usr/bin/env python3
"""Vigil's fault matrix (issue #13): every fault against every seed use case, one table.

usage: scripts/fault-matrix.py [--quick] [--cases door,motion,inference] [--faults F,...]
                               [--only CASE:FAULT,...] [--list] [--json FILE] [--work DIR]
                               [--keep] [--strict]

Each cell starts fresh peers (the GStreamer RTSP camera, Mosquitto, the S3 server s3s-fs, the
inference stand-in and its MQTT decider, as the use case needs) and a fresh `vigil run` in a
folder of its own; records a baseline, injects the fault, holds it a few seconds (and until the
event that names it is seen, within a bound), undoes it, records a while more and stops vigil
with SIGINT (kill -9 cells: vigil is killed and started again on the same output, then
stopped). Then it measures:

  survived      vigil ran until it was stopped (kill -9 cells: the restarted vigil did) and
                exited 0 after SIGINT
  events        the diagnostics/operational events naming the fault, and the ones showing the
                recovery, from vigil's --event-log (README "Events, topics and the HTTP API")
  lost beyond   seconds of media missing from the recordings, outside the fault's own window
                (inject .. undo), over the time the gate was asked to be open; the recordings'
                UTC timeline is read from the fragments' prft boxes (30 fps, exact)
  playable      files (FileSink clips, archive segments, an MP4 export) that ffprobe decodes
                with no error, and whose frame count matches their boxes
  archive       the SQLite catalog agrees with the segment files and with the store's objects

A cell fails when vigil did not survive, an event is missing, more than 1 s is lost beyond the
fault, a file is unplayable or the archive is inconsistent; the reason is printed per cell and
the exit status is 1. Faults that do not apply to a use case are "n/a"; cells whose peers are
missing here (no s3s-fs, no tmpfs, guests not built) are "skip" (a failure with --strict).

The seed use cases (all on one looping camera whose red box moves all the time, so that motion
detection and the inference stand-in see something in every sample and the gate stays open):
  door       topologies/door-sensor-to-files.json: MQTT door-sensor triggers every second -> files
  motion     scripts/fault-matrix/motion-to-video.json: motion -> VideoSink archive, --store s3
  inference  topologies/inference-roundtrip-to-files.json: HttpExtension -> MQTT -> decider
             (scripts/peers/inference-decider.py) -> trigger -> files

Environment: VIGIL (the binary; default target/debug/vigil), VIGIL_GUEST_DIR (built guest
components: motion_detector.wasm, spin.wasm, hog.wasm, trap.wasm; default: found under
target/*/build/vigil-*/out/guests or guest-modules/target), S3S_FS (the s3s-fs binary).
Needs ffmpeg/ffprobe, GStreamer's RTSP server (python3-gi), mosquitto, python3-pil/numpy
(scripts/setup-media.sh), s3s-fs (scripts/setup-s3.sh), and root for the tmpfs of disk-full.
Standard library only.
"""
import argparse
import errno
import glob
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime, timezone

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
PEERS = os.path.join(REPO, "scripts", "peers")
HERE = os.path.join(REPO, "scripts", "fault-matrix")
SYS_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ACCESS_KEY, SECRET_KEY, BUCKET = "AKIATEST", "secrettest", "vigil"
LOSS_LIMIT = 1.0          # seconds lost beyond a fault's own window before a cell fails
FPS = 30
GOP = 1.0                 # the camera clip's key frame interval (30 frames)
# Faults that end the RTSP session: a new session can only begin at a key frame, and the camera
# (like a real one after a reboot) starts again with a key frame no client connecting after its
# return can get, so its first GOP after the undo is the fault's own (unless --strict-gop).
SESSION_FAULTS = ("camera-kill", "camera-password", "camera-absent", "kill9-clip", "kill9-upload")


# ---------------------------------------------------------------------------------------------
# small helpers

def now():
    return time.time()


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text):
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError, TypeError):
        return None


def log(msg):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


_used_ports = set()


def free_port():
    """A loopback port free for TCP and UDP, below the ephemeral range (as the tests pick)."""
    for _ in range(2000):
        port = random.randint(20000, 32767)
        if port in _used_ports:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port, timeout=30.0):
    deadline = now() + timeout
    while now() < deadline:
        if port_open(port):
            return True
        time.sleep(0.05)
    return False


def http(method, url, body=None, timeout=10.0):
    """(status, bytes) of a request; status 0 when nothing answered."""
    data = None if body is None else (body if isinstance(body, bytes) else body.encode())
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def atomic_copy(src, dst):
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ---------------------------------------------------------------------------------------------
# processes (each one we start is ours: stopped by its pid, never by name)

class Proc:
    def __init__(self, name, args, logfile, env=None, cwd=REPO):
        self.name, self.args, self.logfile = name, args, logfile
        self.log = open(logfile, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=full_env, cwd=cwd, start_new_session=True)
        self.started = now()

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def send(self, sig):
        if self.alive():
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def kill9(self):
        self.send(signal.SIGKILL)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends `sig`, waits up to `timeout`, then SIGKILL. Returns (exit code, seconds, clean)."""
        if not self.alive():
            return self.p.returncode, 0.0, False
        t0 = now()
        self.send(signal.SIGCONT)
        self.send(sig)
        try:
            rc = self.p.wait(timeout)
            return rc, now() - t0, True
        except subprocess.TimeoutExpired:
            self.kill9()
            return self.p.returncode, now() - t0, False

    def close(self):
        if self.alive():
            self.kill9()
        try:
            self.log.close()
        except OSError:
            pass

    def tail(self, n=6):
        try:
            with open(self.logfile, "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()
            return " | ".join(lines[-n:])
        except OSError:
            return ""


# ---------------------------------------------------------------------------------------------
# fragmented MP4: the UTC timeline of each fragment (prft + trun), for media-loss measurement

def _boxes(b, start, end):
    off = start
    while off + 8 <= end:
        size = struct.unpack(">I", b[off:off + 4])[0]
        kind = b[off + 4:off + 8]
        hdr = 8
        if size == 1:
            if off + 16 > end:
                return
            size = struct.unpack(">Q", b[off + 8:off + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - off
        if size < hdr or off + size > end:
            yield kind, off, hdr, None          # truncated box
            return
        yield kind, off, hdr, size
        off += size


def mp4_fragments(path):
    """[(utc_start, utc_end, frames)] of the video track's complete fragments, and whether the
    file ends exactly at a complete box (nothing torn)."""
    with open(path, "rb") as f:
        b = f.read()
    timescale, video_track, trex_default = 90000, 1, 0
    frags, pending_prft, intact = [], None, True
    for kind, off, hdr, size in _boxes(b, 0, len(b)):
        if size is None:
            intact = False
            break
        body, end = off + hdr, off + size
        if kind == b"moov":
            for k2, o2, h2, s2 in _boxes(b, body, end):
                if s2 is None:
                    break
                if k2 == b"trak":
                    tid, ts, is_video = None, None, False
                    for k3, o3, h3, s3 in _boxes(b, o2 + h2, o2 + s2):
                        if s3 is None:
                            break
                        if k3 == b"tkhd":
                            v = b[o3 + h3]
                            tid = struct.unpack(">I", b[o3 + h3 + (20 if v == 1 else 12):][:4])[0]
                        if k3 == b"mdia":
                            for k4, o4, h4, s4 in _boxes(b, o3 + h3, o3 + s3):
                                if s4 is None:
                                    break
                                if k4 == b"mdhd":
                                    v = b[o4 + h4]
                                    ts = struct.unpack(">I", b[o4 + h4 + (20 if v == 1 else 12):][:4])[0]
                                if k4 == b"hdlr" and b[o4 + h4 + 8:o4 + h4 + 12] == b"vide":
                                    is_video = True
                    if is_video and tid is not None:
                        video_track, timescale = tid, ts or timescale
                if k2 == b"mvex":
                    for k3, o3, h3, s3 in _boxes(b, o2 + h2, o2 + s2):
                        if s3 and k3 == b"trex":
                            tid, _, dur = struct.unpack(">III", b[o3 + h3 + 4:o3 + h3 + 16])
                            if tid == video_track:
                                trex_default = dur
        elif kind == b"prft":
            v = b[body]
            ref = struct.unpack(">I", b[body + 4:body + 8])[0]
            ntp = struct.unpack(">Q", b[body + 8:body + 16])[0]
            pending_prft = (ref, (ntp >> 32) - 2208988800 + (ntp & 0xFFFFFFFF) / 2 ** 32) if v in (0, 1) else None
        elif kind == b"moof":
            frames, ticks = 0, 0
            for k2, o2, h2, s2 in _boxes(b, body, end):
                if s2 is None or k2 != b"traf":
                    continue
                tid, default_dur, runs = None, trex_default, []
                for k3, o3, h3, s3 in _boxes(b, o2 + h2, o2 + s2):
                    if s3 is None:
                        break
                    flags = int.from_bytes(b[o3 + h3 + 1:o3 + h3 + 4], "big")
                    p = o3 + h3 + 4
                    if k3 == b"tfhd":
                        tid = struct.unpack(">I", b[p:p + 4])[0]
                        q = p + 4
                        if flags & 0x01:
                            q += 8
                        if flags & 0x02:
                            q += 4
                        if flags & 0x08:
                            default_dur = struct.unpack(">I", b[q:q + 4])[0]
                    if k3 == b"trun":
                        runs.append((flags, p))
                if tid != video_track:
                    continue
                for flags, p in runs:
                    count = struct.unpack(">I", b[p:p + 4])[0]
                    q = p + 4
                    if flags & 0x01:
                        q += 4
                    if flags & 0x04:
                        q += 4
                    per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
                    for i in range(count):
                        if flags & 0x100:
                            ticks += struct.unpack(">I", b[q:q + 4])[0]
                        else:
                            ticks += default_dur
                        q += per
                    frames += count
            if pending_prft and pending_prft[0] == video_track and frames:
                start = pending_prft[1]
                frags.append([start, start + ticks / timescale, frames])
            pending_prft = None
        elif kind == b"mdat":
            pass
    # A moof whose mdat is missing or torn is not a complete fragment.
    if not intact and frags:
        frags.pop()
    return frags, intact


def merge(intervals, slack=0.05):
    out = []
    for s, e in sorted((s, e) for s, e in intervals if e > s):
        if out and s <= out[-1][1] + slack:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def uncovered(window, covered):
    """Parts of window [s, e] not in the merged `covered` intervals."""
    s, e = window
    gaps, cur = [], s
    for cs, ce in covered:
        if ce <= cur:
            continue
        if cs >= e:
            break
        if cs > cur:
            gaps.append([cur, min(cs, e)])
        cur = max(cur, ce)
        if cur >= e:
            break
    if cur < e:
        gaps.append([cur, e])
    return [g for g in gaps if g[1] - g[0] > 1e-6]


def overlap(a, b):
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def ffprobe(path):
    """(ok, frames, detail): ffprobe decodes every frame with no error."""
    try:
        r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=codec_name,nb_read_frames", "-of", "json", path],
                           capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False, 0, "ffprobe timed out"
    err = r.stderr.decode(errors="replace").strip()
    try:
        streams = json.loads(r.stdout or b"{}").get("streams", [])
        frames = int(streams[0].get("nb_read_frames", 0)) if streams else 0
    except (ValueError, IndexError):
        frames = 0
    if r.returncode != 0 or err:
        return False, frames, (err.splitlines() or [f"exit {r.returncode}"])[0][:160]
    if frames == 0:
        return False, 0, "no video frame"
    return True, frames, ""


# ---------------------------------------------------------------------------------------------
# events

class Events:
    def __init__(self, paths):
        self.items = []
        for run, path in enumerate(paths):
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for n, line in enumerate(lines):
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                props = v.get("properties", {})
                self.items.append({
                    "run": run, "line": n,
                    "kind": str(props.get("eventType", "")).rsplit(".", 1)[-1],
                    "class": "Diagnostics" if ".Diagnostics." in str(props.get("eventType", "")) else
                             ("Analytics" if ".Analytics." in str(props.get("eventType", "")) else "Operational"),
                    "subject": str(props.get("subject", "")),
                    "time": parse_time(props.get("eventTime")),
                    "body": v.get("body") if isinstance(v.get("body"), dict) else {},
                    "corr": (v.get("systemProperties") or {}).get("correlationId"),
                })


def line_count(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


# ---------------------------------------------------------------------------------------------
# the seed use cases

class Case:
    def __init__(self, key, title, topology, sink, mqtt=False, store=False, extension=False, guest=False):
        self.key, self.title, self.topology, self.sink = key, title, topology, sink
        self.mqtt, self.store, self.extension, self.guest = mqtt, store, extension, guest


CASES = {
    "door": Case("door", "sensor trigger → files", "topologies/door-sensor-to-files.json", "files", mqtt=True),
    "motion": Case("motion", "motion → video archive", "scripts/fault-matrix/motion-to-video.json", "archive",
                   store=True, guest=True),
    "inference": Case("inference", "inference → decision → files", "topologies/inference-roundtrip-to-files.json",
                      "files", mqtt=True, extension=True),
}


# ---------------------------------------------------------------------------------------------
# event predicates

def ev(kind, subject=None, test=None, label=None):
    """A predicate on an event, with a label for the table."""
    def match(e):
        if e["kind"] != kind:
            return False
        if subject and subject not in e["subject"]:
            return False
        return bool(test(e)) if test else True
    match.label = label or kind
    return match


def any_of(*preds):
    def match(e):
        return any(p(e) for p in preds)
    match.label = "|".join(p.label for p in preds)
    match.alternatives = True
    return match


CAMERA_DOWN = any_of(ev("NetworkError", "/sources/camera"), ev("MediaSessionEnded", "/sources/camera"),
                     ev("ProtocolError", "/sources/camera"))
CAMERA_UP = ev("MediaSessionEstablished", "/sources/camera")
INFER_EV = ev("Inference", "/processors/inferenceClient", label="Inference")
MOTION_EV = ev("Inference", "/processors/motion", label="Inference(motion)")


# ---------------------------------------------------------------------------------------------
# the faults: (key, title, applies, fault events [during], recovery events [after undo])
# Each inject/undo is a method of Cell named inject_<key>/undo_<key> (or a generic one).

class Fault:
    def __init__(self, key, title, applies, during=(), after=(), hold_max=12.0):
        self.key, self.title, self.applies = key, title, applies
        self.during, self.after, self.hold_max = list(during), list(after), hold_max


def _guest(detail_test, label):
    return ev("ModuleFault", "/processors/motion", lambda e: detail_test(str(e["body"].get("detail", "")).lower()),
              label=f"ModuleFault({label})")


FAULTS = [
    Fault("none", "none (control)", lambda c: True),
    Fault("camera-kill", "camera killed and back", lambda c: True, [CAMERA_DOWN], [CAMERA_UP]),
    Fault("camera-password", "camera wrong password", lambda c: True,
          [ev("AuthenticationError", "/sources/camera")], [CAMERA_UP]),
    Fault("camera-absent", "camera absent at start", lambda c: True, [CAMERA_DOWN], [CAMERA_UP]),
    Fault("broker-down", "broker down and back", lambda c: c.mqtt,
          [ev("NetworkError", "/broker", label="NetworkError(/broker)")],
          [ev("TriggerReceived", label="TriggerReceived(after)")]),
    Fault("store-down", "store down and back", lambda c: c.store,
          [ev("StorageError", "/archive/")], [ev("StorageRestored"), ev("SegmentUploaded")], hold_max=15.0),
    # Held until reported, up to 25 s: an upload in flight gives up at its deadline (10 s plus
    # a second per MiB), and the next segment completes up to 10 s into the freeze.
    Fault("store-frozen", "store frozen and back", lambda c: c.store,
          [ev("StorageError", "/archive/")], [ev("SegmentUploaded")], hold_max=25.0),
    Fault("kill9-clip", "kill -9 mid-clip", lambda c: True,
          [], [CAMERA_UP, ev("RecordingStarted")]),
    Fault("kill9-upload", "kill -9 mid-upload", lambda c: c.store,
          [], [CAMERA_UP, ev("SegmentUploaded", label="SegmentUploaded(pending)")]),
    Fault("disk-full", "disk full and freed", lambda c: True, [ev("StorageError")], []),
    Fault("guest-loop", "guest loops forever", lambda c: c.guest,
          [ev("ModuleSwapped"), _guest(lambda d: "deadline" in d, "deadline")], [ev("ModuleSwapped"), MOTION_EV]),
    Fault("guest-memory", "guest memory bomb", lambda c: c.guest,
          [ev("ModuleSwapped"), _guest(lambda d: "memory" in d or d.startswith("trap"), "memory")],
          [ev("ModuleSwapped"), MOTION_EV]),
    Fault("guest-trap", "guest traps", lambda c: c.guest,
          [ev("ModuleSwapped"), _guest(lambda d: d.startswith("trap"), "trap")], [ev("ModuleSwapped"), MOTION_EV]),
    Fault("ext-slow", "extension slow (12 s answers)", lambda c: c.extension,
          [ev("NetworkError", "/processors/inferenceClient", lambda e: e["body"].get("errorCode") == "timeout",
              label="NetworkError(timeout)")], [INFER_EV], hold_max=16.0),
    Fault("ext-503", "extension 503", lambda c: c.extension,
          [ev("ProtocolError", "/processors/inferenceClient", lambda e: str(e["body"].get("errorCode")) == "503",
              label="ProtocolError(503)")], [INFER_EV]),
    Fault("ext-garbage", "extension garbage", lambda c: c.extension,
          [ev("ProtocolError", "/processors/inferenceClient",
              lambda e: "json" in str(e["body"].get("detail", "")).lower(), label="ProtocolError(not JSON)")],
          [INFER_EV]),
    Fault("ext-down", "extension down", lambda c: c.extension,
          [ev("NetworkError", "/processors/inferenceClient",
              lambda e: e["body"].get("errorCode") == "connectionFailed", label="NetworkError(connectionFailed)")],
          [INFER_EV]),
]
FAULT_BY_KEY = {f.key: f for f in FAULTS}

QUICK = [("door", "camera-kill"), ("door", "broker-down"), ("motion", "store-down"),
         ("motion", "guest-trap"), ("inference", "ext-503"), ("motion", "kill9-upload")]


# ---------------------------------------------------------------------------------------------
# environment: binary, guests, clip, s3s-fs

class Env:
    def __init__(self, args):
        self.args = args
        self.vigil = os.environ.get("VIGIL") or os.path.join(REPO, "target", "debug", "vigil")
        self.vigil_info = self.vigil
        self.work = args.work or tempfile.mkdtemp(prefix="vigil-fault-matrix-")
        os.makedirs(self.work, exist_ok=True)
        self.cache = os.path.join(self.work, "wasm-cache")
        os.makedirs(self.cache, exist_ok=True)
        self.guests = self.find_guests()
        self.s3s = self.find_s3s()
        self.snapshot()
        self.can_mount = self.check_mount()
        self.clip = None

    def find_guests(self):
        names = ["motion_detector.wasm", "spin.wasm", "hog.wasm", "trap.wasm"]
        candidates = []
        if os.environ.get("VIGIL_GUEST_DIR"):
            candidates.append(os.environ["VIGIL_GUEST_DIR"])
        for prof in ("debug", "release"):
            candidates += sorted(glob.glob(os.path.join(REPO, "target", prof, "build", "vigil-*", "out", "guests")),
                                 key=os.path.getmtime, reverse=True)
        candidates.append(os.path.join(REPO, "guest-modules", "target", "wasm32-wasip2", "release"))
        for d in candidates:
            if all(os.path.exists(os.path.join(d, n)) for n in names):
                return d
        return None

    def snapshot(self):
        """Copies the binary and the guests into the work folder, so that a build relinking
        target/ during the run cannot mix two versions in one matrix."""
        if not os.access(self.vigil, os.X_OK):
            return
        st = os.stat(self.vigil)
        self.vigil_info = f"{self.vigil} ({st.st_size} bytes, built {iso(st.st_mtime)})"
        copy = os.path.join(self.work, "vigil")
        shutil.copy2(self.vigil, copy)
        self.vigil = copy
        if self.guests:
            dest = os.path.join(self.work, "guests")
            os.makedirs(dest, exist_ok=True)
            for n in ("motion_detector.wasm", "spin.wasm", "hog.wasm", "trap.wasm"):
                shutil.copy2(os.path.join(self.guests, n), dest)
            self.guests = dest

    def find_s3s(self):
        for p in (os.environ.get("S3S_FS"), os.path.expanduser("~/.cargo/bin/s3s-fs"), shutil.which("s3s-fs")):
            if p and os.path.exists(p):
                return p
        return None

    def check_mount(self):
        d = os.path.join(self.work, ".mount-check")
        os.makedirs(d, exist_ok=True)
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", d],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", d], capture_output=True)
        os.rmdir(d)
        return ok

    def make_clip(self):
        """640x360, 30 fps, 20 s, IDR every 30 frames, no B-frames: the test clips' scene, with
        the red box moving to and fro along the road the whole time."""
        path = os.path.join(self.work, "busy-h264.mp4")
        if os.path.exists(path):
            self.clip = path
            return
        w, h = 640, 360
        bg = (f"color=c=0x4a5d3a:s={w}x{h}:r={FPS}:d=20,"
              f"drawbox=x=0:y=ih*0.6:w=iw:h=ih*0.25:color=0x2a2a2a:t=fill,"
              f"drawbox=x=iw*0.1:y=ih*0.2:w=iw*0.25:h=ih*0.35:color=0x8b4513:t=fill,"
              f"drawbox=x=iw*0.6:y=ih*0.15:w=iw*0.3:h=ih*0.4:color=0xa0a0a0:t=fill")
        obj = f"color=c=0xff3030:s={w // 12}x{h // 6}:r={FPS}:d=20"
        vf = "[0][1]overlay=x='(W-w)*abs(mod(t,5)/2.5-1)':y='H*0.62',format=yuv420p[v]"
        r = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                            "-f", "lavfi", "-i", bg, "-f", "lavfi", "-i", obj, "-filter_complex", vf,
                            "-map", "[v]", "-t", "20", "-an", "-c:v", "libx264", "-preset", "veryfast",
                            "-profile:v", "main", "-bf", "0", "-g", "30", "-keyint_min", "30",
                            "-sc_threshold", "0", "-x264-params", "open-gop=0", "-movflags", "+faststart",
                            path], capture_output=True)
        if r.returncode != 0:
            raise RuntimeError("ffmpeg could not make the clip: " + r.stderr.decode(errors="replace")[-400:])
        self.clip = path


# ---------------------------------------------------------------------------------------------
# one cell

class Skip(Exception):
    pass


class Cell:
    def __init__(self, env, case, fault, timing):
        self.env, self.case, self.fault, self.t = env, case, fault, timing
        self.dir = os.path.join(env.work, f"{case.key}-{fault.key}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.pipeline = case.key
        self.peers = {}
        self.retired = []              # peers replaced or killed by a fault (closed at the end)
        self.vigil = None
        self.vigil_runs = []           # (Proc, event log)
        self.marks = {}                # name -> wall time
        self.log_marks = {}            # name -> (run index, line count)
        self.notes = []
        self.reasons = []
        self.died = None
        self.expect_dead = False
        self.camera_starts = 0
        self.stop_result = None
        self.mounted = None
        self.publisher = None
        self.pending_segment = None
        self.kill_state = None
        self.ports = {"camera": free_port(), "http": free_port()}
        if case.mqtt:
            self.ports["mqtt"] = free_port()
        if case.store:
            self.ports["s3"] = free_port()
        if case.extension:
            self.ports["infer"] = free_port()
        self.out = os.path.join(self.dir, "out")
        self.archive = os.path.join(self.dir, "archive")
        self.store_dir = os.path.join(self.dir, "s3data")
        # s3s-fs serves each folder as a bucket; Vigil does not create buckets.
        os.makedirs(os.path.join(self.store_dir, BUCKET), exist_ok=True)
        self.module = os.path.join(self.dir, "motion.wasm")

    # -- peers ------------------------------------------------------------------------------

    def start_camera(self, password="vigil"):
        for attempt in range(6):
            self.camera_starts += 1
            logfile = os.path.join(self.dir, f"camera-{self.camera_starts}.log")
            p = Proc("camera", [SYS_PYTHON, os.path.join(PEERS, "rtsp-camera.py"), self.env.clip,
                                "--port", str(self.ports["camera"]), "--mount", "/camera",
                                "--user", "vigil", "--password", password], logfile)
            deadline = now() + 10
            while now() < deadline and p.alive():
                try:
                    with open(logfile, errors="replace") as f:
                        if "ready:" in f.read():
                            self.peers["camera"] = p
                            return p
                except OSError:
                    pass
                time.sleep(0.05)
            p.close()
            time.sleep(0.5 + attempt * 0.5)
        raise RuntimeError("the RTSP camera did not start: " + p.tail())

    def start_broker(self):
        p = Proc("mosquitto", ["mosquitto", "-p", str(self.ports["mqtt"])], os.path.join(self.dir, "mosquitto.log"))
        if not wait_port(self.ports["mqtt"], 10):
            raise RuntimeError("mosquitto did not start: " + p.tail())
        self.peers["broker"] = p

    def start_store(self):
        if not self.env.s3s:
            raise Skip("s3s-fs not installed (scripts/setup-s3.sh)")
        os.makedirs(self.store_dir, exist_ok=True)
        p = Proc("s3s-fs", [self.env.s3s, "--host", "127.0.0.1", "--port", str(self.ports["s3"]),
                            "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, self.store_dir],
                 os.path.join(self.dir, "s3s-fs.log"))
        if not wait_port(self.ports["s3"], 15):
            raise RuntimeError("s3s-fs did not start: " + p.tail())
        self.peers["store"] = p

    def start_infer(self):
        p = Proc("infer", [SYS_PYTHON, os.path.join(PEERS, "infer-server.py"), "--port", str(self.ports["infer"])],
                 os.path.join(self.dir, "infer.log"))
        if not wait_port(self.ports["infer"], 30):
            raise RuntimeError("infer-server did not start: " + p.tail())
        self.peers["infer"] = p

    def start_decider(self):
        p = Proc("decider", [SYS_PYTHON, os.path.join(PEERS, "inference-decider.py"), "--port", str(self.ports["mqtt"]),
                             "--pipeline", self.pipeline, "--labels", "truck"], os.path.join(self.dir, "decider.log"))
        self.peers["decider"] = p

    def retire(self, name):
        """kill -9 of a peer (the fault), kept for the final cleanup."""
        p = self.peers.pop(name)
        p.kill9()
        self.retired.append(p)

    def infer_control(self, faults):
        status, _ = http("POST", f"http://127.0.0.1:{self.ports['infer']}/control", json.dumps(faults))
        if status != 200:
            raise RuntimeError(f"infer-server /control answered {status}")

    # -- vigil ------------------------------------------------------------------------------

    def vigil_args(self, http_port, event_log):
        c = self.case
        a = [self.env.vigil, "run", os.path.join(REPO, c.topology), "--pipeline-name", self.pipeline,
             "--set", f"rtspUrl=rtsp://127.0.0.1:{self.ports['camera']}/camera",
             "--event-log", event_log, "--http", f"127.0.0.1:{http_port}"]
        if c.key == "door":
            a += ["--set", f"outputDirectory={self.out}", "--set", "minActivation=PT10S",
                  "--set", "maxActivation=PT5M"]
        elif c.key == "inference":
            a += ["--set", f"outputDirectory={self.out}", "--set", "minActivation=PT10S",
                  "--set", "maxActivation=PT5M", "--set", "samplesPerSecond=2",
                  "--set", f"inferencingUrl=http://127.0.0.1:{self.ports['infer']}/score"]
        elif c.key == "motion":
            a += ["--set", f"motionModule={self.module}", "--archive", self.archive,
                  "--store", f"s3://{BUCKET}/fm", "--upload-wait-s", "20"]
        if c.mqtt:
            a += ["--mqtt", f"127.0.0.1:{self.ports['mqtt']}"]
        return a

    def vigil_env(self):
        e = {"VIGIL_CACHE_DIR": self.env.cache, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        if self.case.store:
            e.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.ports['s3']}", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                      "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"})
        return e

    def start_vigil(self):
        n = len(self.vigil_runs)
        if n:
            self.ports["http"] = free_port()
        event_log = os.path.join(self.dir, f"events-{n}.jsonl")
        p = Proc(f"vigil-{n}", self.vigil_args(self.ports["http"], event_log), os.path.join(self.dir, f"vigil-{n}.log"),
                 env=self.vigil_env())
        self.vigil = p
        self.vigil_runs.append((p, event_log))
        self.expect_dead = False
        return p

    @property
    def event_log(self):
        return self.vigil_runs[-1][1]

    def mark(self, name):
        self.marks[name] = now()
        self.log_marks[name] = (len(self.vigil_runs) - 1, line_count(self.event_log) if self.vigil_runs else 0)

    def events(self):
        return Events([log for _, log in self.vigil_runs])

    def events_since(self, mark):
        run, line = self.log_marks.get(mark, (0, 0))
        return [e for e in self.events().items if e["run"] > run or (e["run"] == run and e["line"] >= line)]

    def check_alive(self):
        if self.expect_dead:
            return True
        if self.vigil and not self.vigil.alive() and self.died is None:
            self.died = (now(), self.vigil.p.returncode)
            self.reasons.append(f"vigil exited ({self.vigil.p.returncode}) during the run: {self.vigil.tail(3)}")
        return self.died is None

    def sleep(self, seconds):
        deadline = now() + seconds
        while now() < deadline:
            self.check_alive()
            time.sleep(min(0.1, max(0.0, deadline - now())))

    def wait_event(self, pred, since=None, timeout=20.0, hold_min=0.0):
        """Waits (keeping an eye on vigil) until an event matching `pred` is logged after mark
        `since`; at least hold_min seconds. True when seen."""
        t0 = now()
        seen = False
        while True:
            if not seen:
                items = self.events_since(since) if since else self.events().items
                seen = any(pred(e) for e in items)
            if seen and now() - t0 >= hold_min:
                return True
            if now() - t0 >= timeout:
                return seen
            self.check_alive()
            time.sleep(0.1)

    # -- triggers of the door case ----------------------------------------------------------

    def start_publisher(self):
        cell = self
        topic = f"vigil/{self.pipeline}/inputs/recordingTrigger"

        class Publisher(threading.Thread):
            def __init__(self):
                super().__init__(daemon=True)
                self.stopped = threading.Event()
                self.sent = []

            def run(self):
                n = 0
                while not self.stopped.is_set():
                    n += 1
                    mid = f"fm-{n}"
                    try:
                        r = subprocess.run(["mosquitto_pub", "-p", str(cell.ports["mqtt"]), "-t", topic, "-q", "1",
                                            "-m", json.dumps({"messageId": mid, "door": "open"})],
                                           capture_output=True, timeout=3)
                        rc = r.returncode
                    except subprocess.TimeoutExpired:
                        rc = -1
                    self.sent.append((mid, now(), rc))
                    self.stopped.wait(1.0)

        self.publisher = Publisher()
        self.publisher.start()

    # -- disk -------------------------------------------------------------------------------

    def mount_disk(self):
        if not self.env.can_mount:
            raise Skip("cannot mount a tmpfs here (needs root)")
        disk = os.path.join(self.dir, "disk")
        os.makedirs(disk)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", disk], capture_output=True)
        if r.returncode != 0:
            raise Skip("mount tmpfs failed: " + r.stderr.decode(errors="replace").strip())
        self.mounted = disk
        self.out = os.path.join(disk, "out")
        self.archive = os.path.join(disk, "archive")

    def unmount_disk(self):
        if not self.mounted:
            return
        keep = os.path.join(self.dir, "disk-copy")
        try:
            shutil.copytree(self.mounted, keep, ignore=shutil.ignore_patterns("filler"))
        except (OSError, shutil.Error):
            pass
        subprocess.run(["umount", self.mounted], capture_output=True)
        self.mounted = None

    # -- the run ----------------------------------------------------------------------------

    def run(self):
        c, f = self.case, self.fault
        if f.key.startswith("guest"):
            if not self.env.guests:
                raise Skip("guest components not built (VIGIL_GUEST_DIR; cargo build builds them)")
        if c.guest:
            if not self.env.guests:
                raise Skip("motion_detector.wasm not found (VIGIL_GUEST_DIR)")
            atomic_copy(os.path.join(self.env.guests, "motion_detector.wasm"), self.module)
        if f.key == "disk-full":
            self.mount_disk()
        # Peers.
        if c.mqtt:
            self.start_broker()
        if c.store:
            self.start_store()
        if c.extension:
            self.start_infer()
            self.start_decider()
        if f.key != "camera-absent":
            self.start_camera()
        # Vigil.
        self.mark("start")
        if f.key == "camera-absent":
            self.mark("inject")     # the fault is there from vigil's first breath
        self.start_vigil()
        if not wait_port(self.ports["http"], 30):
            self.check_alive()
            raise RuntimeError("vigil did not listen: " + self.vigil.tail())
        if c.key == "door":
            self.start_publisher()
        if f.key == "camera-absent":
            self.wait_event(CAMERA_DOWN, timeout=15, hold_min=self.t["hold"])
            self.start_camera()
            self.mark("undo")
        else:
            if not self.wait_event(ev("RecordingStarted"), timeout=40):
                self.reasons.append("nothing recorded before the fault (no RecordingStarted in 40 s)")
            self.sleep(self.t["baseline"])
            if c.sink == "archive" and f.key != "kill9-upload":
                # Clips end every maximumActivationTime: start the fault just after a clip
                # starts, so that the next boundary between clips is ~9 s later.
                self.mark("aligned")
                if self.wait_event(ev("RecordingStarted"), since="aligned", timeout=15):
                    self.sleep(1.0)
            getattr(self, "fault_" + f.key.replace("-", "_"), self.fault_generic)()
        # After the fault: the recovery, then more recording.
        for pred in f.after:
            self.wait_event(pred, since="undo", timeout=20)
        self.sleep(self.t["after"])
        if c.sink == "archive" and self.check_alive():
            self.export()
        self.mark("stop")
        if self.publisher:
            self.publisher.stopped.set()
        alive = self.check_alive()
        rc, took, clean = self.vigil.stop(signal.SIGINT, timeout=45)
        self.stop_result = (rc, took, clean)
        if alive and (not clean or rc != 0):
            self.reasons.append(f"vigil did not stop cleanly after SIGINT (exit {rc}, {took:.1f} s)")
        self.notes.append(f"stopped in {took:.1f} s")

    # -- faults -----------------------------------------------------------------------------

    def hold(self):
        """Holds a fault at least `hold` s, and until its first event is seen (bounded)."""
        f = self.fault
        t0 = now()
        if f.during:
            self.wait_event(f.during[-1], since="inject", timeout=f.hold_max, hold_min=self.t["hold"])
        self.sleep(max(0.0, self.t["hold"] - (now() - t0)))

    def fault_generic(self):
        self.mark("inject")
        self.mark("undo")

    def fault_none(self):
        self.sleep(self.t["hold"])
        self.mark("inject")
        self.mark("undo")

    def fault_camera_kill(self):
        self.mark("inject")
        self.retire("camera")
        self.hold()
        self.start_camera()
        self.mark("undo")

    def fault_camera_password(self):
        self.mark("inject")
        self.retire("camera")
        self.start_camera(password="changed-by-the-fault")
        self.hold()
        self.retire("camera")
        self.start_camera()
        self.mark("undo")

    def fault_broker_down(self):
        self.mark("inject")
        self.retire("broker")
        self.hold()
        self.start_broker()
        self.mark("undo")
        decider = self.peers.get("decider")
        if decider and not decider.alive():
            self.notes.append("decider exited with the broker; restarted")
            self.start_decider()
        # The README's promise: a trigger published 2 s after the broker's return records.
        if self.case.key == "door":
            self.sleep(2.5)

    def fault_store_down(self):
        self.mark("inject")
        self.retire("store")
        self.hold()
        self.start_store()
        self.mark("undo")

    def fault_store_frozen(self):
        self.mark("inject")
        self.peers["store"].send(signal.SIGSTOP)
        self.hold()
        self.peers["store"].send(signal.SIGCONT)
        self.mark("undo")

    def _restart_after_kill(self):
        self.sleep(1.0)
        self.mark("undo")
        self.start_vigil()
        self.log_marks["undo"] = (len(self.vigil_runs) - 1, 0)
        if not wait_port(self.ports["http"], 30):
            self.check_alive()
            self.reasons.append("vigil did not listen after the restart: " + self.vigil.tail())

    def open_segments(self):
        try:
            con = sqlite3.connect(f"file:{os.path.join(self.archive, 'catalog.sqlite3')}?mode=ro", uri=True, timeout=1)
            n = con.execute("SELECT count(*) FROM segments WHERE recording = 1").fetchone()[0]
            con.close()
            return n
        except sqlite3.Error:
            return 0

    def _kill(self):
        old = self.vigil
        self.check_alive()
        self.expect_dead = True
        old.kill9()
        # What the kill left: files torn at their tail, or intact; segments left open.
        files = self.media_files()
        torn = [os.path.basename(p) for p in files if not mp4_fragments(p)[1]]
        self.kill_state = {"files": [os.path.basename(p) for p in files], "torn": torn}
        note = f"kill -9 left {len(files)} file(s), {len(torn)} torn"
        if self.case.sink == "archive":
            self.kill_state["open_segments"] = self.open_segments()
            note += f", {self.kill_state['open_segments']} segment(s) open in the catalog"
        self.notes.append(note)

    def unread_bytes(self, port):
        """Bytes received and not yet read by the server listening on `port` (its accepted
        sockets' rx_queue in /proc/net/tcp): a request in flight to a frozen server."""
        total = 0
        try:
            with open("/proc/net/tcp") as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    local, state, queues = parts[1], parts[3], parts[4]
                    if state == "01" and int(local.split(":")[1], 16) == port:
                        total += int(queues.split(":")[1], 16)
        except (OSError, ValueError, IndexError):
            pass
        return total

    def fault_kill9_clip(self):
        self.mark("inject")
        self._kill()
        self._restart_after_kill()

    def fault_kill9_upload(self):
        db = os.path.join(self.archive, "catalog.sqlite3")
        deadline = now() + 25
        found = None
        while now() < deadline and found is None:
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
                row = con.execute("SELECT path FROM segments WHERE recording = 0 AND uploaded = 0 "
                                  "ORDER BY id LIMIT 1").fetchone()
                con.close()
                found = row[0] if row else None
            except sqlite3.Error:
                pass
            if found is None:
                self.check_alive()
                time.sleep(0.02)
        # Freeze the store so that the upload the keeper starts (it looks twice a second) is in
        # flight, its bytes unread by the store, when vigil is killed.
        store = self.peers["store"]
        store.send(signal.SIGSTOP)
        inflight, t0 = 0, now()
        while now() - t0 < 2.0 and inflight == 0:
            inflight = self.unread_bytes(self.ports["s3"])
            time.sleep(0.02)
        self.mark("inject")
        if found is None:
            self.reasons.append("no completed segment waited for upload within 25 s: killed anyway")
        else:
            key = os.path.join(self.store_dir, BUCKET, "fm", "motion", os.path.basename(found))
            self.pending_segment = os.path.basename(found)
        self._kill()
        store.send(signal.SIGCONT)
        if found is not None:
            self.notes.append(f"killed with {self.pending_segment} complete, "
                              f"{'already in the store' if os.path.exists(key) else 'not in the store'}, "
                              + (f"{inflight} bytes of a request in flight to the store" if inflight
                                 else "no request in flight to the store"))
        self._restart_after_kill()

    def fault_disk_full(self):
        self.mark("inject")
        filler = os.path.join(self.mounted, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for chunk in (1 << 20, 4096, 512):      # until not even 512 bytes fit
                block = b"\0" * chunk
                try:
                    while True:
                        os.write(fd, block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)
        st = os.statvfs(self.mounted)
        self.notes.append(f"disk filled: {st.f_bavail * st.f_frsize} bytes left")
        self.hold()
        os.unlink(filler)
        self.mark("undo")

    def _swap(self, name):
        atomic_copy(os.path.join(self.env.guests, name), self.module)

    def _guest(self, name):
        self.mark("inject")
        self._swap(name)
        self.hold()
        self._swap("motion_detector.wasm")
        self.mark("undo")

    def fault_guest_loop(self):
        self._guest("spin.wasm")

    def fault_guest_memory(self):
        self._guest("hog.wasm")

    def fault_guest_trap(self):
        self._guest("trap.wasm")

    def _ext(self, faults):
        self.mark("inject")
        self.infer_control(faults)
        self.hold()
        self.infer_control({})
        self.mark("undo")

    def fault_ext_slow(self):
        self._ext({"delay_ms": 12000})

    def fault_ext_503(self):
        self._ext({"status": 503, "retry_after": "1"})

    def fault_ext_garbage(self):
        self._ext({"garbage": True})

    def fault_ext_down(self):
        self.mark("inject")
        self.retire("infer")
        self.hold()
        self.start_infer()
        self.mark("undo")

    # -- archive export ---------------------------------------------------------------------

    def export(self):
        start = self.marks["start"]
        end = now() - 1.5
        url = (f"http://127.0.0.1:{self.ports['http']}/api/videos/motion/download.mp4?"
               f"startTime={iso(start)}&endTime={iso(end)}")
        status, body = http("GET", url, timeout=60)
        if status == 200 and body:
            with open(os.path.join(self.dir, "export.mp4"), "wb") as fh:
                fh.write(body)
        else:
            self.reasons.append(f"MP4 export answered {status}")

    # -- measurement ------------------------------------------------------------------------

    def media_files(self):
        if self.case.sink == "archive":
            return sorted(glob.glob(os.path.join(self.archive, "videos", "*", "*.mp4")))
        return sorted(glob.glob(os.path.join(self.out, "*.mp4")))

    def analyse(self):
        res = {"case": self.case.key, "fault": self.fault.key, "status": "pass", "notes": self.notes,
               "reasons": self.reasons, "marks": {k: iso(v) for k, v in self.marks.items()}}
        f = self.fault
        # Survival.
        survived = self.died is None and self.stop_result is not None and self.stop_result[2] \
            and self.stop_result[0] == 0
        res["survived"] = bool(survived)
        # Events.
        events = self.events()
        inject_mark, undo_mark = self.log_marks.get("inject"), self.log_marks.get("undo")

        def after(mark, items):
            run, line = mark
            return [e for e in items if e["run"] > run or (e["run"] == run and e["line"] >= line)]

        during = after(inject_mark, events.items) if inject_mark else []
        post = after(undo_mark, events.items) if undo_mark else []
        seen, missing = [], []

        def found(pred, pool):
            """The label of what matched `pred` in pool (the kinds seen, for alternatives), or None."""
            hits = [e for e in pool if pred(e)]
            if not hits:
                return None
            if getattr(pred, "alternatives", False):
                return "+".join(sorted({e["kind"] for e in hits}))
            return pred.label

        for pred in f.during:
            label = found(pred, during)
            if label:
                seen.append(label)
            else:
                missing.append(pred.label)
        for pred in f.after:
            label = pred.label
            pool = post
            if f.key == "broker-down" and self.case.key == "door" and self.publisher:
                # A trigger published 2 s or more after the broker's return, received.
                late = [mid for mid, t, rc in self.publisher.sent if rc == 0 and t >= self.marks["undo"] + 2.0]
                ok = any(e["kind"] == "TriggerReceived" and e["corr"] in late for e in post)
                label = "TriggerReceived(published 2 s after)"
                (seen if ok else missing).append(label)
                continue
            if f.key == "kill9-upload" and label.startswith("SegmentUploaded") and self.pending_segment:
                ok = any(e["kind"] == "SegmentUploaded" and str(e["body"].get("key", "")).endswith(self.pending_segment)
                         for e in post)
                (seen if ok else missing).append(label)
                continue
            hit = found(pred, pool)
            if hit:
                seen.append(hit)
            else:
                missing.append(label)
        if f.key.startswith("kill9"):
            ks = self.kill_state or {}
            if self.case.sink == "archive":
                repaired = any(e["kind"] == "ArchiveRepaired" for e in post)
                due = ks.get("open_segments", 0) or ks.get("torn")
                if repaired:
                    seen.append("ArchiveRepaired")
                elif due:
                    missing.append(f"ArchiveRepaired ({ks.get('open_segments', 0)} segment(s) left open)")
                else:
                    seen.append("(no segment open: no repair due)")
            else:
                torn = ks.get("torn", [])
                rec = [e for e in post if e["kind"] in ("RecordingRecovered", "RecordingUnplayable")]
                if rec:
                    seen.append("RecordingRecovered")
                elif torn:
                    missing.append(f"RecordingRecovered (torn: {', '.join(torn)})")
                else:
                    announced = {os.path.basename(str(e["body"].get("outputLocation", ""))) for e in events.items
                                 if e["kind"] == "RecordingAvailable"}
                    silent = [n for n in ks.get("files", []) if n not in announced]
                    seen.append("(files intact: no repair due)")
                    if silent:
                        self.notes.append(f"the file the kill left open was never announced "
                                          f"(no RecordingAvailable/RecordingRecovered): {', '.join(silent)}")
        if f.key == "disk-full" and self.case.sink == "files":
            ok = any(e["kind"] == "RecordingStarted" for e in post)
            (seen if ok else missing).append("RecordingStarted(after)")
        res["events_seen"], res["events_missing"] = seen, missing
        for m in missing:
            self.reasons.append(f"missing event: {m}")
        kinds = {}
        for e in events.items:
            if e["class"] == "Diagnostics":
                kinds[e["kind"] + " " + e["subject"].rsplit("/", 1)[-1]] = kinds.get(e["kind"] + " " + e["subject"].rsplit("/", 1)[-1], 0) + 1
        res["diagnostics"] = kinds
        # Media.
        files = self.media_files()
        frags, playable, bad, clips, stretched = [], 0, [], {}, []
        for p in files:
            fr, intact = mp4_fragments(p)
            for x in fr:
                a, b, n = x
                # The camera's frames are exactly 1/30 s apart: a fragment covers its frames, not
                # a duration its last frame was stretched to (over media that never came).
                if b - a > n / FPS + 0.1:
                    stretched.append(f"{os.path.basename(p)}: {n} frames from {iso(a)[11:]} last {b - a:.2f} s")
                    x[1] = a + n / FPS
                frags.append(tuple(x))
            if fr:
                # A clip: a FileSink file, or an archive clip's segments (<clip>-<seq>.mp4).
                key = os.path.basename(p).split("-")[0] if self.case.sink == "archive" else p
                lo, hi = clips.get(key, (fr[0][0], fr[-1][1]))
                clips[key] = (min(lo, fr[0][0]), max(hi, fr[-1][1]))
            ok, frames, detail = ffprobe(p)
            boxes = sum(x[2] for x in fr)
            if ok and frames != boxes:
                ok, detail = False, f"ffprobe decodes {frames} frames, its fragments hold {boxes}"
            if ok and not intact:
                ok, detail = False, "torn at its end"
            if ok:
                playable += 1
            else:
                bad.append(f"{os.path.basename(p)}: {detail}")
        if stretched:
            res["stretched"] = stretched
            msg = "a fragment's last frame lasts over missing media (" + "; ".join(stretched[:3]) + ")"
            if self.case.sink == "archive":
                self.reasons.append("archive: " + msg)
            else:
                self.notes.append(msg)
        export = os.path.join(self.dir, "export.mp4")
        if os.path.exists(export):
            files.append(export)
            ok, frames, detail = ffprobe(export)
            if ok:
                playable += 1
                res["export_frames"] = frames
            else:
                bad.append(f"export.mp4: {detail}")
        res["files"], res["playable"] = len(files), playable
        for b in bad:
            self.reasons.append(f"unplayable: {b}")
        if not files:
            self.reasons.append("no file recorded")
        covered = merge([(s, e) for s, e, _ in frags])
        res["recorded_s"] = round(sum(e - s for s, e in covered), 2)
        fault_win = (self.marks.get("inject", 0), self.marks.get("undo", 0))
        if f.key == "camera-absent":
            fault_win = (self.marks["start"], self.marks["undo"])
        res["fault_s"] = round(fault_win[1] - fault_win[0], 2)
        if f.key in SESSION_FAULTS and not self.env.args.strict_gop:
            fault_win = (fault_win[0], fault_win[1] + GOP)
            res["gop_allowance"] = GOP
        if covered:
            first = covered[0][0] if f.key != "camera-absent" else self.marks["start"]
            if f.key != "camera-absent" and first > fault_win[0] - 1:
                self.reasons.append(f"baseline not recorded: first media {first - fault_win[0]:+.1f} s from the fault")
            window = (first, self.marks["stop"] - 1.5)
            gaps = uncovered(window, covered)
            lost = sum(e - s for s, e in gaps)
            in_fault = sum(overlap(g, fault_win) for g in gaps)
            # A gap from one clip's end to the next clip's start, at most a GOP, away from the
            # fault: the gate's own boundary between back-to-back activations (also in the
            # control), reported apart rather than charged to the fault.
            ends, starts = [c[1] for c in clips.values()], [c[0] for c in clips.values()]
            near = (fault_win[0] - 1.0, fault_win[1] + 1.0)
            # (A boundary the end of the measured window cuts short counts too.)
            boundary = [g for g in gaps if g[1] - g[0] <= 1.05 and (f.key == "none" or overlap(g, near) == 0)
                        and any(abs(e - g[0]) < 0.002 for e in ends)
                        and (any(abs(s - g[1]) < 0.002 for s in starts) or abs(g[1] - window[1]) < 0.002)]
            at_boundaries = sum(e - s for s, e in boundary)
            beyond = lost - in_fault - at_boundaries
            res["lost_s"], res["lost_in_fault_s"], res["lost_beyond_s"] = round(lost, 2), round(in_fault, 2), round(beyond, 2)
            res["lost_at_clip_boundaries_s"] = round(at_boundaries, 2)
            ref = fault_win[0]
            res["gaps"] = [f"{s - ref:+.2f}..{e - ref:+.2f} s" + (" (clip boundary)" if [s, e] in boundary else "")
                           for s, e in gaps if e - s > 0.05]
            if gaps:
                self.notes.append("gaps (from inject): " + ", ".join(res["gaps"][:6]))
            if boundary:
                self.notes.append(f"{at_boundaries:.2f} s lost between back-to-back clips, away from the fault "
                                  f"(the next clip starts at the key frame after the previous one's end)")
            # How the return after the fault splits: the session back (or the restart), then
            # the first media recorded (the camera's next key frame, a file's retry).
            undo = self.marks.get("undo")
            if undo and f.key != "none":
                back = [e["time"] for e in post if CAMERA_UP(e) and e["time"]]
                spanning = [s for s, e in covered if s < undo - 0.05 and e >= undo]
                later = [s for s, e in covered if s >= undo - 0.05]
                parts = []
                if back and (f.key.startswith("camera") or f.key.startswith("kill9")):
                    parts.append(f"session {min(back) - undo:+.2f} s after the undo")
                if spanning:
                    parts.append("media never stopped at the undo")
                elif later:
                    parts.append(f"media from {min(later) - undo:+.2f} s")
                if parts:
                    self.notes.append("return: " + ", ".join(parts))
            if beyond > LOSS_LIMIT:
                self.reasons.append(f"{beyond:.2f} s lost beyond the fault's {res['fault_s']:.1f} s "
                                    f"(gaps from inject: {', '.join(res['gaps'][:4])})")
        else:
            res["lost_beyond_s"] = None
        # Archive.
        if self.case.sink == "archive":
            problems, info = check_archive(self.archive, self.store_dir if self.case.store else None, "fm")
            res["archive_problems"], res["archive_info"] = problems, info
            res["archive_ok"] = not problems and not stretched
            for p in problems[:6]:
                self.reasons.append(f"archive: {p}")
            if len(problems) > 6:
                self.reasons.append(f"archive: … {len(problems) - 6} more")
            self.notes.append(info)
        else:
            res["archive_ok"] = None
        if not res["survived"] and not any("vigil" in r for r in self.reasons):
            self.reasons.append("vigil did not survive")
        res["status"] = "fail" if self.reasons else "pass"
        return res

    def cleanup(self):
        if self.publisher:
            self.publisher.stopped.set()
        for p in [r[0] for r in self.vigil_runs] + list(self.peers.values()) + self.retired:
            try:
                if p in self.retired or p.name.startswith("vigil"):
                    p.close()
                else:
                    p.stop(signal.SIGTERM, 5)
                    p.close()
            except Exception as e:  # one peer's trouble must not leave the others running
                log(f"cleanup of {p.name} (pid {p.pid}): {e}")
        self.peers.clear()


def check_archive(archive, store_dir, prefix):
    """(problems, summary): the catalog against the segment files and the store's objects."""
    problems = []
    db = os.path.join(archive, "catalog.sqlite3")
    if not os.path.exists(db):
        return ["no catalog.sqlite3"], "no catalog"
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        rows = con.execute("SELECT id, video, clip, seq, path, start_ns, end_ns, bytes, init_len, sha256, recording, "
                           "local, uploaded FROM segments ORDER BY id").fetchall()
        frag_rows = con.execute("SELECT segment, offset, len, start_ns, end_ns FROM fragments "
                                "ORDER BY segment, offset").fetchall()
        gaps = con.execute("SELECT video, start_ns, end_ns, reason FROM gaps").fetchall()
        con.close()
    except sqlite3.Error as e:
        return [f"catalog unreadable: {e}"], "catalog unreadable"
    frags = {}
    for seg, off, ln, s, e in frag_rows:
        frags.setdefault(seg, []).append((off, ln, s, e))
    known = set()
    uploaded = 0
    for (sid, video, clip, seq, path, start, end, nbytes, init_len, sha, recording, local, up) in rows:
        name = os.path.basename(path)
        known.add(os.path.normpath(path))
        full = os.path.join(archive, path)
        if recording:
            problems.append(f"{name}: still marked recording after the stop")
        fr = frags.get(sid, [])
        if not fr:
            problems.append(f"{name}: no fragment in the catalog")
        pos = init_len
        last_end = None
        for off, ln, s, e in fr:
            if off != pos:
                problems.append(f"{name}: fragment at {off}, expected {pos}")
                break
            if e <= s or (last_end is not None and s < last_end):
                problems.append(f"{name}: fragment times out of order at {off}")
                break
            pos, last_end = off + ln, e
        if fr and pos != nbytes:
            problems.append(f"{name}: fragments end at {pos}, catalog says {nbytes} bytes")
        if fr and (fr[0][2] != start or fr[-1][3] != end):
            problems.append(f"{name}: segment range differs from its fragments'")
        data = None
        if local:
            if not os.path.exists(full):
                problems.append(f"{name}: in the catalog as local, file missing")
            else:
                with open(full, "rb") as fh:
                    data = fh.read()
                if len(data) != nbytes:
                    problems.append(f"{name}: file has {len(data)} bytes, catalog {nbytes}")
                if sha and hashlib.sha256(data).hexdigest() != sha:
                    problems.append(f"{name}: SHA-256 differs from the catalog's")
                # The file's own fragment times against the catalog's.
                ffr, _ = mp4_fragments(full)
                if fr and ffr and (abs(ffr[0][0] - fr[0][2] / 1e9) > 0.002 or len(ffr) != len(fr)):
                    problems.append(f"{name}: file has {len(ffr)} fragments from {iso(ffr[0][0])}, catalog "
                                    f"{len(fr)} from {iso(fr[0][2] / 1e9)}")
        if store_dir:
            obj = os.path.join(store_dir, BUCKET, prefix, video, name)
            if up:
                uploaded += 1
                if not os.path.exists(obj):
                    problems.append(f"{name}: marked uploaded, not in the store")
                else:
                    with open(obj, "rb") as fh:
                        remote = fh.read()
                    if data is not None and remote != data:
                        problems.append(f"{name}: the store's object differs from the cache's file")
                    elif sha and hashlib.sha256(remote).hexdigest() != sha:
                        problems.append(f"{name}: the store's object differs from the catalog's SHA-256")
            else:
                problems.append(f"{name}: not uploaded after the stop")
    for p in glob.glob(os.path.join(archive, "videos", "*", "*")):
        rel = os.path.normpath(os.path.relpath(p, archive))
        if p.endswith(".mp4") and rel not in known:
            problems.append(f"{os.path.basename(p)}: file not in the catalog")
    if store_dir:
        names = {(r[1], os.path.basename(r[4])) for r in rows}
        for p in glob.glob(os.path.join(store_dir, BUCKET, prefix, "*", "*.mp4")):
            video = os.path.basename(os.path.dirname(p))
            if (video, os.path.basename(p)) not in names:
                problems.append(f"{os.path.basename(p)}: object in the store, not in the catalog")
    info = f"catalog: {len(rows)} segments, {sum(len(v) for v in frags.values())} fragments, {len(gaps)} gaps"
    if store_dir:
        info += f", {uploaded} uploaded"
    return problems, info


# ---------------------------------------------------------------------------------------------
# table

def fmt_cell(r):
    if r["status"] in ("n/a", "skip"):
        return r["status"]
    return "pass" if r["status"] == "pass" else "**FAIL**"


def table(results, cases, faults):
    out = []
    out.append("| use case | fault | survived | events seen | fault s | lost in fault s | lost beyond s | files playable "
               "| archive consistent | result |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for fk in faults:
        for ck in cases:
            r = results.get((ck, fk))
            if r is None:
                continue
            f = FAULT_BY_KEY[fk]
            if r["status"] in ("n/a", "skip"):
                if r["status"] == "skip":
                    out.append(f"| {CASES[ck].title} | {f.title} | skip | — | — | — | — | — | — | skip: {r.get('why', '')} |")
                continue
            ev_text = ", ".join(r.get("events_seen", [])) or "—"
            if r.get("events_missing"):
                ev_text += "; **missing** " + ", ".join(r["events_missing"])
            lb = r.get("lost_beyond_s")
            lb_text = "—" if lb is None else (f"**{lb:.2f}**" if lb > LOSS_LIMIT else f"{lb:.2f}")
            if r.get("lost_at_clip_boundaries_s"):
                lb_text += f" (+{r['lost_at_clip_boundaries_s']:.2f} between clips¹)"
            arch = "n/a" if r.get("archive_ok") is None else ("yes" if r["archive_ok"] else "**no**")
            pl = f"{r.get('playable', 0)}/{r.get('files', 0)}"
            if r.get("playable", 0) != r.get("files", 0) or not r.get("files"):
                pl = f"**{pl}**"
            fs = f"{r.get('fault_s', 0):.1f}" + (" +1 GOP²" if r.get("gop_allowance") else "")
            out.append(f"| {CASES[ck].title} | {f.title} | {'yes' if r.get('survived') else '**no**'} | {ev_text} | "
                       f"{fs} | {r.get('lost_in_fault_s', 0) or 0:.2f} | {lb_text} | {pl} | {arch} | "
                       f"{fmt_cell(r)} |")
    return "\n".join(out)


def matrix(results, cases, faults):
    out = ["| fault | " + " | ".join(CASES[c].title for c in cases) + " |",
           "|---|" + "---|" * len(cases)]
    for fk in faults:
        if not any((c, fk) in results for c in cases):
            continue
        row = []
        for c in cases:
            r = results.get((c, fk))
            if r is None:
                row.append("")
            elif r["status"] in ("n/a", "skip"):
                row.append(r["status"])
            else:
                lb = r.get("lost_beyond_s")
                row.append(f"{fmt_cell(r)} ({'—' if lb is None else f'{lb:.1f} s'})")
        out.append(f"| {FAULT_BY_KEY[fk].title} | " + " | ".join(row) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the fast subset CI runs (about 3 minutes)")
    ap.add_argument("--cases", help="comma-separated use cases (door, motion, inference)")
    ap.add_argument("--faults", help="comma-separated faults (see --list)")
    ap.add_argument("--only", help="comma-separated CASE:FAULT cells")
    ap.add_argument("--list", action="store_true", help="list the cells and exit")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--work", help="work folder (default: a new one under $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep every cell's folder (failing ones are always kept)")
    ap.add_argument("--strict", action="store_true", help="skipped cells fail the run")
    ap.add_argument("--strict-gop", action="store_true",
                    help="do not count the camera's first GOP after a session-ending fault as the fault's own")
    ap.add_argument("--baseline", type=float, help="seconds recorded before the fault")
    ap.add_argument("--hold", type=float, help="least seconds a fault is held")
    ap.add_argument("--after", type=float, help="seconds recorded after the recovery")
    a = ap.parse_args()

    case_keys = a.cases.split(",") if a.cases else list(CASES)
    fault_keys = a.faults.split(",") if a.faults else [f.key for f in FAULTS]
    for c in case_keys:
        if c not in CASES:
            ap.error(f"unknown use case {c!r}: {', '.join(CASES)}")
    for f in fault_keys:
        if f not in FAULT_BY_KEY:
            ap.error(f"unknown fault {f!r}: {', '.join(FAULT_BY_KEY)}")
    if a.only:
        cells = [tuple(x.split(":", 1)) for x in a.only.split(",")]
    elif a.quick:
        cells = [(c, f) for c, f in QUICK if c in case_keys and f in fault_keys]
    else:
        cells = [(c, f) for f in fault_keys for c in case_keys]
    for c, f in cells:
        if c not in CASES or f not in FAULT_BY_KEY:
            ap.error(f"unknown cell {c}:{f}")
    if a.list:
        for f in fault_keys:
            print(f"{f:16} " + "  ".join(f"{c}:{'yes' if FAULT_BY_KEY[f].applies(CASES[c]) else 'n/a'}"
                                         for c in case_keys))
        return 0
    timing = {"baseline": 5.0, "hold": 3.0, "after": 4.0} if a.quick else {"baseline": 8.0, "hold": 4.0, "after": 6.0}
    for k in ("baseline", "hold", "after"):
        if getattr(a, k) is not None:
            timing[k] = getattr(a, k)

    env = Env(a)
    if not os.access(env.vigil, os.X_OK):
        print(f"fault-matrix: no vigil binary at {env.vigil} (set VIGIL or cargo build)", file=sys.stderr)
        return 2
    for tool in ("ffmpeg", "ffprobe", "mosquitto", "mosquitto_pub"):
        if not shutil.which(tool):
            print(f"fault-matrix: {tool} not found (scripts/setup-media.sh)", file=sys.stderr)
            return 2
    log(f"work folder {env.work}; vigil {env.vigil_info}; guests {env.guests or 'not found'}; "
        f"s3s-fs {env.s3s or 'not found'}; tmpfs {'yes' if env.can_mount else 'no'}")
    env.make_clip()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    results = {}
    started = now()
    interrupted = False
    for ck, fk in cells:
        case, fault = CASES[ck], FAULT_BY_KEY[fk]
        if not fault.applies(case):
            results[(ck, fk)] = {"case": ck, "fault": fk, "status": "n/a"}
            continue
        log(f"cell {ck} × {fk} …")
        t0 = now()
        cell = Cell(env, case, fault, timing)
        try:
            cell.run()
            res = cell.analyse()
        except Skip as e:
            res = {"case": ck, "fault": fk, "status": "skip", "why": str(e)}
        except KeyboardInterrupt:
            interrupted = True
            res = None
        except Exception as e:  # a broken cell is reported, the matrix goes on
            cell.reasons.append(f"the cell could not run: {e}")
            traceback.print_exc(file=sys.stderr)
            try:
                res = cell.analyse()
            except Exception:
                res = {"case": ck, "fault": fk, "status": "fail", "reasons": cell.reasons, "notes": cell.notes}
            res["status"] = "fail"
        finally:
            cell.cleanup()
            cell.unmount_disk()
        if interrupted:
            break
        res["seconds"] = round(now() - t0, 1)
        res["dir"] = cell.dir
        results[(ck, fk)] = res
        log(f"  {res['status']} in {res['seconds']} s" + (": " + "; ".join(res.get("reasons", [])) if res.get("reasons") else ""))
        if res["status"] in ("pass", "skip") and not a.keep:
            shutil.rmtree(cell.dir, ignore_errors=True)
    total = now() - started
    if env.vigil.startswith(env.work):
        try:
            os.unlink(env.vigil)      # the snapshot (170 MB in a debug build)
        except OSError:
            pass

    shown_cases = [c for c in case_keys if any((c, f) in results for f in fault_keys)]
    shown_faults = [f for f in fault_keys if any((c, f) in results for c in case_keys)]
    print(f"\n### Fault matrix ({'quick' if a.quick else 'full'} run, {len([r for r in results.values() if r['status'] not in ('n/a',)])} cells, "
          f"{total / 60:.1f} min)\n")
    print(matrix(results, shown_cases, shown_faults))
    print()
    print(table(results, shown_cases, shown_faults))
    failed = [r for r in results.values() if r["status"] == "fail"]
    skipped = [r for r in results.values() if r["status"] == "skip"]
    if failed:
        print("\n#### Failed cells\n")
        for r in failed:
            print(f"* **{CASES[r['case']].title} × {FAULT_BY_KEY[r['fault']].title}**: " + "; ".join(r.get("reasons", [])))
            if r.get("notes"):
                print(f"  ({'; '.join(r['notes'])}; folder {r.get('dir')})")
    if skipped:
        print("\n#### Skipped cells\n")
        for r in skipped:
            print(f"* {CASES[r['case']].title} × {FAULT_BY_KEY[r['fault']].title}: {r.get('why')}")
    gop = "" if a.strict_gop else (f" ² for faults that end the camera's session (camera, kill -9) the window "
                                   f"also holds the camera's first GOP ({GOP:.0f} s) after the undo: the camera "
                                   f"restarts with a key frame no client connecting after its return can get "
                                   f"(--strict-gop: not so).")
    print(f"\nLegend: *lost beyond* = media missing outside the fault's own window (inject … undo; "
          f"kill -9: kill … restart), over the time the gate was asked to be open, from the recordings' "
          f"prft timeline, each fragment counted as its frames (30 fps); goal ≤ {LOSS_LIMIT:.0f} s. *files playable* = ffprobe decodes with no error "
          f"(and frames = the fragments' samples), MP4 export included. ¹ a gap from one clip's end to the "
          f"next clip's start (≤ 1 GOP, away from the fault): back-to-back activations, not charged to the fault." + gop)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"total_seconds": round(total, 1), "quick": a.quick,
                       "cells": [dict(r) for r in results.values()]}, fh, indent=1, default=str)
    if not failed and not a.keep:
        if not a.work:
            shutil.rmtree(env.work, ignore_errors=True)
    elif failed:
        print(f"\nFolders of failing cells are kept under {env.work}", file=sys.stderr)
    if interrupted:
        return 130
    return 1 if failed or (a.strict and skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
