// Test guest (tests/js_guest.rs): a trigger for events in even UTC seconds, an exception in odd
// ones, an endless loop at second 7 of a minute. Each trigger says how many calls its instance
// has had, so a test sees that a fault costs its call only and the next call gets a fresh
// instance.

import { EventFilter, event, namedEvent, secondOf } from "vigil_filter";

export default class Faulty extends EventFilter {
  constructor(settings) {
    super(settings);
    this.calls = 0;
  }

  processEvent(ev) {
    this.calls += 1;
    const second = secondOf(ev.timestampNs);
    if (second % 60n === 7n) {
      for (;;) {
        // the deadline stops this
      }
    }
    if (second % 2n === 1n) {
      throw new Error(`faulty guest: event at ${ev.timestampNs} ns is in an odd second`);
    }
    return event(ev.timestampNs, [namedEvent("objectDetected", { second, calls: this.calls })]);
  }
}
