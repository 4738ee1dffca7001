#!/usr/bin/python3
"""Inference-service stand-in speaking AVA's gRPC extension protocol (shared/grpc-contract.md).

Serves microsoft.azure.media.live_video_analytics.extensibility.grpc.v1.MediaGraphExtension/
ProcessMediaStream (a bidirectional stream of MediaStreamMessage) on 127.0.0.1, with Python
stubs generated at start from runtime/proto/*.proto (python3 -m grpc_tools.protoc into a
temporary directory). One call is one session:

  client descriptor (must come first; a second one, or a sample first, ends the call with
    INVALID_ARGUMENT) -> {sequence_number: 1, ack_sequence_number: <its seq>,
    media_stream_descriptor: {extension_identifier: "vigil-test-extension",
                              media_descriptor: {timescale: <its timescale>}}}
    Its video_frame_sample_format (encoding BMP/JPG/PNG/RAW, pixel_format, dimensions,
    stride_bytes) says how to decode samples; with shared_memory_buffer_transfer_properties,
    /dev/shm/<handle_name> is opened r+b and length_bytes of it mapped (failure: INVALID_ARGUMENT).
  client media_sample -> {sequence_number: 2, 3, ..., ack_sequence_number: <its seq>,
    media_sample: {timestamp: <its timestamp>, inferences: [{type: ENTITY,
      subtype: "objectDetection", entity: {tag: {value: LABEL, confidence: 0.9},
                                           box: {l, t, w, h}}}]}}
    Content from content_bytes, or from the mapped region at content_reference (address_offset,
    length_bytes; outside the region: INVALID_ARGUMENT naming the offsets). The red-blob
    detector of blob_detector.py (the one infer-server.py uses) gives at most one box, as
    fractions of the image received; nothing found -> the same reply with no inferences (an
    ack-only reply). A sample without content gets an ack-only reply. Content that does not
    decode per the descriptor (RAW: exactly height * stride bytes, stride 0 = packed rows; see
    blob_detector.py) ends the call with INVALID_ARGUMENT.
  a message with no payload: recorded, not answered (a pure ack).
  the client half-closes -> the server answers what it has read, then ends the call with OK.
One thread reads requests, another answers them in order (several samples may be in flight).

--port N          gRPC port (default 5001; 0 picks a free one)
--control-port N  HTTP control port (default 0: pick a free one)
--label L, --min-fraction F   the blob detector's label ("truck") and smallest blob (0.002)
--require-auth USER:PASS      calls without metadata x-ms-authentication: Basic base64(USER:PASS)
                  are aborted with UNAUTHENTICATED (before any message is read)
--tls-cert FILE --tls-key FILE   serve gRPC over TLS (PEM chain, PEM key); the control port
                  stays plain HTTP
The first (and only) line on stdout is "ready PORT CONTROL_PORT", once both listen; logs go to
stderr (one line per ended call). Exit 2: bad arguments, protoc failure or a busy port.

Control listener (plain HTTP on 127.0.0.1:CONTROL_PORT):
GET  /healthz   -> "ok"
POST /control   JSON object; replaces the whole fault set ({} clears); 400 on an unknown key or a
                bad value. Keys:
    delay_ms: N            wait N ms before answering each sample (persistent)
    descriptor_delay_ms: N wait N ms before answering each client descriptor (persistent)
    no_ack: true           read samples but never answer them (persistent)
    close_after: N         after answering N more samples (counted over all calls), end that call
                           with OK, i.e. the server closes the stream; 0 = the next sample ends
                           its call unanswered. Spent once it fires.
    abort: "UNAVAILABLE"   (any grpc status code name but OK) end the call at the next sample
                           with that status, details "injected fault". Spent once it fires.
    garbage: true          answer the next sample with bytes that are not a protobuf message.
                           Spent once it fires.
    oversized_kib: N       add to the next answer an EVENT inference whose name is N KiB long
                           (an answer over a client's size limit). Spent once it fires.
    Per sample the order is: abort, close_after 0, no_ack, delay_ms, garbage, answer.
GET  /control   -> the current fault set (what is left of close_after; spent keys gone)
GET  /requests  -> {"calls": N,
                    "messages": [{"call": n, "received": unix time,
                                  "sequence_number": s, "ack_sequence_number": a,
                                  "payload": "media_stream_descriptor" | "media_sample" | "none"
                                             | "unparseable",
                                  "metadata": {...}            (first message of each call only)
                                  "media_stream_descriptor": {MessageToDict, proto field
                                      names, uint64 as strings, enums as names} (descriptors)
                                  "timestamp": t, "content": "bytes" | "reference" | "none",
                                  "content_length": bytes, "address_offset": o | null,
                                  "inferences": [MessageToDict of each upstream inference]
                                                               (samples)
                                  "length": bytes              (unparseable only)}, ...],
                    "call_log": [{"call": n, "peer": "ipv4:127.0.0.1:P", "metadata": {...},
                                  "status": "OK" | grpc code name | null while running,
                                  "details": "..."}, ...]}
                every message of every call in arrival order; metadata is the call's request
                metadata (x-ms-authentication among it), "-bin" values base64.

Needs python3-grpcio, python3-grpc-tools, python3-protobuf, python3-numpy, python3-pil
(scripts/setup-media.sh installs them). Runs under /usr/bin/python3 (the shebang).
"""
import argparse
import base64
import glob
import importlib
import json
import mmap
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)
from blob_detector import BlobDetector, decode_image  # noqa: E402

PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "runtime", "proto"))
SERVICE = "microsoft.azure.media.live_video_analytics.extensibility.grpc.v1.MediaGraphExtension"
METHOD = "ProcessMediaStream"
EXTENSION_ID = "vigil-test-extension"
# Field 1 with wire type 7, which does not exist: no protobuf parser accepts this.
GARBAGE = b"\x0f\xff\xff not a protobuf message"
MAX_MESSAGE = 256 * 1024 * 1024
STATUS_NAMES = {c.name: c for c in grpc.StatusCode if c is not grpc.StatusCode.OK}


def log(text):
    try:
        print(f"grpc-infer-server: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def load_stubs():
    """Generates the message classes from runtime/proto into a temporary directory and imports
    them: .extension (MediaStreamMessage, ...), .media, .inferencing (Inference, ...)."""
    protos = sorted(glob.glob(os.path.join(PROTO_DIR, "*.proto")))
    if not protos:
        sys.exit(f"grpc-infer-server: no .proto files in {PROTO_DIR}")
    out = tempfile.mkdtemp(prefix="grpc-infer-stubs-")
    try:
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}", *protos]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            log(f"protoc failed ({run.returncode}): {run.stderr.strip()}")
            sys.exit(2)
        sys.path.insert(0, out)
        try:
            return types.SimpleNamespace(**{name: importlib.import_module(f"{name}_pb2")
                                            for name in ("extension", "media", "inferencing")})
        finally:
            sys.path.remove(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


# ---------------------------------------------------------------- shared state and faults

class State:
    """Everything the control listener shows or sets, shared by all calls."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = 0
        self.messages = []
        self.call_log = []
        self.faults = {}

    def new_call(self, peer, metadata):
        with self.lock:
            self.calls += 1
            self.call_log.append({"call": self.calls, "peer": peer, "metadata": metadata,
                                  "status": None, "details": ""})
            return self.calls

    def end_call(self, n, status, details):
        """Records how call n ended; only the first ending counts."""
        with self.lock:
            entry = self.call_log[n - 1]
            if entry["status"] is None:
                entry["status"], entry["details"] = status, details
                return True
            return False

    def record(self, entry):
        with self.lock:
            self.messages.append(entry)

    def snapshot(self):
        with self.lock:
            return json.dumps({"calls": self.calls, "messages": self.messages, "call_log": self.call_log})

    def fault(self, key):
        with self.lock:
            return self.faults.get(key)

    def take(self, key):
        """A one-shot fault: its value, removed from the set (None when not set)."""
        with self.lock:
            return self.faults.pop(key, None)

    def count_down(self):
        """One more sample answered; True when that was close_after's last one (then spent)."""
        with self.lock:
            left = self.faults.get("close_after")
            if left is None:
                return False
            if left <= 1:
                del self.faults["close_after"]
                return True
            self.faults["close_after"] = left - 1
            return False


def parse_faults(body):
    """The fault set POSTed to /control, checked and normalised; ValueError on bad input."""
    faults = json.loads(body or b"{}")
    if not isinstance(faults, dict):
        raise ValueError("a JSON object is expected")
    out = {}
    for key, value in faults.items():
        if key in ("delay_ms", "descriptor_delay_ms", "close_after", "oversized_kib"):
            out[key] = non_negative_int(key, value)
        elif key in ("no_ack", "garbage"):
            out[key] = value in (True, 1, "1", "true")
        elif key == "abort":
            if value not in STATUS_NAMES:
                raise ValueError(f"abort: {value!r} is not a gRPC status code name other than OK")
            out[key] = value
        else:
            raise ValueError(f"unknown key {key!r}")
    return {k: v for k, v in out.items() if v is not False}


def non_negative_int(key, value):
    try:
        n = int(float(value))
    except (TypeError, ValueError):
        raise ValueError(f"{key}: {value!r} is not a number")
    if n < 0:
        raise ValueError(f"{key}: {n} is negative")
    return n


# ---------------------------------------------------------------- recording

def metadata_dict(context):
    """The call's request metadata as {key: value}, binary values base64."""
    out = {}
    for key, value in context.invocation_metadata():
        out[key] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return out


def message_entry(n, msg):
    """What /requests shows of one parsed message of call n."""
    payload = msg.WhichOneof("payload") or "none"
    entry = {"call": n, "received": time.time(), "sequence_number": msg.sequence_number,
             "ack_sequence_number": msg.ack_sequence_number, "payload": payload}
    if payload == "media_stream_descriptor":
        entry[payload] = to_dict(msg.media_stream_descriptor)
    elif payload == "media_sample":
        entry.update(sample_entry(msg.media_sample))
    return entry


def sample_entry(sample):
    kind = sample.WhichOneof("content")
    entry = {"timestamp": sample.timestamp, "content": "none", "content_length": 0, "address_offset": None,
             "inferences": [to_dict(i) for i in sample.inferences]}
    if kind == "content_bytes":
        entry.update(content="bytes", content_length=len(sample.content_bytes.bytes))
    elif kind == "content_reference":
        ref = sample.content_reference
        entry.update(content="reference", content_length=ref.length_bytes, address_offset=ref.address_offset)
    return entry


def to_dict(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# ---------------------------------------------------------------- one call

class Abort(Exception):
    """Ends the call with a gRPC status."""

    def __init__(self, code, details):
        super().__init__(details)
        self.code, self.details = code, details


class Close(Exception):
    """Ends the call with OK (the server closes the stream)."""


class Gone(Exception):
    """The client cancelled the call, or it ended otherwise under us."""


def enum_name(message, field):
    """The name of an enum field's value ("RAW"), or its number for an unknown value."""
    value = getattr(message, field)
    known = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(value)
    return known.name if known else str(value)


class SampleFormat:
    """How the client's samples decode, from its video_frame_sample_format."""

    def __init__(self, vf):
        self.encoding = enum_name(vf, "encoding").lower()
        self.pixel_format = enum_name(vf, "pixel_format").lower()
        self.width, self.height = vf.dimensions.width, vf.dimensions.height
        self.stride = vf.stride_bytes

    def decode(self, data):
        return decode_image(data, self.encoding, self.width, self.height, self.pixel_format, self.stride)

    def __str__(self):
        if self.encoding != "raw":
            return self.encoding.upper()
        return f"RAW {self.pixel_format} {self.width}x{self.height} stride {self.stride}"


class SharedMemory:
    """The client's /dev/shm region, mapped for the whole call."""

    def __init__(self, props):
        name, self.length = props.handle_name, props.length_bytes
        self.path = os.path.join("/dev/shm", name)
        if not name or "/" in name or name in (".", ".."):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad shared memory handle_name {name!r}")
        if self.length == 0:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"shared memory {self.path}: length_bytes is 0")
        try:
            with open(self.path, "r+b") as f:
                self.map = mmap.mmap(f.fileno(), self.length)
        except (OSError, ValueError) as e:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"cannot map {self.length} bytes of {self.path}: {e}")

    def read(self, offset, length):
        end = offset + length
        if end > self.length:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"content_reference address_offset {offset} length_bytes {length} ends at {end}, "
                        f"past the {self.length}-byte shared memory region {self.path}")
        return self.map[offset:end]

    def close(self):
        self.map.close()


