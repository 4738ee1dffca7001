// Test guest (tests/js_guest.rs): a frame filter that asks for a 160-pixel-wide luma plane and
// reports motion over the whole image when the plane's mean (over its real width: the stride's
// padding does not count) is above `threshold` (default 128).

import { FrameFilter, frameRequest, frameSize, motion, rect, row } from "vigil_filter";

export default class Bright extends FrameFilter {
  constructor(settings) {
    super(settings);
    settings.rejectUnknown(["threshold"], "bright: ");
    this.threshold = settings.number("threshold", 128);
  }

  frameRequest() {
    return frameRequest(160, { luma: true });
  }

  processFrame(frame) {
    const [width, height] = frameSize(frame);
    let total = 0;
    for (let y = 0; y < height; y++) {
      const pixels = row(frame.luma, y);
      for (let x = 0; x < pixels.length; x++) total += pixels[x];
    }
    if (width && height && total / (width * height) > this.threshold) {
      return motion(rect(0, 0, 1, 1));
    }
    return null;
  }
}
