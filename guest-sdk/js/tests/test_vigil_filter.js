// Unit tests of the SDK outside a component: node --test guest-sdk/js/tests/test_vigil_filter.js
// (or scripts/build-js-guest.sh --test guest-sdk/js/tests). The cases of
// guest-modules/vigil-guest's own tests and of the Python SDK's, plus the glue the build exports.

import { test } from "node:test";
import assert from "node:assert/strict";

import * as vf from "vigil_filter";

const T = (val) => ({ tag: "text", val });
const N = (val) => ({ tag: "number", val });
const J = (val) => ({ tag: "json", val });

test("typed values and text read alike", () => {
  const s = new vf.Settings([
    ["minimumConfidence", N(0.5)],
    ["count", N(3)],
    ["Enabled", T(" TRUE ")],
    ["labels", T("truck, car,")],
    ["zones", J('["a", "b"]')],
    ["width", T("320")],
    ["tiny", N(1.5e-7)],
    ["huge", N(1e21)],
  ]);
  assert.equal(s.number("MINIMUMCONFIDENCE"), 0.5);
  assert.equal(s.number("width"), 320);
  assert.equal(s.text("count"), "3");
  assert.equal(s.text("tiny"), "0.00000015", "as Rust writes an f64");
  assert.equal(s.text("huge"), "1000000000000000000000");
  assert.equal(s.flag("enabled"), true);
  assert.equal(s.flag("missing", false), false);
  assert.deepEqual(s.list("labels"), ["truck", "car"]);
  assert.deepEqual(s.list("zones"), ["a", "b"]);
  assert.deepEqual(s.json("zones"), ["a", "b"]);
  assert.throws(() => s.number("labels"), {
    name: "SettingsError",
    message: 'labels must be a number, not "truck, car,"',
  });
  assert.throws(() => s.flag("count"), vf.SettingsError);
  assert.equal(s.number("absent"), undefined);
  assert.equal(s.number("absent", 2), 2);
  assert.equal(s.size, 8);
  assert.ok(s.has("ZONES"));
});

test("text reads as numbers only as Rust does", () => {
  const s = vf.Settings.of({ a: " 0.5 ", b: "1_000", c: "inf", d: "", e: 2, f: true, g: "0x10", h: ".5e1" });
  assert.equal(s.number("a"), 0.5);
  assert.equal(s.number("h"), 5);
  for (const name of ["b", "c", "d", "g"]) {
    assert.throws(() => s.number(name), vf.SettingsError, name);
  }
  assert.equal(s.number("e"), 2);
  assert.deepEqual(s.texts().slice(0, 6), [
    ["a", " 0.5 "],
    ["b", "1_000"],
    ["c", "inf"],
    ["d", ""],
    ["e", "2"],
    ["f", "true"],
  ]);
});

test("unknown keys are named", () => {
  const s = vf.Settings.of({ Labels: "x", colour: "red" });
  assert.throws(() => s.rejectUnknown(["labels"], "f: "), {
    message: "f: unknown configuration key 'colour' (known: labels)",
  });
  s.rejectUnknown(["labels", "COLOUR"]);
});

test("boxes overlap and regions hold centres", () => {
  const a = vf.rect(0, 0, 0.5, 0.5);
  const b = vf.rect(0.25, 0.25, 0.5, 0.5);
  assert.deepEqual(vf.intersection(a, b), vf.rect(0.25, 0.25, 0.25, 0.25));
  assert.ok(Math.abs(vf.iou(a, b) - 0.0625 / 0.4375) < 1e-6);
  assert.equal(vf.intersection(a, vf.rect(0.6, 0.6, 0.1, 0.1)), undefined);
  const region = vf.Region.parse("0.5,0.5,0.5,0.5; 0,0,0.1,0.1");
  assert.equal(region.rects.length, 2);
  assert.ok(region.holdsCenterOf(vf.rect(0.6, 0.6, 0.2, 0.2)));
  assert.ok(!region.holdsCenterOf(a));
  assert.ok(vf.Region.parse("").contains(0.9, 0.9));
  assert.ok(vf.Region.parse(" ").isWhole());
  assert.throws(() => vf.parseRect("0,0,0,1"), /from 0 to 1 with w and h above 0, not "0,0,0,1"/);
  assert.throws(() => vf.Region.parse("1,2"), Error);
  assert.throws(() => vf.parseRect("a,b,c,d"), /a box is four numbers l,t,w,h, not "a,b,c,d"/);
  const c = vf.clamped(vf.rect(-0.1, 0.9, 0.3, 0.3));
  assert.deepEqual([c.l, c.t], [0, vf.f32(0.9)]);
  assert.ok(Math.abs(c.w - 0.2) < 1e-6 && Math.abs(c.h - 0.1) < 1e-6);
  assert.equal(vf.area(a), 0.25);
  assert.ok(vf.contains(a, 0.5, 0.5), "edges included");
});

test("centres are computed in f32", () => {
  const box = vf.rect((1 - 1 / 12) / 2, 0.62, 1 / 12, 1 / 6);
  const [x] = vf.center(box);
  assert.equal(x, vf.f32(vf.f32(box.l) + vf.f32(box.w / 2)));
  assert.equal(vf.f32(x), x);
  const edge = vf.rect(0.4666, 0.5, 0.0667, 0.2);
  assert.ok(vf.Region.parse("0,0,0.49995,1").holdsCenterOf(edge), "inside only in f32");
});

