// Unit tests of NAME, run outside a component: node --test test_app.js (or ./build.sh --test).

import { test } from "node:test";
import assert from "node:assert/strict";

import { Settings, SettingsError, entity, event, rect, tagOf } from "vigil_filter";

import MyFilter from "./app.js";

const BOX = rect(0.4, 0.4, 0.2, 0.2);

test("keeps the label above the minimum", () => {
  const f = new MyFilter(Settings.of({ label: "truck", minimumConfidence: 0.6 }));
  const out = f.processEvent(event(7n, [entity("truck", 0.9, BOX), entity("car", 0.9, BOX)]));
  assert.deepEqual(out.inferences.map((i) => tagOf(i).value), ["truck"]);
  assert.equal(f.processEvent(event(7n, [entity("truck", 0.5, BOX)])), null);
});

test("refuses an unknown key", () => {
  assert.throws(() => new MyFilter(Settings.of({ lable: "truck" })), SettingsError);
});
