// NAME: an event filter written with Vigil's JavaScript SDK (vigil_filter).
//
// Build it into a component with ./build.sh (filter.wasm), then name the file in a topology:
//   {"@type": "#Vigil.WasmProcessor", "name": "myFilter", "module": "/path/filter.wasm",
//    "configuration": {"label": "truck"}, "inputs": [{"nodeName": "inference"}]}

import { EventFilter, info, tagOf } from "vigil_filter";

export default class MyFilter extends EventFilter {
  constructor(settings) {
    super(settings);
    // Refuse settings this filter does not know (the message names the key).
    settings.rejectUnknown(["label", "minimumConfidence"], "NAME: ");
    this.label = settings.text("label", "truck");
    this.minimum = settings.number("minimumConfidence", 0.5);
    info(`NAME: keeping ${this.label} from ${this.minimum}`);
  }

  processEvent(event) {
    // Keep the detections and classifications of the label; drop the event when none is left.
    event.inferences = event.inferences.filter((i) => {
      const tag = tagOf(i);
      return tag !== undefined && tag.value === this.label && tag.confidence >= this.minimum;
    });
    return event.inferences.length > 0 ? event : null;
  }
}
