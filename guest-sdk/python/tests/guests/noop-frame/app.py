"""Benchmark guest (runtime/benches/wasm_filters.rs): a frame filter that looks at nothing and
finds nothing, so a call costs only the crossing into Python (the plane copied in, an empty list
out). The width comes from the `width` configuration key (default 320)."""

from vigil_filter import FrameFilter, FrameRequest


class NoopFrame(FrameFilter):
    def __init__(self, settings):
        self.width = int(settings.number("width", 320))

    def frame_request(self):
        return FrameRequest(width=self.width, luma=True, rgb=False)

    def process_frame(self, frame):
        return None
