/**
 * The truck filter in JavaScript: Vigil's built-in object filter (guest-modules/object-filter)
 * written with the JavaScript SDK, with the same configuration, the same refusals and the same
 * decisions (boxes and confidences compared in f32, as Rust compares them).
 *
 * It reads inference events (from an HttpExtension or any upstream node), keeps the entity
 * detections the rule accepts and drops events with none; with `output: trigger` it passes one
 * named `event` inference instead, ready to open a signal gate.
 *
 * | key | meaning | default |
 * |---|---|---|
 * | `labels` | comma-separated labels to keep, case-insensitive (`truck,car`) | any label |
 * | `minimumConfidence` | lowest confidence kept, 0-1 | `0.5` |
 * | `regionOfInterest` | `l,t,w,h` normalised; a detection counts when its box centre is inside | whole frame |
 * | `minimumBoxWidth`, `minimumBoxHeight` | smallest box kept, as a fraction of the frame | `0` |
 * | `output` | `detections`: the event with only the matching detections; `trigger`: one `event` inference named `eventName` instead | `detections` |
 * | `eventName` | name of the trigger event | `objectDetected` |
 *
 * Keys are matched exactly and read in the topology's order, as the Rust rule reads them: the
 * first unknown key or bad value refuses the configuration with a message naming the key.
 */

import {
  EventFilter,
  SettingsError,
  event,
  f32,
  fixed,
  info,
  namedEvent,
  sameIgnoringCase,
} from "vigil_filter";

const NAME = "truck-filter";
const KNOWN =
  "labels, minimumConfidence, regionOfInterest, minimumBoxWidth, minimumBoxHeight, output, eventName";
const F32_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A number from 0 to 1 written as text, as f32 (Rust's `value.trim().parse::<f32>()`). */
function fraction(key, value) {
  const t = value.trim();
  const v = F32_TEXT.test(t) ? f32(Number(t)) : NaN;
  if (!(v >= 0 && v <= 1)) {
    throw new SettingsError(`${NAME}: '${key}' must be a number from 0 to 1, not '${value}'`);
  }
  return v;
}

/** Rust's `f32::total_cmp` for the numbers a confidence can be: -0 below +0, NaN above all. */
function totalCmp(a, b) {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number(Number.isNaN(a)) - Number(Number.isNaN(b));
  if (a !== b) return a < b ? -1 : 1;
  return a === 0 ? Number(Object.is(b, -0)) - Number(Object.is(a, -0)) : 0;
}

export default class TruckFilter extends EventFilter {
  constructor(settings) {
    super(settings);
    this.labels = [];
    this.minimumConfidence = f32(0.5);
    this.region = null;
    this.minimumWidth = 0;
    this.minimumHeight = 0;
    this.output = "detections";
    this.eventName = "objectDetected";
    for (const [key, value] of settings.texts()) {
      switch (key) {
        case "labels":
          this.labels = value
            .split(",")
            .map((l) => l.trim().toLowerCase())
            .filter((l) => l !== "");
          break;
        case "minimumConfidence":
          this.minimumConfidence = fraction(key, value);
          break;
        case "minimumBoxWidth":
          this.minimumWidth = fraction(key, value);
          break;
        case "minimumBoxHeight":
          this.minimumHeight = fraction(key, value);
          break;
        case "regionOfInterest": {
          const parts = value.split(",").map((p) => fraction(key, p));
          if (parts.length !== 4) {
            throw new SettingsError(
              `${NAME}: 'regionOfInterest' is 'l,t,w,h' (four numbers 0–1), not '${value}'`,
            );
          }
          const [l, t, w, h] = parts;
          this.region = { l, t, w, h };
          break;
        }
        case "output":
          if (value !== "detections" && value !== "trigger") {
            throw new SettingsError(
              `${NAME}: 'output' is 'detections' or 'trigger', not '${value}'`,
            );
          }
          this.output = value;
          break;
        default:
          if (key === "eventName" && value.trim() !== "") {
            this.eventName = value.trim();
            break;
          }
          // An empty eventName is refused as Rust refuses it: as a key it does not take.
          throw new SettingsError(
            `${NAME}: unknown configuration key '${key}' (known: ${KNOWN})`,
          );
      }
    }
    const r = this.region;
    info(
      `${NAME}: labels=${this.labels.length ? this.labels.join(",") : "any"} ` +
        `minimumConfidence=${fixed(this.minimumConfidence, 3)} ` +
        `region=${r ? `${r.l},${r.t},${r.w},${r.h}` : "whole"} output=${this.output}`,
    );
  }

  /** True when the detection `e` (an entity) counts. */
  matches(e) {
    const { tag, box } = e;
    const labelOk =
      this.labels.length === 0 || this.labels.some((l) => sameIgnoringCase(l, tag.value));
    const cx = f32(box.l + f32(box.w / 2));
    const cy = f32(box.t + f32(box.h / 2));
    const r = this.region;
    const inRegion =
      r === null || (cx >= r.l && cx <= f32(r.l + r.w) && cy >= r.t && cy <= f32(r.t + r.h));
    return (
      labelOk &&
      tag.confidence >= this.minimumConfidence &&
      inRegion &&
      box.w >= this.minimumWidth &&
      box.h >= this.minimumHeight
    );
  }

  processEvent(ev) {
    const kept = ev.inferences.filter((i) => i.payload.tag === "entity" && this.matches(i.payload.val));
    if (kept.length === 0) return null;
    if (this.output === "detections") return event(ev.timestampNs, kept);
    // The most confident detection (the last of equals, as Rust's max_by).
    let best = null;
    for (const i of kept) {
      const tag = i.payload.val.tag;
      if (best === null || totalCmp(tag.confidence, best.confidence) >= 0) best = tag;
    }
    const properties = [
      ["count", String(kept.length)],
      ["label", best.value],
      ["confidence", fixed(best.confidence, 3)],
    ];
    return event(ev.timestampNs, [namedEvent(this.eventName, properties)]);
  }
}