class Call:
    """One ProcessMediaStream session: a reader thread queues what arrives, the handler's own
    thread (this generator) answers it in order."""

    def __init__(self, pb, state, detector, auth, context):
        self.pb, self.state, self.detector, self.auth, self.context = pb, state, detector, auth, context
        self.metadata = metadata_dict(context)
        self.n = state.new_call(context.peer(), self.metadata)
        self.queue = queue.Queue()
        self.format = None
        self.shm = None
        self.seq = 0

    # -- entry point
    def run(self, requests):
        try:
            if self.auth is not None and self.metadata.get("x-ms-authentication") != self.auth:
                raise Abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong x-ms-authentication")
            self.context.add_callback(lambda: self.queue.put(("gone", "cancelled")))
            threading.Thread(target=self.read, args=(requests,), daemon=True, name=f"read-{self.n}").start()
            yield from self.answer_all()
            self.finish("OK", "client half-closed")
        except Close as e:
            self.finish("OK", str(e))
        except Gone as e:
            self.finish("CANCELLED", str(e))
        except Abort as e:
            self.finish(e.code.name, e.details)
            self.context.abort(e.code, e.details)
        finally:
            if self.shm is not None:
                self.shm.close()
            self.finish("CANCELLED", "cancelled")

    def finish(self, status, details):
        if self.state.end_call(self.n, status, details):
            log(f"call {self.n}: {status} {details}")

    # -- reader thread
    def read(self, requests):
        first = True
        try:
            for raw in requests:
                msg = self.parse(raw, first)
                if msg is None:
                    return
                payload = msg.WhichOneof("payload")
                if first != (payload == "media_stream_descriptor"):
                    what = "the first message must be" if first else "only the first message may be"
                    return self.fail(f"message {msg.sequence_number}: {what} a media_stream_descriptor")
                first = False
                if payload is not None:
                    self.queue.put((payload, msg))
            self.queue.put(("end", None))
        except grpc.RpcError:  # cancelled by the client
            self.queue.put(("gone", "cancelled"))
        except Exception:
            log(f"call {self.n}: reader failed:\n{traceback.format_exc()}")
            self.queue.put(("gone", "the reader failed"))

    def parse(self, raw, first):
        msg = self.pb.extension.MediaStreamMessage()
        try:
            msg.ParseFromString(raw)
        except Exception:
            self.record({"call": self.n, "received": time.time(), "payload": "unparseable", "length": len(raw)}, first)
            self.fail(f"a request of {len(raw)} bytes is not a MediaStreamMessage")
            return None
        self.record(message_entry(self.n, msg), first)
        return msg

    def record(self, entry, first):
        if first:
            entry["metadata"] = self.metadata
        self.state.record(entry)

    def fail(self, details):
        self.queue.put(("error", details))

    # -- answering thread
    def answer_all(self):
        while True:
            kind, item = self.queue.get()
            if kind == "end":
                return self.settle()
            if kind == "gone":
                raise Gone(item)
            if kind == "error":
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, item)
            if kind == "media_stream_descriptor":
                yield self.answer_descriptor(item)
            else:
                yield from self.answer_sample(item)

    def settle(self):
        """After the end of the requests: grpc reports a cancel as an end of stream too, and
        says it was a cancel a moment later (the termination callback queues "gone")."""
        try:
            kind, item = self.queue.get(timeout=0.05)
        except queue.Empty:
            return
        if kind == "gone":
            raise Gone(item)

    def answer_descriptor(self, msg):
        delay(self.state.fault("descriptor_delay_ms"))
        d = msg.media_stream_descriptor
        if d.media_descriptor.WhichOneof("media_sample_format") == "video_frame_sample_format":
            self.format = SampleFormat(d.media_descriptor.video_frame_sample_format)
        if d.WhichOneof("data_transfer_properties") == "shared_memory_buffer_transfer_properties":
            self.shm = SharedMemory(d.shared_memory_buffer_transfer_properties)
        reply = self.reply(msg)
        reply.media_stream_descriptor.extension_identifier = EXTENSION_ID
        reply.media_stream_descriptor.media_descriptor.SetInParent()
        reply.media_stream_descriptor.media_descriptor.timescale = d.media_descriptor.timescale
        return reply

    def answer_sample(self, msg):
        """Zero or one answer to a sample, after the fault switches."""
        code = self.state.take("abort")
        if code is not None:
            raise Abort(STATUS_NAMES[code], "injected fault")
        if self.state.fault("close_after") == 0:
            self.state.take("close_after")
            raise Close("close_after reached")
        if self.state.fault("no_ack"):
            return
        delay(self.state.fault("delay_ms"))
        oversized = self.state.take("oversized_kib")
        if self.state.take("garbage"):
            yield GARBAGE
        else:
            reply = self.sample_reply(msg)
            if oversized:
                padding = reply.media_sample.inferences.add()
                padding.type = self.pb.inferencing.Inference.EVENT
                padding.event.name = "x" * (oversized * 1024)
            yield reply
        if self.state.count_down():
            raise Close("close_after reached")

    def sample_reply(self, msg):
        """The answer: the request's timestamp and one ENTITY inference per detection (none for
        a sample without content)."""
        data = self.content(msg)
        found = [] if data is None else self.detect(msg, data)
        reply = self.reply(msg)
        reply.media_sample.SetInParent()
        reply.media_sample.timestamp = msg.media_sample.timestamp
        for label, conf, l, t, w, h in found:
            inference = reply.media_sample.inferences.add()
            inference.type = self.pb.inferencing.Inference.ENTITY
            inference.subtype = "objectDetection"
            inference.entity.tag.value = label
            inference.entity.tag.confidence = conf
            box = inference.entity.box
            box.l, box.t, box.w, box.h = float(l), float(t), float(w), float(h)
        return reply

    def content(self, msg):
        """The sample's bytes (embedded or from shared memory), or None when it has none."""
        sample = msg.media_sample
        kind = sample.WhichOneof("content")
        if kind == "content_bytes":
            return sample.content_bytes.bytes
        if kind != "content_reference":
            return None
        if self.shm is None:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"sample {msg.sequence_number}: content_reference but the descriptor set up no shared memory")
        return self.shm.read(sample.content_reference.address_offset, sample.content_reference.length_bytes)

    def detect(self, msg, data):
        if self.format is None:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"sample {msg.sequence_number}: content but the descriptor has no video_frame_sample_format")
        img = self.format.decode(data)
        if img is None or img.size == 0:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"sample {msg.sequence_number}: {len(data)} bytes do not decode as {self.format}")
        return self.detector.detect(img)

    def reply(self, msg):
        self.seq += 1
        return self.pb.extension.MediaStreamMessage(sequence_number=self.seq, ack_sequence_number=msg.sequence_number)


