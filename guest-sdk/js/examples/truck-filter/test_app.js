// Unit tests of the truck filter, outside a component:
//   node --test guest-sdk/js/examples/truck-filter/test_app.js
//   (or scripts/build-js-guest.sh --test guest-sdk/js/examples/truck-filter)
// The cases of guest-modules/object-filter/src/rule.rs's tests, plus the Rust rule's edges.

import { test } from "node:test";
import assert from "node:assert/strict";

import { Settings, SettingsError, entity, event, kindOf, namedEvent, rect } from "vigil_filter";

import TruckFilter from "./app.js";

const MIDDLE = rect(0.4, 0.4, 0.2, 0.2);

const one = (label, confidence, box = MIDDLE) => event(7n, [entity(label, confidence, box)]);

test("labels, confidence, region and size all count", () => {
  const f = new TruckFilter(
    Settings.of({
      labels: "Truck, car",
      minimumConfidence: "0.6",
      regionOfInterest: "0.25,0.25,0.5,0.5",
      minimumBoxWidth: "0.1",
    }),
  );
  assert.ok(f.processEvent(one("truck", 0.9)));
  assert.ok(f.processEvent(one("CAR", 0.6)));
  assert.equal(f.processEvent(one("person", 0.9)), null, "label");
  assert.equal(f.processEvent(one("truck", 0.59)), null, "confidence");
  assert.equal(f.processEvent(one("truck", 0.9, rect(0, 0, 0.2, 0.2))), null, "region");
  assert.equal(f.processEvent(one("truck", 0.9, rect(0.4, 0.4, 0.05, 0.2))), null, "size");
});

test("defaults keep any label above half, as detections", () => {
  const f = new TruckFilter(new Settings());
  const out = f.processEvent(event(7n, [entity("anything", 0.5, MIDDLE), namedEvent("x")]));
  assert.equal(out.timestampNs, 7n);
  assert.deepEqual(out.inferences.map(kindOf), ["entity"], "only detections kept");
  assert.equal(f.processEvent(one("anything", 0.49)), null);
});

test("a trigger names the best detection, f32 edges as Rust", () => {
  const f = new TruckFilter(Settings.of({ output: "trigger", eventName: "truckSeen" }));
  const out = f.processEvent(event(9n, [entity("truck", 0.7, MIDDLE), entity("car", 0.9, MIDDLE)]));
  assert.equal(out.inferences.length, 1);
  const trigger = out.inferences[0].payload.val;
  assert.equal(trigger.name, "truckSeen");
  assert.deepEqual(trigger.properties, [
    ["count", "2"],
    ["label", "car"],
    ["confidence", "0.900"],
  ]);
  // 0.5625 is a tie at three decimals: Rust writes it to even.
  const tie = f.processEvent(event(9n, [entity("truck", 0.5625, MIDDLE)]));
  assert.deepEqual(tie.inferences[0].payload.val.properties[2], ["confidence", "0.562"]);
  // The centre rounded to f32 (0.49994999) is inside a region ending at f32 0.49995; unrounded
  // (0.4999499992) it is not. And an f32 0.9 meets a minimum of 0.9 read as f32.
  const edge = new TruckFilter(
    Settings.of({ regionOfInterest: "0,0,0.49995,1", minimumConfidence: 0.9 }),
  );
  const box = rect(0.4666, 0.5, 0.0667, 0.2);
  assert.ok(box.l + box.w / 2 > Math.fround(0.49995), "the edge case it is");
  assert.ok(edge.processEvent(event(1n, [entity("truck", 0.9, box)])));
});

test("a bad configuration names the key", () => {
  for (const [values, needle] of [
    [{ minimumConfidence: "high" }, "'minimumConfidence'"],
    [{ minimumConfidence: 2 }, "'minimumConfidence'"],
    [{ regionOfInterest: "0,0,1" }, "'regionOfInterest'"],
    [{ output: "clip" }, "'output'"],
    [{ label: "truck" }, "unknown configuration key 'label'"],
    [{ Labels: "truck" }, "unknown configuration key 'Labels'"],
    [{ eventName: " " }, "unknown configuration key 'eventName'"],
  ]) {
    assert.throws(
      () => new TruckFilter(Settings.of(values)),
      (e) => e instanceof SettingsError && e.message.includes(needle),
      JSON.stringify(values),
    );
  }
});
