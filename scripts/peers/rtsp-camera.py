#!/usr/bin/python3
"""Looping RTSP "camera" for Vigil's tests, built on GstRtspServer.

usage: rtsp-camera.py FILE [--port 8554] [--mount /cam] [--host 127.0.0.1]
                      [--user U --password P [--auth digest|basic|both]]
                      [--protocols tcp,udp] [--timestamps file|arrival] [--max-sessions N]
                      [--freeze-after SECONDS [--freeze-for SECONDS]]

Needs Debian's /usr/bin/python3 with python3-gi, gir1.2-gst-rtsp-server-1.0 and the GStreamer
plugins (scripts/setup-media.sh); a pyenv/venv python cannot import gi.

FILE is an .mp4/.mov/.mkv with H.264 or H.265 video (and optionally AAC audio). It is not
re-encoded: a feeder pipeline (filesrc ! demux ! h26Xparse ! appsink sync=true) plays it in real
time and loops it forever with non-flushing segment seeks, so its running time keeps rising
across the loop point with no gap. Every access unit is pushed into the shared RTSP media's
appsrc. SPS/PPS(/VPS) are repeated before every key frame, so a client that connects mid-stream
starts decoding at the next key frame, as with a real camera. The feeder runs whether or not a
client is connected ("live" semantics); all clients share one stream.

--timestamps file (default): a buffer's PTS is the feeder's running time, mapped to the media
    pipeline's clock, so RTP timestamps advance by exactly one frame duration (3000 ticks at
    30 fps) and continue across the loop point without a jump backwards.
--max-sessions N: serve at most N RTSP sessions at once; a SETUP beyond answers 503, as cameras
    that allow few sessions do.
--freeze-after SECONDS: after SECONDS, stop sending pictures but keep every session open (RTCP
    reports and keep-alive answers go on), as a camera whose encoder hangs does; a new session's
    DESCRIBE is not answered meanwhile. --freeze-for: pictures come back after that long.
--timestamps arrival: appsrc do-timestamp (arrival time), the original test-peers.md recipe;
    about +-1 ms of jitter per frame, a robustness case.

Prints "ready: rtsp://HOST:PORT/MOUNT" on stdout once the socket listens, "loop N" at each
loop point, and exits 0 on SIGTERM or SIGINT. Exit code 2 when the port cannot be bound or
the file cannot be read.
"""
import argparse
import os
import signal
import sys
import time
import traceback

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstPbutils", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstPbutils, GstRtsp, GstRtspServer  # noqa: E402


def log(*a):
    # A reader that has gone (a test keeps only the ready line) must not stop the camera: an
    # exception here, in a bus callback, would end the loop and freeze the stream.
    try:
        print(*a, flush=True)
    except OSError:
        pass


def probe(path):
    """Return (video codec 'h264'|'h265', has_aac) using GstDiscoverer."""
    info = GstPbutils.Discoverer.new(10 * Gst.SECOND).discover_uri(Gst.filename_to_uri(path))
    vcodec = None
    for s in info.get_video_streams():
        caps = s.get_caps().to_string()
        if caps.startswith("video/x-h265"):
            vcodec = "h265"
        elif caps.startswith("video/x-h264"):
            vcodec = "h264"
    has_aac = any(s.get_caps().to_string().startswith("audio/mpeg")
                  for s in info.get_audio_streams())
    return vcodec, has_aac