def delay(ms):
    if ms:
        time.sleep(ms / 1000)


def make_handler(pb, state, detector, auth):
    def process_media_stream(requests, context):
        return Call(pb, state, detector, auth, context).run(requests)

    method = grpc.stream_stream_rpc_method_handler(
        process_media_stream,
        request_deserializer=lambda raw: raw,  # parsed by the call, so bad bytes are recorded
        response_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString())
    return grpc.method_handlers_generic_handler(SERVICE, {METHOD: method})


# ---------------------------------------------------------------- control listener

def make_control_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _send(self, code, body, ctype="application/json"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/healthz":
                return self._send(200, b"ok", "text/plain")
            if self.path == "/requests":
                return self._send(200, state.snapshot().encode())
            if self.path == "/control":
                with state.lock:
                    return self._send(200, json.dumps(state.faults).encode())
            self._send(404, b'{"error":"not found"}')

        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/control":
                return self._send(404, b'{"error":"not found"}')
            try:
                faults = parse_faults(data)
            except ValueError as e:
                return self._send(400, json.dumps({"error": str(e)}).encode())
            with state.lock:
                state.faults = faults
            self._send(200, b"{}")

    return Handler


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=5001, help="gRPC port (0 picks a free one)")
    ap.add_argument("--control-port", type=int, default=0, help="HTTP control port (0 picks a free one)")
    ap.add_argument("--label", default="truck", help="label of the blob detector's detections")
    ap.add_argument("--min-fraction", type=float, default=0.002, help="smallest blob, as a fraction of the image")
    ap.add_argument("--require-auth", metavar="USER:PASS", help="demand x-ms-authentication: Basic base64(USER:PASS)")
    ap.add_argument("--tls-cert", help="serve gRPC over TLS with this PEM certificate chain (needs --tls-key)")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    a = ap.parse_args()
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if a.require_auth is not None and ":" not in a.require_auth:
        ap.error("--require-auth takes USER:PASS")
    return a


