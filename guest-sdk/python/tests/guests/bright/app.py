"""Test guest (tests/python_guest.rs): a frame filter that asks for a 160-pixel-wide luma plane
and reports motion over the whole image when the plane's mean is above `threshold` (default 128)."""

from vigil_filter import FrameFilter, FrameRequest, frame_size, motion, rect, row


class Bright(FrameFilter):
    def __init__(self, settings):
        settings.reject_unknown(["threshold"], prefix="bright: ")
        self.threshold = settings.number("threshold", 128)

    def frame_request(self):
        return FrameRequest(width=160, luma=True, rgb=False)

    def process_frame(self, frame):
        width, height = frame_size(frame)
        total = sum(sum(row(frame.luma, y)) for y in range(height))
        if width and height and total / (width * height) > self.threshold:
            return motion(rect(0, 0, 1, 1))
        return None