class Feeder:
    """Plays the file in real time, loops it forever, forwards samples to the RTSP medias."""

    def __init__(self, path, vcodec, has_audio, stamp_mode, freeze=(None, None)):
        self.vcodec, self.has_audio, self.stamp_mode = vcodec, has_audio, stamp_mode
        # Monotonic times between which no sample is pushed (--freeze-after, --freeze-for).
        after, length = freeze
        self.freeze_from = None if after is None else time.monotonic() + after
        self.freeze_until = None if length is None else (self.freeze_from or 0) + length
        parse = "h265parse" if vcodec == "h265" else "h264parse"
        vfmt = "video/x-h265,stream-format=hvc1" if vcodec == "h265" else "video/x-h264,stream-format=avc"
        demux = "matroskademux" if path.endswith((".mkv", ".webm")) else "qtdemux"
        loc = path.replace("\\", "\\\\").replace('"', '\\"')
        desc = (f'filesrc location="{loc}" ! {demux} name=d '
                f"d.video_0 ! queue ! {parse} config-interval=-1 ! {vfmt},alignment=au ! "
                "appsink name=vsink sync=true emit-signals=true max-buffers=50 ")
        if has_audio:
            desc += ("d.audio_0 ! queue ! aacparse ! audio/mpeg,stream-format=raw ! "
                     "appsink name=asink sync=true emit-signals=true max-buffers=100 ")
        self.pipeline = Gst.parse_launch(desc)
        self.medias = {}  # GstRTSPMedia -> {"v": appsrc, "a": appsrc}
        self.caps = {"v": None, "a": None}
        self.loops = 0
        self.duration = 0  # set in start(); the preroll segment (base 0) needs no offset
        self.loop_of = {"v": {}, "a": {}}  # kind -> {segment base: loop index}
        for kind in ("v", "a") if has_audio else ("v",):
            sink = self.pipeline.get_by_name(kind + "sink")
            sink.connect("new-sample", self._on_sample, kind)
            sink.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM,
                                                  self._on_sink_event, kind)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_msg)

    def start(self):
        self.pipeline.set_state(Gst.State.PAUSED)
        if self.pipeline.get_state(10 * Gst.SECOND)[0] == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError("feeder pipeline failed to preroll")
        # Flushing SEGMENT seek: the demuxer then posts SEGMENT_DONE instead of EOS at the end,
        # and the non-flushing segment seek in _on_msg continues the running time seamlessly.
        # The file duration is also the loop period used for timestamps (see _loop_time).
        ok, self.duration = self.pipeline.query_duration(Gst.Format.TIME)
        if not ok or self.duration <= 0:
            raise RuntimeError("cannot query the file duration")
        self._seek(Gst.SeekFlags.FLUSH)
        self.pipeline.get_state(10 * Gst.SECOND)
        self.pipeline.set_state(Gst.State.PLAYING)

    def _seek(self, flags):
        self.pipeline.seek(1.0, Gst.Format.TIME, flags | Gst.SeekFlags.SEGMENT,
                           Gst.SeekType.SET, 0, Gst.SeekType.SET, self.duration)

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)

    def _on_sink_event(self, pad, info, kind):
        """Loop bookkeeping, run in the streaming thread when a new segment reaches the appsink.

        qtdemux starts each new loop segment at the running time of the LAST FRAME's pts, not
        at the file duration (measured: without this, one frame duration is lost per loop and
        the new loop's first frame is rendered together with the previous loop's last one).
        So count loops per stream by segment base, and shift the appsink's sync (ts-offset)
        before the new loop's first buffer, so that pacing follows loop_index * duration + t.
        """
        ev = info.get_event()
        if ev is None or ev.type != Gst.EventType.SEGMENT:
            return Gst.PadProbeReturn.OK
        try:
            seg = ev.parse_segment()
            seen = self.loop_of[kind]
            if seg.base not in seen:
                seen[seg.base] = max(seen.values(), default=-1) + 1
                for old in sorted(seen, key=seen.get)[:-3]:
                    del seen[old]
            pad.get_parent_element().set_property("ts-offset", seen[seg.base] * self.duration - seg.base)
        except Exception:  # never drop the event (an exception here would)
            traceback.print_exc()
        return Gst.PadProbeReturn.OK

    def _loop_time(self, kind, seg, t):
        """Continuous feeder running time of file time t (ns), or None."""
        idx = self.loop_of[kind].get(seg.base)
        if idx is None or t == Gst.CLOCK_TIME_NONE or t < seg.start:
            return None
        return idx * self.duration + (t - seg.start)

    def _frozen(self):
        now = time.monotonic()
        if self.freeze_from is None or now < self.freeze_from:
            return False
        return self.freeze_until is None or now < self.freeze_until

    def _on_sample(self, sink, kind):
        sample = sink.emit("pull-sample")
        buf, seg = sample.get_buffer(), sample.get_segment()
        self.caps[kind] = sample.get_caps()
        pts_rt = self._loop_time(kind, seg, buf.pts)
        dts_rt = self._loop_time(kind, seg, buf.dts)
        if not self.medias:
            return Gst.FlowReturn.OK
        if self._frozen():
            return Gst.FlowReturn.OK
        fclock, fbase = self.pipeline.get_clock(), self.pipeline.get_base_time()
        for srcs in list(self.medias.values()):
            src = srcs.get(kind)
            if src is None:
                continue
            out = buf.copy()
            if self.stamp_mode == "arrival":
                out.pts = out.dts = Gst.CLOCK_TIME_NONE  # appsrc do-timestamp stamps arrival time
            else:
                # Only a PLAYING media has a base time to map our running time into; before
                # that (during PLAY setup) the sample is dropped, as a live camera would.
                if src.get_state(0)[1] != Gst.State.PLAYING or pts_rt is None or fclock is None:
                    continue
                mclock, mbase = src.get_clock(), src.get_base_time()
                if mclock is None:
                    continue
                # clock time at which the feeder renders this buffer, on the media's clock
                skew = 0 if mclock == fclock else mclock.get_time() - fclock.get_time()
                pts = fbase + pts_rt + skew - mbase
                dts = fbase + dts_rt + skew - mbase if dts_rt is not None else pts
                if pts < 0 or dts < 0:  # rendered just before the media started PLAYING
                    continue
                out.pts, out.dts = pts, dts
            src.emit("push-buffer", out)
        return Gst.FlowReturn.OK

    def _on_msg(self, bus, msg):
        if msg.type == Gst.MessageType.SEGMENT_DONE:
            self.loops += 1
            log(f"loop {self.loops}")
            self._seek(Gst.SeekFlags.NONE)
        elif msg.type == Gst.MessageType.EOS:  # should not happen with segment seeks
            self.loops += 1
            log(f"loop {self.loops} (EOS, flushing seek)")
            self.pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            print(f"feeder error: {err.message} ({dbg})", file=sys.stderr, flush=True)

    def launch_string(self):
        pay = "rtph265pay" if self.vcodec == "h265" else "rtph264pay"
        ts = "true" if self.stamp_mode == "arrival" else "false"
        s = (f"( appsrc name=vsrc is-live=true do-timestamp={ts} format=time ! queue ! "
             f"{pay} name=pay0 pt=96 config-interval=-1 ")
        if self.has_audio:
            s += (f"appsrc name=asrc is-live=true do-timestamp={ts} format=time ! queue ! "
                  "rtpmp4gpay name=pay1 pt=97 ")
        return s + ")"

    def on_media_configure(self, factory, media):
        el = media.get_element()
        srcs = {"v": el.get_by_name("vsrc")}
        srcs["v"].set_property("caps", self.caps["v"])
        if self.has_audio:
            srcs["a"] = el.get_by_name("asrc")
            srcs["a"].set_property("caps", self.caps["a"])
        self.medias[media] = srcs
        media.connect("unprepared", self._on_unprepared)
        log(f"media configured ({len(self.medias)} active)")

    def _on_unprepared(self, media):
        self.medias.pop(media, None)
        log(f"media unprepared ({len(self.medias)} active)")