test("numbers are written as Rust writes them", () => {
  assert.equal(vf.fixed(vf.f32(0.9), 3), "0.900");
  assert.equal(vf.fixed(0.5625, 3), "0.562", "a tie goes to even");
  assert.equal(vf.fixed(0.4375, 3), "0.438");
  assert.equal(vf.fixed(2.5, 0), "2");
  assert.equal(vf.fixed(-0.0001, 3), "-0.000");
  assert.equal(vf.fixed(1234.5, 1), "1234.5");
  assert.equal(vf.fixed(NaN, 2), "NaN");
  assert.equal(vf.rustNumber(1e-7), "0.0000001");
  assert.equal(vf.rustNumber(-Infinity), "-inf");
  assert.ok(vf.sameIgnoringCase("TRUCK", "truck") && !vf.sameIgnoringCase("Ä", "ä"));
});

test("constructors and accessors", () => {
  const i = vf.entity("truck", 0.9, vf.rect(0, 0, 1, 1), { subtype: "objectDetection", id: "7" });
  assert.equal(vf.kindOf(i), "entity");
  assert.equal(vf.tagOf(i).value, "truck");
  assert.equal(vf.tagOf(i).confidence, vf.f32(0.9));
  assert.equal(vf.entityOf(i).id, "7");
  assert.equal(i.subtype, "objectDetection");
  assert.deepEqual(i.relatedInferences, []);
  assert.equal(vf.kindOf(vf.motion()), "motion");
  assert.equal(vf.tagOf(vf.motion()), undefined);
  const e = vf.namedEvent("door", { open: true, n: 2 });
  assert.deepEqual(e.payload.val.properties, [
    ["open", "true"],
    ["n", "2"],
  ]);
  assert.equal(vf.kindOf(vf.classification("day", 1)), "classification");
  assert.equal(vf.withSubtype(vf.motion(), "x").subtype, "x");
  assert.deepEqual(vf.text("hi", { startNs: 5 }).payload.val.startNs, 5n);
  assert.deepEqual(vf.other("a/b", [1, 2]).payload.val.content, Uint8Array.from([1, 2]));
  assert.equal(vf.event(1.9, []).timestampNs, 1n);
});

test("rows respect the stride", () => {
  const p = { width: 2, height: 2, stride: 4, data: Uint8Array.from([1, 2, 0, 0, 3, 4, 0, 0]) };
  assert.deepEqual(Array.from(vf.row(p, 1)), [3, 4]);
  assert.equal(vf.row(p, 2), undefined);
  assert.deepEqual(vf.frameSize({ luma: undefined, rgb: p }), [2, 2]);
});

test("time helpers", () => {
  assert.equal(vf.secondsBetween(1_000_000_000n, 3_500_000_000n), 2.5);
  assert.equal(vf.nanos(0.25), 250_000_000n);
  assert.equal(vf.secondOfDay(1_796_196_615n * 1_000_000_000n), 7 * 3600 + 30 * 60 + 15);
  assert.equal(vf.secondOf(-1n), -1n, "rounded down");
  assert.equal(vf.secondOfDay(-1n), 86_399);
  assert.equal(vf.nowNs(), 0n, "no host outside a component");
});

test("an event filter becomes the resource", async () => {
  class Keep extends vf.EventFilter {
    constructor(settings) {
      super(settings);
      this.n = settings.number("n", 1);
    }
    processEvent(event) {
      return this.n > 0 ? event : null;
    }
  }
  const Filter = vf._resource("event", { default: Keep });
  const f = Filter.create([["n", T("1")]]);
  assert.ok(f instanceof Filter);
  const ev = vf.event(5n, [vf.motion()]);
  assert.deepEqual(f.processEvent(ev), [ev]);
  assert.deepEqual(Filter.create([["n", N(0)]]).processEvent(ev), []);
  assert.deepEqual(Filter.create([["n", T("many")]]), {
    tag: "err",
    val: 'n must be a number, not "many"',
  });
  class Late extends vf.EventFilter {
    async processEvent(event) {
      return [event, event];
    }
  }
  assert.deepEqual(await vf._resource("event", { Late }).create([]).processEvent(ev), [ev, ev]);
  class Broken extends vf.EventFilter {
    constructor(settings) {
      super(settings);
      null.x;
    }
  }
  const refused = vf._resource("event", { Broken }).create([]);
  assert.equal(refused.tag, "err");
  assert.match(refused.val, /^TypeError: /, "a bug says what it was");
});

test("a frame filter asks for luma by default", () => {
  class Bright extends vf.FrameFilter {
    processFrame() {
      return vf.motion();
    }
  }
  const f = vf._resource("frame", { Bright, helper: () => 1 }).create([]);
  assert.deepEqual(f.frameRequest(), { width: 320, luma: true, rgb: false });
  const frame = { timestampNs: 0n, sourceWidth: 2, sourceHeight: 2, luma: undefined, rgb: undefined };
  assert.deepEqual(f.processFrame(frame).map(vf.kindOf), ["motion"]);
});

test("the exported class is found or the reason given", () => {
  class A extends vf.EventFilter {}
  class B extends vf.EventFilter {}
  assert.equal(vf._exported("event", { A, default: B }), B);
  assert.throws(() => vf._exported("event", { A, B }), /several EventFilter classes \(A, B\)/);
  assert.throws(() => vf._exported("frame", { A }), /exports no class that extends FrameFilter/);
});
