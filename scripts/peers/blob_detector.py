"""The test peers' deterministic red-blob detector and the image decoder in front of it.

Shared by infer-server.py (HTTP extension stand-in) and grpc-infer-server.py (gRPC extension
stand-in), so both find exactly the same boxes in the same pictures.

decode_image(data, encoding, width, height, pixel_format, stride)
    -> RGB numpy array (H, W, 3) of uint8, or None when the bytes do not decode.
    encoding "raw": pixels laid out per pixel_format, one of rgb24, bgr24, rgba, bgra, argb,
        abgr (packed, stride = bytes from one row to the next, at least width * bytes per
        pixel; the buffer must be exactly height * stride bytes) or yuv420p (planar Y, U, V;
        stride is the Y row stride, each chroma row then takes (stride + 1) // 2 bytes; the
        buffer must be exactly stride * height + 2 * ((stride + 1) // 2) * ((height + 1) // 2)).
        stride None or 0 means rows without padding.
    encoding "jpg" / "png" / "bmp": the bytes must be an image of that container (Pillow).
    encoding None: any image Pillow reads (the HTTP stand-in's rule).

BlobDetector(label, min_fraction).detect(rgb) -> [(label, 0.9, l, t, w, h)] or []
    Pixels with R > 150, G < 110, B < 110; the bounding box of all of them, as fractions of the
    image, when they cover at least min_fraction of it. Matches the red box of the clips of
    make-test-clips.sh (on the road while 8 < t < 12 s).

Needs python3-numpy and python3-pil.
"""
import io

import numpy as np
from PIL import Image

PACKED_ORDER = {
    "rgb24": (3, None), "bgr24": (3, "reverse"),
    "rgba": (4, [0, 1, 2]), "bgra": (4, [2, 1, 0]), "argb": (4, [1, 2, 3]), "abgr": (4, [3, 2, 1]),
}
PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP"}


def decode_image(data, encoding=None, width=0, height=0, pixel_format="", stride=None):
    """The image as an RGB numpy array (H, W, 3), or None (see the module docstring)."""
    if encoding == "raw":
        return decode_raw(data, width, height, pixel_format, stride)
    return decode_encoded(data, PIL_FORMAT.get(encoding))


def decode_raw(data, width, height, pixel_format, stride=None):
    """Raw pixels of one of AVA's pixel formats as RGB, or None on a size or format mismatch."""
    a = np.frombuffer(data, np.uint8)
    if pixel_format in PACKED_ORDER:
        bpp, order = PACKED_ORDER[pixel_format]
        a = packed_rows(a, width, height, bpp, stride)
        if a is None:
            return None
        if order is None:
            return a
        return a[:, :, ::-1] if order == "reverse" else a[:, :, order]
    if pixel_format == "yuv420p":
        return yuv420p_to_rgb(a, width, height, stride)
    return None


def packed_rows(a, w, h, bpp, stride):
    """The (h, w, bpp) pixel array of a packed buffer with rows `stride` bytes apart, or None."""
    row = w * bpp
    stride = stride or row
    if stride < row or a.size != stride * h:
        return None
    if stride != row:
        a = a.reshape(h, stride)[:, :row]
    return a.reshape(h, w, bpp)


def yuv420p_to_rgb(a, w, h, stride=None):
    """BT.601 limited-range YUV 4:2:0 planar to RGB, or None on a size mismatch."""
    cw, ch = (w + 1) // 2, (h + 1) // 2
    ys = stride or w
    cs = (ys + 1) // 2
    if ys < w or a.size != ys * h + 2 * cs * ch:
        return None
    y = a[: ys * h].reshape(h, ys)[:, :w].astype(np.float32)
    u = a[ys * h: ys * h + cs * ch].reshape(ch, cs)[:, :cw].repeat(2, 0).repeat(2, 1)[:h, :w] - 128.0
    v = a[ys * h + cs * ch:].reshape(ch, cs)[:, :cw].repeat(2, 0).repeat(2, 1)[:h, :w] - 128.0
    yy = (y - 16) * 1.164
    rgb = np.stack([yy + 1.596 * v, yy - 0.392 * u - 0.813 * v, yy + 2.017 * u], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def decode_encoded(data, expect=None):
    """A JPEG/PNG/BMP/... file as RGB, or None; with `expect` (a Pillow format name such as
    "JPEG") anything of another format is None too."""
    try:
        img = Image.open(io.BytesIO(data))
        if expect is not None and img.format != expect:
            return None
        return np.asarray(img.convert("RGB"))
    except Exception:
        return None


class BlobDetector:
    def __init__(self, label, min_fraction):
        self.label, self.min_fraction = label, min_fraction

    def detect(self, img):
        r, g, b = (img[:, :, i].astype(np.int16) for i in range(3))
        mask = (r > 150) & (g < 110) & (b < 110)
        if mask.sum() < self.min_fraction * mask.size:
            return []
        ys, xs = np.nonzero(mask)
        h, w = mask.shape
        return [(self.label, 0.9, xs.min() / w, ys.min() / h, (xs.max() + 1 - xs.min()) / w, (ys.max() + 1 - ys.min()) / h)]
