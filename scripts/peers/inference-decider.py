#!/usr/bin/env python3
"""The outside decision module of AVA's evr-hubMessage-video-sink, over MQTT.

Subscribes to the inferences a pipeline publishes (vigil/<pipeline>/outputs/<output>), and for
every inference event with an entity of a chosen label and confidence publishes a trigger to
vigil/<pipeline>/inputs/<input> carrying the inference's eventTime, so the gate opens at the
media time of the frame the object was seen in, however long the round trip took. The same
rule as the in-process object-filter component (labels + minimum confidence).

usage: inference-decider.py --port 1883 --pipeline P [--output detectedObjects]
                            [--input recordingTrigger] [--labels truck,car] [--min-confidence 0.5]
Needs only mosquitto-clients (mosquitto_sub, mosquitto_pub) and the Python standard library.
"""
import argparse
import ctypes
import json
import signal
import subprocess
import sys


def matches(inference, labels, min_confidence):
    if inference.get("type") != "entity":
        return None
    tag = inference.get("entity", {}).get("tag", {})
    label, confidence = str(tag.get("value", "")), float(tag.get("confidence", 1.0))
    if (not labels or label.lower() in labels) and confidence >= min_confidence:
        return label, confidence
    return None


def die_with_parent():
    """The subscriber ends when the decider does, even when the decider is killed (SIGKILL)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--pipeline", required=True)
    ap.add_argument("--output", default="detectedObjects")
    ap.add_argument("--input", default="recordingTrigger")
    ap.add_argument("--labels", default="truck")
    ap.add_argument("--min-confidence", type=float, default=0.5)
    a = ap.parse_args()
    labels = {l.strip().lower() for l in a.labels.split(",") if l.strip()}
    source = f"vigil/{a.pipeline}/outputs/{a.output}"
    target = f"vigil/{a.pipeline}/inputs/{a.input}"
    sub = subprocess.Popen(["mosquitto_sub", "-h", a.host, "-p", str(a.port), "-t", source, "-q", "1"],
                           stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    print(f"decider: {source} -> {target} labels={sorted(labels)} min={a.min_confidence}", flush=True)
    for line in sub.stdout:
        try:
            envelope = json.loads(line)
        except ValueError:
            continue
        hits = [m for m in (matches(i, labels, a.min_confidence)
                            for i in envelope.get("body", {}).get("inferences", [])) if m]
        if not hits:
            continue
        label, confidence = max(hits, key=lambda h: h[1])
        trigger = {"eventTime": envelope.get("properties", {}).get("eventTime"),
                   "messageId": envelope.get("systemProperties", {}).get("messageId"),
                   "label": label, "confidence": confidence, "count": len(hits)}
        subprocess.run(["mosquitto_pub", "-h", a.host, "-p", str(a.port), "-t", target, "-q", "1",
                        "-m", json.dumps(trigger)], check=False)
        print(f"decider: trigger {trigger}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