def set_auth_methods(auth, methods):
    """gst_rtsp_auth_set_supported_methods(). The GIR declares GstRTSPAuthMethod as an enum, so
    PyGObject 3.42 rejects BASIC|DIGEST (ValueError: invalid enum value: 3); call C for that."""
    if methods in (1, 2):
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod(methods))
        return
    import ctypes
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype, get_ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    lib = ctypes.CDLL("libgstrtspserver-1.0.so.0")
    lib.gst_rtsp_auth_set_supported_methods.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.gst_rtsp_auth_set_supported_methods(get_ptr(auth.__gpointer__, None), methods)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", help="mp4/mov/mkv with H.264 or H.265 video")
    ap.add_argument("--file", dest="file_opt", help="same as FILE")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--mount", default="/cam")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--auth", choices=["digest", "basic", "both"], default="digest")
    ap.add_argument("--protocols", default="tcp,udp", help="subset of tcp,udp,udp-mcast")
    ap.add_argument("--timestamps", choices=["file", "arrival"], default="file")
    ap.add_argument("--max-sessions", type=int, default=0,
                    help="RTSP sessions served at once (0: no limit); more get 503, as many cameras do")
    ap.add_argument("--freeze-after", type=float, metavar="SECONDS",
                    help="stop sending pictures after SECONDS, sessions kept open (a hung encoder)")
    ap.add_argument("--freeze-for", type=float, metavar="SECONDS",
                    help="with --freeze-after: send pictures again after SECONDS")
    a = ap.parse_args()
    path = a.file or a.file_opt
    if not path:
        ap.error("FILE is required")
    if bool(a.user) != (a.password is not None):
        ap.error("--user and --password go together")
    if not a.mount.startswith("/"):
        a.mount = "/" + a.mount
    if not os.access(path, os.R_OK):
        print(f"rtsp-camera: cannot read {path}", file=sys.stderr)
        return 2
    path = os.path.abspath(path)

    Gst.init(None)
    try:
        vcodec, has_aac = probe(path)
    except GLib.Error as e:
        print(f"rtsp-camera: {path}: {e.message}", file=sys.stderr)
        return 2
    if vcodec is None:
        print(f"rtsp-camera: {path}: no H.264/H.265 video stream", file=sys.stderr)
        return 2
    feeder = Feeder(path, vcodec, has_aac, a.timestamps, (a.freeze_after, a.freeze_for))
    feeder.start()

    server = GstRtspServer.RTSPServer()
    server.set_address(a.host)
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(feeder.launch_string())
    factory.connect("media-configure", feeder.on_media_configure)
    factory.set_shared(True)
    prot = GstRtsp.RTSPLowerTrans(0)
    for p in a.protocols.split(","):
        prot |= {"udp": GstRtsp.RTSPLowerTrans.UDP, "tcp": GstRtsp.RTSPLowerTrans.TCP,
                 "udp-mcast": GstRtsp.RTSPLowerTrans.UDP_MCAST}[p.strip()]
    factory.set_protocols(prot)

    if a.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        methods = {"basic": 1, "digest": 2, "both": 3}[a.auth]  # GstRTSPAuthMethod BASIC=1 DIGEST=2
        set_auth_methods(auth, methods)
        if methods & 2:
            auth.add_digest(a.user, a.password, token)
        if methods & 1:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role("user", "media.factory.access", True)
        perms.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(perms)

    if a.max_sessions > 0:
        server.get_session_pool().set_max_sessions(a.max_sessions)
    server.get_mount_points().add_factory(a.mount, factory)
    try:
        ok = server.attach(None) != 0
    except GLib.Error as e:
        ok = False
        print(f"rtsp-camera: {e.message}", file=sys.stderr)
    if not ok:
        print(f"rtsp-camera: cannot listen on {a.host}:{a.port}", file=sys.stderr)
        feeder.stop()
        return 2

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    auth_note = f" (auth {a.auth}, user {a.user})" if a.user else ""
    log(f"ready: rtsp://{a.host}:{a.port}{a.mount} {vcodec}{'+aac' if has_aac else ''}{auth_note}")
    loop.run()
    feeder.stop()
    log("rtsp-camera: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
