// Benchmark guest (runtime/benches/wasm_filters.rs): a frame filter that looks at nothing and
// finds nothing, so a call costs only the crossing into JavaScript (the plane copied in, an empty
// list out). The width comes from the `width` configuration key (default 320).

import { FrameFilter, frameRequest } from "vigil_filter";

export default class NoopFrame extends FrameFilter {
  constructor(settings) {
    super(settings);
    this.width = settings.number("width", 320);
  }

  frameRequest() {
    return frameRequest(this.width, { luma: true });
  }

  processFrame(_frame) {
    return null;
  }
}
