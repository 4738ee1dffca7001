#!/usr/bin/python3
"""Self-check of grpc-infer-server.py: plays AVA's role against it and asserts every behaviour.

usage: scripts/peers/grpc-client-check.py      (no arguments; exit 0 = all checks passed)

Starts its own servers (plain, --require-auth, TLS with a throwaway openssl certificate), on
free ports, and checks: descriptor exchange; RAW rgb24 416x416 frames with and without the red
box (packed and with padded rows), bgr24, rgba, yuv420p; JPEG; shared memory in /dev/shm
(in-range and out-of-range references); several samples in flight; every fault switch; auth;
TLS; protocol errors; /requests; a closed stdout. Prints one "ok ..." line per check on stdout.
Needs what the server needs plus the openssl CLI.
"""
import base64
import importlib.util
import io
import json
import os
import queue
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import grpc
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.realpath(__file__))
SERVER = os.path.join(HERE, "grpc-infer-server.py")
PATH = "/microsoft.azure.media.live_video_analytics.extensibility.grpc.v1.MediaGraphExtension/ProcessMediaStream"
W = H = 416
BOX = (100, 200, 80, 60)  # x, y, w, h of the red box in the test frames


def load_server_module():
    spec = importlib.util.spec_from_file_location("grpc_infer_server", SERVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SRV = load_server_module()
PB = SRV.load_stubs()
M = PB.extension
VF = PB.media.VideoFrameSampleFormat


def ok(what):
    print(f"ok {what}", flush=True)


# ---------------------------------------------------------------- frames

def frame_rgb(red):
    img = np.full((H, W, 3), 60, np.uint8)
    if red:
        x, y, w, h = BOX
        img[y:y + h, x:x + w] = (255, 48, 48)
    return img


def raw(img, fmt, stride=None):
    """img as a raw buffer of pixel format fmt, rows `stride` bytes apart."""
    if fmt == "yuv420p":
        return yuv420p(img)
    px = {"rgb24": img, "bgr24": img[:, :, ::-1],
          "rgba": np.dstack([img, np.full((H, W), 255, np.uint8)])}[fmt]
    rows = px.reshape(H, -1)
    if stride:
        rows = np.hstack([rows, np.full((H, stride - rows.shape[1]), 7, np.uint8)])
    return rows.tobytes()


def yuv420p(img):
    r, g, b = (img[:, :, i].astype(np.float32) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    sub = lambda p: p.reshape(H // 2, 2, W // 2, 2).mean((1, 3))  # noqa: E731
    return b"".join(np.clip(p, 0, 255).round().astype(np.uint8).tobytes() for p in (y, sub(u), sub(v)))


def encoded(img, fmt):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, quality=90) if fmt == "JPEG" else Image.fromarray(img).save(buf, fmt)
    return buf.getvalue()


# ---------------------------------------------------------------- messages

def descriptor(seq=1, encoding=VF.RAW, pixel=VF.RGB24, stride=W * 3, shm=None):
    msg = M.MediaStreamMessage(sequence_number=seq, ack_sequence_number=0)
    d = msg.media_stream_descriptor
    d.graph_identifier.media_services_arm_id = "/subscriptions/s/resourceGroups/r/providers/microsoft.media/videoanalyzers/a"
    d.graph_identifier.graph_instance_name = "pipeline1"
    d.graph_identifier.graph_node_name = "grpcExtension"
    d.extension_configuration = "{}"
    d.media_descriptor.timescale = 90000
    vf = d.media_descriptor.video_frame_sample_format
    vf.encoding, vf.pixel_format = encoding, pixel
    vf.dimensions.width, vf.dimensions.height = W, H
    vf.stride_bytes = stride
    if shm:
        d.shared_memory_buffer_transfer_properties.handle_name = shm[0]
        d.shared_memory_buffer_transfer_properties.length_bytes = shm[1]
    return msg


def sample(seq, ts, data=None, ref=None, ack=0):
    msg = M.MediaStreamMessage(sequence_number=seq, ack_sequence_number=ack)
    msg.media_sample.SetInParent()
    msg.media_sample.timestamp = ts
    if data is not None:
        msg.media_sample.content_bytes.bytes = data
    if ref is not None:
        msg.media_sample.content_reference.address_offset, msg.media_sample.content_reference.length_bytes = ref
    return msg


class Session:
    """One ProcessMediaStream call; replies (raw bytes) and the final status land in a queue."""

    def __init__(self, channel, metadata=None):
        self.out, self.inbox = queue.Queue(), queue.Queue()
        call = channel.stream_stream(PATH, request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                                     response_deserializer=lambda b: b)
        self.call = call(iter(self.out.get, None), metadata=metadata)
        threading.Thread(target=self.drain, daemon=True).start()

    def drain(self):
        try:
            for raw in self.call:
                self.inbox.put(("reply", raw))
            self.inbox.put(("end", grpc.StatusCode.OK, ""))
        except grpc.RpcError as e:
            self.inbox.put(("end", e.code(), e.details()))

    def send(self, *msgs):
        for m in msgs:
            self.out.put(m)

    def next(self, timeout=5):
        item = self.inbox.get(timeout=timeout)
        if item[0] == "reply":
            return M.MediaStreamMessage.FromString(item[1])
        raise AssertionError(f"expected a reply, the call ended: {item[1]} {item[2]}")

    def next_raw(self, timeout=5):
        item = self.inbox.get(timeout=timeout)
        assert item[0] == "reply", item
        return item[1]

    def status(self, timeout=5):
        item = self.inbox.get(timeout=timeout)
        assert item[0] == "end", f"expected the end of the call, got a reply {item}"
        return item[1], item[2]

    def silent(self, seconds):
        try:
            item = self.inbox.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"expected silence, got {item}")

    def close(self):
        self.out.put(None)

    def open(self, desc=None):
        """Sends a descriptor and checks the server's."""
        desc = desc or descriptor()
        self.send(desc)
        r = self.next()
        assert r.sequence_number == 1 and r.ack_sequence_number == desc.sequence_number, r
        d = r.media_stream_descriptor
        assert d.extension_identifier == "vigil-test-extension" and d.media_descriptor.timescale == 90000, r
        assert not d.media_descriptor.HasField("video_frame_sample_format"), r
        return r


def check_reply(r, seq, ack, ts, red):
    assert r.sequence_number == seq and r.ack_sequence_number == ack, r
    assert r.WhichOneof("payload") == "media_sample" and r.media_sample.timestamp == ts, r
    assert r.media_sample.WhichOneof("content") is None, r
    infs = r.media_sample.inferences
    if not red:
        assert len(infs) == 0, r
        return
    assert len(infs) == 1, r
    i = infs[0]
    assert i.type == PB.inferencing.Inference.ENTITY and i.subtype == "objectDetection", i
    assert i.entity.tag.value == "truck" and abs(i.entity.tag.confidence - 0.9) < 1e-6, i
    x, y, w, h = BOX
    got = (i.entity.box.l, i.entity.box.t, i.entity.box.w, i.entity.box.h)
    want = (x / W, y / H, w / W, h / H)
    assert all(abs(a - b) < 0.006 for a, b in zip(got, want)), (got, want)


# ---------------------------------------------------------------- server process

class Server:
    def __init__(self, *args, stdout=subprocess.PIPE):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([SERVER, "--port", "0", *args], stdout=stdout, stderr=self.log, text=True)
        line = self.proc.stdout.readline().split()
        assert line[0] == "ready" and len(line) == 3, line
        self.port, self.control_port = int(line[1]), int(line[2])

    def http(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def control(self, faults):
        status, body = self.http("POST", "/control", faults)
        assert status == 200, (status, body)

    def requests(self):
        return json.loads(self.http("GET", "/requests")[1])

    def channel(self):
        return grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


# ---------------------------------------------------------------- checks

def check_embedded(srv):
    ch = srv.channel()
    s = Session(ch)
    s.open()
    s.send(sample(2, 3000, raw(frame_rgb(True), "rgb24"), ack=1), sample(3, 6000, raw(frame_rgb(False), "rgb24")))
    check_reply(s.next(), 2, 2, 3000, True)
    check_reply(s.next(), 3, 3, 6000, False)
    s.close()
    assert s.status() == (grpc.StatusCode.OK, ""), "half-close ends the call with OK"
    ok("embedded RAW rgb24 416x416: descriptor reply, red box found, no box -> ack-only reply, half-close -> OK")
    for fmt, stride, pixel in (("rgb24", 1280, VF.RGB24), ("bgr24", 1264, VF.BGR24), ("rgba", W * 4, VF.RGBA),
                               ("yuv420p", W, VF.YUV420P)):
        s = Session(ch)
        s.open(descriptor(pixel=pixel, stride=stride))
        s.send(sample(2, 1, raw(frame_rgb(True), fmt, stride if stride != W * 4 else None)),
               sample(3, 2, raw(frame_rgb(False), fmt, stride if stride != W * 4 else None)))
        check_reply(s.next(), 2, 2, 1, True)
        check_reply(s.next(), 3, 3, 2, False)
        s.close()
        s.status()
    ok("RAW rgb24 stride 1280, bgr24 stride 1264, rgba, yuv420p: same detections")
    s = Session(ch)
    s.open()
    s.send(sample(2, 1, raw(frame_rgb(True), "rgb24")[:-1]))
    code, details = s.status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "do not decode as RAW rgb24 416x416 stride 1248" in details, details
    ok(f"RAW one byte short -> INVALID_ARGUMENT ({details})")


def check_encoded(srv):
    ch = srv.channel()
    s = Session(ch)
    s.open(descriptor(encoding=VF.JPG, pixel=VF.NONE, stride=0))
    s.send(sample(2, 10, encoded(frame_rgb(True), "JPEG")), sample(3, 20, encoded(frame_rgb(False), "JPEG")))
    check_reply(s.next(), 2, 2, 10, True)
    check_reply(s.next(), 3, 3, 20, False)
    s.send(sample(4, 30, encoded(frame_rgb(True), "PNG")))
    code, details = s.status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "do not decode as JPG" in details, details
    ok("JPG frames: box found / not found; a PNG in a JPG session -> INVALID_ARGUMENT")
    s = Session(ch)
    s.open(descriptor(encoding=VF.PNG, pixel=VF.NONE, stride=0))
    s.send(sample(2, 10, encoded(frame_rgb(True), "PNG")))
    check_reply(s.next(), 2, 2, 10, True)
    s.close()
    s.status()
    ok("PNG frame: box found")


def check_shared_memory(srv):
    name = f"vigil-grpc-check-{os.getpid()}"
    size = 4 * 1024 * 1024
    path = "/dev/shm/" + name
    with open(path, "wb") as f:
        f.truncate(size)
    try:
        frame = W * H * 3
        with open(path, "r+b") as f:
            f.seek(frame)
            f.write(raw(frame_rgb(True), "rgb24"))
            f.seek(2 * frame)
            f.write(raw(frame_rgb(False), "rgb24"))
        s = Session(srv.channel())
        s.open(descriptor(shm=(name, size)))
        s.send(sample(2, 5, ref=(frame, frame)), sample(3, 6, ref=(2 * frame, frame)))
        check_reply(s.next(), 2, 2, 5, True)
        check_reply(s.next(), 3, 3, 6, False)
        s.send(sample(4, 7, ref=(size - 100, frame)))
        code, details = s.status()
        assert code == grpc.StatusCode.INVALID_ARGUMENT, code
        assert f"address_offset {size - 100} length_bytes {frame}" in details, details
        ok(f"shared memory {path}: references read, out of range -> INVALID_ARGUMENT ({details})")
        entries = [m for m in srv.requests()["messages"] if m.get("content") == "reference"]
        assert [(m["address_offset"], m["content_length"]) for m in entries[-3:]] == \
            [(frame, frame), (2 * frame, frame), (size - 100, frame)], entries[-3:]
        ok("/requests shows content 'reference', address_offset and content_length")
    finally:
        os.unlink(path)
    s = Session(srv.channel())
    s.send(descriptor(shm=("no-such-region-xyz", size)))
    code, details = s.status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no-such-region-xyz" in details, details
    ok("missing /dev/shm file -> INVALID_ARGUMENT")


def check_pipelining(srv):
    srv.control({"delay_ms": 300})
    s = Session(srv.channel())
    s.open()
    t0 = time.time()
    n0 = len(srv.requests()["messages"])
    s.send(*(sample(2 + i, 100 * i, raw(frame_rgb(i % 2 == 0), "rgb24")) for i in range(5)))
    time.sleep(0.2)
    assert len(srv.requests()["messages"]) == n0 + 5, "all five read before the first answer"
    for i in range(5):
        check_reply(s.next(), 2 + i, 2 + i, 100 * i, i % 2 == 0)
    took = time.time() - t0
    assert 1.4 < took < 3, took
    srv.control({})
    s.close()
    s.status()
    ok(f"5 samples in flight with delay_ms 300: all read at once, answered in order in {took:.2f} s")


def check_faults(srv):
    ch = srv.channel()
    img = raw(frame_rgb(True), "rgb24")
    # no_ack
    s = Session(ch)
    s.open()
    srv.control({"no_ack": True})
    s.send(sample(2, 1, img), sample(3, 2, img))
    assert s.silent(1.0)
    srv.control({})
    s.send(sample(4, 3, img))
    check_reply(s.next(), 2, 4, 3, True)
    s.close()
    s.status()
    ok("no_ack: samples read but not answered; cleared: the next one is answered")
    # close_after
    srv.control({"close_after": 2})
    s = Session(ch)
    s.open()
    s.send(*(sample(2 + i, i, img) for i in range(3)))
    check_reply(s.next(), 2, 2, 0, True)
    check_reply(s.next(), 3, 3, 1, True)
    assert s.status() == (grpc.StatusCode.OK, "")
    assert srv.http("GET", "/control")[1] == b"{}", "close_after spent"
    srv.control({"close_after": 0})
    s = Session(ch)
    s.open()
    s.send(sample(2, 0, img))
    assert s.status()[0] == grpc.StatusCode.OK
    ok("close_after 2: two answers then the server ends the call with OK; close_after 0: ends unanswered")
    # abort
    srv.control({"abort": "UNAVAILABLE", "delay_ms": 10})
    s = Session(ch)
    s.open()
    s.send(sample(2, 0, img))
    assert s.status() == (grpc.StatusCode.UNAVAILABLE, "injected fault")
    assert json.loads(srv.http("GET", "/control")[1]) == {"delay_ms": 10}, "abort spent, delay_ms kept"
    ok("abort UNAVAILABLE: call ends with UNAVAILABLE 'injected fault' at the next sample; spent")
    # garbage
    srv.control({"garbage": True})
    s = Session(ch)
    s.open()
    s.send(sample(2, 0, img), sample(3, 1, img))
    bad = s.next_raw()
    try:
        M.MediaStreamMessage.FromString(bad)
        raise AssertionError("garbage parsed")
    except Exception as e:
        assert "garbage parsed" not in str(e)
    check_reply(s.next(), 2, 3, 1, True)
    s.close()
    s.status()
    ok(f"garbage: one reply of {len(bad)} bytes that protobuf rejects, then normal answers")
    # descriptor_delay_ms
    srv.control({"descriptor_delay_ms": 500})
    s = Session(ch)
    t0 = time.time()
    s.open()
    assert time.time() - t0 >= 0.5
    srv.control({})
    s.close()
    s.status()
    ok("descriptor_delay_ms 500 delays the descriptor reply")
    # validation
    for bad_faults in ({"nope": 1}, {"abort": "OK"}, {"abort": "NOPE"}, {"delay_ms": -1}, [1]):
        status, _ = srv.http("POST", "/control", bad_faults)
        assert status == 400, (bad_faults, status)
    ok("/control rejects unknown keys and bad values with 400")


def check_protocol_errors(srv):
    ch = srv.channel()
    s = Session(ch)
    s.send(sample(1, 0, b"x"))
    code, details = s.status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "first message must be" in details, details
    s = Session(ch)
    s.send(b"\x0f\xff\xff")
    code, details = s.status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a MediaStreamMessage" in details, details
    s = Session(ch)
    s.open()
    s.send(descriptor(seq=2))
    assert s.status()[0] == grpc.StatusCode.INVALID_ARGUMENT
    s = Session(ch)
    s.open()
    s.send(M.MediaStreamMessage(sequence_number=2, ack_sequence_number=1), sample(3, 77))
    check_reply(s.next(), 2, 3, 77, False)
    s.close()
    s.status()
    ok("sample first / unparseable bytes / second descriptor -> INVALID_ARGUMENT; "
       "payload-less message unanswered; content-less sample -> ack-only reply")
    req = srv.requests()
    last = [m for m in req["messages"] if m["call"] == req["calls"]]
    assert [m["payload"] for m in last] == ["media_stream_descriptor", "none", "media_sample"], last
    assert [m for m in req["messages"] if m["payload"] == "unparseable"][0]["length"] == 3
    assert req["call_log"][-1]["status"] == "OK"


def check_requests(srv):
    req = srv.requests()
    assert req["calls"] == len(req["call_log"]) and req["calls"] > 10
    first = {}
    for m in req["messages"]:
        first.setdefault(m["call"], m)
        assert ("metadata" in m) == (first[m["call"]] is m), m
    d = next(m for m in req["messages"] if m["payload"] == "media_stream_descriptor")
    assert d["sequence_number"] == 1 and d["ack_sequence_number"] == 0
    assert d["media_stream_descriptor"]["media_descriptor"]["video_frame_sample_format"] == \
        {"encoding": "RAW", "pixel_format": "RGB24", "dimensions": {"width": W, "height": H}, "stride_bytes": 1248}
    assert d["media_stream_descriptor"]["graph_identifier"]["graph_node_name"] == "grpcExtension"
    s = next(m for m in req["messages"] if m.get("content") == "bytes")
    assert s["content_length"] == W * H * 3 and s["address_offset"] is None and s["timestamp"] == 3000, s
    assert "user-agent" in d["metadata"], d
    statuses = {c["status"] for c in req["call_log"]}
    assert {"OK", "INVALID_ARGUMENT", "UNAVAILABLE"} <= statuses, statuses
    ok(f"/requests: {req['calls']} calls, {len(req['messages'])} messages, metadata once per call, "
       f"descriptor JSON, call_log statuses {sorted(statuses)}")


def check_auth():
    srv = Server("--require-auth", "admin:s3cret")
    try:
        ch = srv.channel()
        for md in (None, [("x-ms-authentication", "Basic " + base64.b64encode(b"admin:wrong").decode())]):
            s = Session(ch, md)
            s.send(descriptor())
            code, details = s.status()
            assert code == grpc.StatusCode.UNAUTHENTICATED, code
        good = "Basic " + base64.b64encode(b"admin:s3cret").decode()
        s = Session(ch, [("x-ms-authentication", good)])
        s.open()
        s.close()
        assert s.status()[0] == grpc.StatusCode.OK
        req = srv.requests()
        assert req["calls"] == 3 and [c["status"] for c in req["call_log"]] == ["UNAUTHENTICATED", "UNAUTHENTICATED", "OK"]
        assert len(req["messages"]) == 1 and req["messages"][0]["metadata"]["x-ms-authentication"] == good
        assert "x-ms-authentication" not in req["call_log"][0]["metadata"]
        ok("--require-auth: none / wrong -> UNAUTHENTICATED; right -> served; /requests shows the header")
    finally:
        srv.stop()


def check_tls(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    srv = Server("--tls-cert", cert, "--tls-key", key)
    try:
        with open(cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        s = Session(grpc.secure_channel(f"127.0.0.1:{srv.port}", creds))
        s.open()
        s.send(sample(2, 9, raw(frame_rgb(True), "rgb24")))
        check_reply(s.next(), 2, 2, 9, True)
        s.close()
        s.status()
        s = Session(srv.channel())
        s.send(descriptor())
        assert s.status()[0] == grpc.StatusCode.UNAVAILABLE, "plaintext to a TLS port fails"
        ok("--tls-cert/--tls-key: TLS session works, plaintext client refused")
    finally:
        srv.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_closed_stdout():
    r, w = os.pipe()
    os.close(r)
    port, cport = free_port(), free_port()
    proc = subprocess.Popen([SERVER, "--port", str(port), "--control-port", str(cport)], stdout=w, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{cport}/healthz", timeout=1) as resp:
                    assert resp.read() == b"ok"
                    break
            except OSError:
                time.sleep(0.1)
        s = Session(grpc.insecure_channel(f"127.0.0.1:{port}"))
        s.open()
        s.close()
        s.status()
        assert proc.poll() is None
        ok("closed stdout: server keeps running (healthz, a session) with fixed --port/--control-port")
    finally:
        proc.terminate()
        proc.wait(5)


def main():
    srv = Server()
    try:
        assert srv.http("GET", "/healthz") == (200, b"ok")
        check_embedded(srv)
        check_encoded(srv)
        check_shared_memory(srv)
        check_pipelining(srv)
        check_faults(srv)
        check_protocol_errors(srv)
        check_requests(srv)
    finally:
        srv.stop()
    check_auth()
    with tempfile.TemporaryDirectory() as tmp:
        check_tls(tmp)
    check_closed_stdout()
    print("all checks passed")


if __name__ == "__main__":
    main()
