#!/usr/bin/env python3
"""The least work any recorder of an RTSP camera must do: the floor under vigil's CPU figure.

usage: relay-floor.py URL STREAMS OUTDIR [--sync-every S] [--read-every S] [--write-every S]

Opens STREAMS RTSP sessions to URL over TCP (RTP interleaved on the RTSP connection, as vigil and
`ffmpeg -rtsp_transport tcp` do), then, on ONE thread for all of them: every --read-every seconds
(vigil's read interval, 0.5) drains every socket into a buffer of its own, every --write-every
seconds (vigil's fragment, 1.0) writes each stream's bytes to its file with one write, and every
--sync-every seconds (vigil's default, 5; 0 = never, as FFmpeg) fdatasyncs every file. Nothing
is parsed: the files hold the interleaved stream as it came (RTSP '$' framing, RTP headers,
RTCP). So its CPU is the kernel's copies in and out, the page cache and writeback, and the
wake-ups, with fewer wake-ups than any per-camera design (one thread) and no user-space work
to speak of. At 50 streams here it cost a third of vigil; at 200 (100 MB/s written) the page
cache's work, charged to the writer, made it cost as much as vigil (README, "The floor").

Prints "ready N" once every session plays, then runs until SIGINT/SIGTERM, writes what it holds
and prints "bytes B" (the total received).
"""
import os
import signal
import socket
import sys
import time


def rtsp(sock, reader, method, url, cseq, extra=""):
    """One RTSP request; returns (status, headers dict with lower-case keys, body bytes)."""
    sock.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
    status = reader.readline().decode().split()
    headers = {}
    while True:
        line = reader.readline().decode().strip()
        if not line:
            break
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    if len(status) < 2 or status[1] != "200":
        raise SystemExit(f"relay-floor: {method} {url}: {' '.join(status)}")
    return headers, body


def open_session(url):
    """DESCRIBE, SETUP (the first video track, interleaved 0-1), PLAY; returns the socket."""
    host, _, rest = url[len("rtsp://"):].partition("/")
    name, _, port = host.partition(":")
    sock = socket.create_connection((name, int(port or 554)))
    reader = sock.makefile("rb", buffering=0)
    headers, sdp = rtsp(sock, reader, "DESCRIBE", url, 1, "Accept: application/sdp\r\n")
    base = headers.get("content-base", url + "/")
    control = None
    in_video = False
    for line in sdp.decode().splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=control:") and control is None:
            control = line[len("a=control:"):]
    if control is None:
        raise SystemExit(f"relay-floor: no video track in {url}'s SDP")
    track = control if control.startswith("rtsp://") else base.rstrip("/") + "/" + control
    headers, _ = rtsp(sock, reader, "SETUP", track, 2,
                      "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
    session = headers["session"].split(";")[0]
    rtsp(sock, reader, "PLAY", base, 3, f"Session: {session}\r\nRange: npt=0.000-\r\n")
    sock.setblocking(False)
    return sock


def main():
    args = sys.argv[1:]
    opts = {"--sync-every": 5.0, "--read-every": 0.5, "--write-every": 1.0}
    pos = []
    while args:
        a = args.pop(0)
        if a in opts:
            opts[a] = float(args.pop(0))
        else:
            pos.append(a)
    url, streams, outdir = pos[0], int(pos[1]), pos[2]
    os.makedirs(outdir, exist_ok=True)
    socks = [open_session(url) for _ in range(streams)]
    files = [os.open(os.path.join(outdir, f"r{i + 1}.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
             for i in range(streams)]
    bufs = [bytearray(8 << 20) for _ in range(streams)]
    views = [memoryview(b) for b in bufs]
    fill = [0] * streams
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print(f"ready {streams}", flush=True)
    total = 0
    start = time.monotonic()
    next_write = start + opts["--write-every"]
    next_sync = start + opts["--sync-every"]

    def write_all():
        for i in range(streams):
            if fill[i]:
                os.write(files[i], views[i][:fill[i]])
                fill[i] = 0

    while not stop:
        time.sleep(opts["--read-every"])
        for i, s in enumerate(socks):
            while True:
                room = len(bufs[i]) - fill[i]
                if room == 0:
                    os.write(files[i], views[i][:fill[i]])
                    fill[i] = 0
                    room = len(bufs[i])
                try:
                    n = s.recv_into(views[i][fill[i]:], room)
                except BlockingIOError:
                    break
                if n == 0:
                    raise SystemExit(f"relay-floor: the camera closed session {i + 1}")
                fill[i] += n
                total += n
        now = time.monotonic()
        if now >= next_write:
            write_all()
            next_write += opts["--write-every"]
        if opts["--sync-every"] > 0 and now >= next_sync:
            for f in files:
                os.fdatasync(f)
            next_sync += opts["--sync-every"]
    write_all()
    print(f"bytes {total}", flush=True)


if __name__ == "__main__":
    main()