def expected_auth(user_pass):
    return None if user_pass is None else "Basic " + base64.b64encode(user_pass.encode()).decode()


def start_grpc(a, handler):
    """The started server and its port; exits 2 when the port cannot be bound."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                  ("grpc.max_send_message_length", MAX_MESSAGE),
                                  ("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    address = f"127.0.0.1:{a.port}"
    try:
        if a.tls_cert:
            with open(a.tls_key, "rb") as k, open(a.tls_cert, "rb") as c:
                port = server.add_secure_port(address, grpc.ssl_server_credentials([(k.read(), c.read())]))
        else:
            port = server.add_insecure_port(address)
    except (OSError, RuntimeError) as e:
        log(f"cannot listen on {address}: {e}")
        sys.exit(2)
    if not port:
        log(f"cannot listen on {address}")
        sys.exit(2)
    server.start()
    return server, port


def start_control(state, port):
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), make_control_handler(state))
    except OSError as e:
        log(f"cannot listen on control port {port}: {e}")
        sys.exit(2)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="control").start()
    return server


def announce(line):
    """Prints the ready line; a closed stdout is ignored (and never written to again)."""
    try:
        print(line, flush=True)
    except (OSError, ValueError):
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        except OSError:
            pass


def main():
    a = parse_args()
    pb = load_stubs()
    state = State()
    handler = make_handler(pb, state, BlobDetector(a.label, a.min_fraction), expected_auth(a.require_auth))
    server, port = start_grpc(a, handler)
    control = start_control(state, a.control_port)
    announce(f"ready {port} {control.server_address[1]}")
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    sys.exit(main())
