/**
 * Write Vigil filter components in JavaScript, against `vigil:filter@0.2.0` (`wit/0.2`).
 *
 * A frame filter (called with decoded frames) extends {@link FrameFilter}; an event filter
 * (called with inference events) extends {@link EventFilter}. The host creates one instance per
 * node from the node's {@link Settings} and keeps it, so state lives in `this`:
 *
 *     import { EventFilter, tagOf } from "vigil_filter";
 *
 *     export default class Trucks extends EventFilter {
 *       constructor(settings) {
 *         super(settings);
 *         this.minimum = settings.number("minimumConfidence", 0.5);
 *       }
 *       processEvent(event) {
 *         event.inferences = event.inferences.filter((i) => {
 *           const t = tagOf(i);
 *           return t && t.value === "truck" && t.confidence >= this.minimum;
 *         });
 *         return event.inferences.length ? event : null;
 *       }
 *     }
 *
 * `scripts/build-js-guest.sh DIR OUT.wasm` turns the `app.js` in `DIR` into a component (with
 * ComponentizeJS; it finds the world from the class's base). Mirrors the Rust SDK
 * (`guest-modules/vigil-guest`) and the Python one (`guest-sdk/python`): the same settings
 * rules, box helpers that compute in f32 as the contract's numbers are (so a JavaScript filter
 * decides like a Rust one at the edges), inference builders, the host's log and the stream clock.
 *
 * The contract's values are plain objects as ComponentizeJS (jco) maps them: records with
 * camelCase fields (`timestampNs`, `sourceWidth`, `inferenceId`...), variants as
 * `{tag, val}` (`payload: {tag: "entity", val: {...}}`), options as a value or `undefined`,
 * tuples as arrays, `list<u8>` as `Uint8Array`, and `s64` times as BigInt nanoseconds.
 *
 * What the SDK does with what a filter gives:
 *
 * - A constructor that throws refuses the configuration: the host reports the message and does
 *   not start the node. {@link SettingsError} messages name the setting.
 * - `processEvent` may return `null`/`undefined` (drop the event), one event or an array of
 *   them; `processFrame` `null`, one inference or an array of them.
 * - An exception in `processEvent` / `processFrame` / `frameRequest` is a fault of that call:
 *   its message and stack go to the host's log (stderr), the host reports a `ModuleFault` and
 *   the next call gets a fresh instance (the constructor runs again).
 *
 * Outside a component (unit tests with `node --test`) nothing is bound to the host: the log
 * writes to stderr and the stream clock reads 0.
 *
 * @module vigil_filter
 */

// ---------------------------------------------------------------------------------------------
// The host (`vigil:filter/host@0.2.0`): bound by the build's generated entry module, so this
// module imports nothing and loads in plain Node too.

let host = null;

/**
 * Binds the host's functions (`log`, `nowNs`); the build's entry module calls it.
 * @param {{log: (level: string, message: string) => void, nowNs: () => bigint}} functions
 */
export function _bindHost(functions) {
  host = functions;
}

// ---------------------------------------------------------------------------------------------
// Log and time.

function log(level, message) {
  const text = String(message);
  if (host) {
    host.log(level, text);
  } else {
    console.error(`${level}: ${text}`);
  }
}

/** Logs at debug level (the host's log, tagged with the node). */
export function debug(message) {
  log("debug", message);
}

/** Logs at info level. */
export function info(message) {
  log("info", message);
}

/** Logs at warn level. */
export function warn(message) {
  log("warn", message);
}

/** Logs at error level. */
export function error(message) {
  log("error", message);
}

/** Nanoseconds in a second (a BigInt, as the contract's times are). */
export const NANOS_PER_SECOND = 1_000_000_000n;

/** A time as BigInt nanoseconds: a BigInt as it is, a number truncated. */
export function ns(time) {
  return typeof time === "bigint" ? time : BigInt(Math.trunc(Number(time)));
}

/** The stream clock: UTC ns (BigInt) of the frame or event being processed (outside: 0n). */
export function nowNs() {
  return host ? BigInt(host.nowNs()) : 0n;
}

/** Seconds (a number) from `earlierNs` to `laterNs` (negative when `laterNs` is earlier). */
export function secondsBetween(earlierNs, laterNs) {
  return Number(ns(laterNs) - ns(earlierNs)) / 1e9;
}

/** `seconds` as BigInt nanoseconds (truncated). */
export function nanos(seconds) {
  return BigInt(Math.trunc(seconds * 1e9));
}

/** The whole seconds (BigInt, rounded down) of a UTC time in nanoseconds. */
export function secondOf(timeNs) {
  const t = ns(timeNs);
  const q = t / NANOS_PER_SECOND;
  return t < 0n && q * NANOS_PER_SECOND !== t ? q - 1n : q;
}

/** The second of the day (0..86400, a number) of a UTC time, for rules such as "only at night". */
export function secondOfDay(timeNs) {
  const day = 86_400n;
  return Number(((secondOf(timeNs) % day) + day) % day);
}

// ---------------------------------------------------------------------------------------------
// Text as Rust writes and reads it.

/** ASCII lower case: names and labels compare as Rust's `eq_ignore_ascii_case` does. */
export function asciiLower(text) {
  return String(text).replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** Whether two texts are equal ignoring ASCII case (Rust's `eq_ignore_ascii_case`). */
export function sameIgnoringCase(a, b) {
  return a.length === b.length && asciiLower(a) === asciiLower(b);
}

const RUST_FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * A finite number written as text, read as Rust's `str::parse::<f64>` does after `trim()`
 * (no hex, no digit separators, no empty text), else `undefined`.
 */
export function parseNumber(text) {
  const t = String(text).trim();
  if (!RUST_FLOAT.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** The shortest round-trip digits of a finite number without an exponent (Rust's `{}`). */
function plainDecimal(n) {
  const s = String(n);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, whole, frac = "", exp] = m;
  const digits = whole + frac;
  const point = whole.length + Number(exp);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return sign + digits + "0".repeat(point - digits.length);
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** A number as Rust's `f64` `Display` writes it (`NaN`, `inf`, no exponent). */
export function rustNumber(n) {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "inf";
  if (n === -Infinity) return "-inf";
  return plainDecimal(n);
}

/**
 * `x` with `digits` decimals as Rust's `format!("{:.N}", x)` writes it: from the exact binary
 * value, ties to even (JavaScript's `toFixed` rounds ties up: `0.5625.toFixed(3)` is `0.563`,
 * Rust writes `0.562`).
 */
export function fixed(x, digits = 0) {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (biased === 0 ? 1 : biased) - 1075; // x = mantissa * 2^exponent
  const scale = 10n ** BigInt(digits);
  let q;
  if (exponent >= 0) {
    q = (mantissa << BigInt(exponent)) * scale;
  } else {
    const num = mantissa * scale;
    const den = 1n << BigInt(-exponent);
    q = num / den;
    const twice = (num % den) * 2n;
    if (twice > den || (twice === den && q % 2n === 1n)) q += 1n;
  }
  let text = q.toString().padStart(digits + 1, "0");
  if (digits > 0) text = `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  return negative ? `-${text}` : text;
}

function quoted(text) {
  return JSON.stringify(text);
}

// ---------------------------------------------------------------------------------------------
// Settings (mirrors guest-modules/vigil-guest/src/settings.rs).

/** A setting that is missing, unknown or of the wrong kind; the message names it. */
export class SettingsError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "SettingsError";
  }
}

/** A configuration value as text: text as it is, numbers and flags as written, JSON as JSON. */
function textOf(v) {
  switch (v.tag) {
    case "text":
    case "json":
      return v.val;
    case "flag":
      return v.val ? "true" : "false";
    default: {
      const n = Number(v.val);
      if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n === 0 ? 0 : n);
      return rustNumber(n);
    }
  }
}

/** A plain value as a configuration value (for tests): text, flag, number, array/object (JSON). */
function valueOf(plain) {
  if (plain !== null && typeof plain === "object" && typeof plain.tag === "string" && "val" in plain) {
    return plain;
  }
  switch (typeof plain) {
    case "boolean":
      return { tag: "flag", val: plain };
    case "number":
    case "bigint":
      return { tag: "number", val: Number(plain) };
    case "string":
      return { tag: "text", val: plain };
    case "object":
      if (plain !== null) return { tag: "json", val: JSON.stringify(plain) };
    // falls through
    default:
      throw new TypeError(`no configuration value for ${String(plain)}`);
  }
}

/**
 * A node's `configuration` with typed access.
 *
 * Names are matched case-insensitively (AVA's names are camelCase, users write them as they
 * like); a value given as text (every `${parameter}` is text) is read as a number or a flag when
 * one is asked for. Readers with a default return it when the setting is absent and throw
 * {@link SettingsError} when it is present but of the wrong kind.
 */
export class Settings {
  /** @param {Array<[string, {tag: string, val: any}]>} entries the host's `config` */
  constructor(entries = []) {
    this._entries = Array.from(entries, ([k, v]) => [k, v]);
  }

  /**
   * Settings from plain values (for unit tests): `Settings.of({labels: "truck"})`; strings stay
   * text, booleans are flags, numbers numbers, arrays and objects JSON.
   */
  static of(values) {
    const pairs = Array.isArray(values) ? values : Object.entries(values);
    return new Settings(pairs.map(([k, v]) => [k, valueOf(v)]));
  }

  /** Every name, in the topology's order. */
  names() {
    return this._entries.map(([k]) => k);
  }

  /** Every entry as [name, value] (`{tag, val}`), in the topology's order. */
  entries() {
    return this._entries.map(([k, v]) => [k, v]);
  }

  /** Every entry as [name, text]: text as it is, numbers and flags as written, JSON as JSON. */
  texts() {
    return this._entries.map(([k, v]) => [k, textOf(v)]);
  }

  /** How many entries there are. */
  get size() {
    return this._entries.length;
  }

  /** Whether a setting of this name is there (any case). */
  has(name) {
    return this.get(name) !== undefined;
  }

  /** The value (`{tag, val}`) named `name`, or `undefined`. */
  get(name) {
    const wanted = asciiLower(name);
    const found = this._entries.find(([k]) => asciiLower(k) === wanted);
    return found ? found[1] : undefined;
  }

  /** The value named `name` as text (see {@link Settings#texts}), trimmed; else `fallback`. */
  text(name, fallback = undefined) {
    const v = this.get(name);
    return v === undefined ? fallback : textOf(v).trim();
  }

  /** The number named `name`: a number, or text that reads as one; else `fallback`. */
  number(name, fallback = undefined) {
    const v = this.get(name);
    if (v === undefined) return fallback;
    if (v.tag === "number") return Number(v.val);
    if (v.tag === "text") {
      const n = parseNumber(v.val);
      if (n === undefined) throw new SettingsError(`${name} must be a number, not ${quoted(v.val)}`);
      return n;
    }
    throw new SettingsError(`${name} must be a number, not ${textOf(v)}`);
  }

  /** The flag named `name`: a boolean, or the text `true` / `false` (any case); else `fallback`. */
  flag(name, fallback = undefined) {
    const v = this.get(name);
    if (v === undefined) return fallback;
    if (v.tag === "flag") return Boolean(v.val);
    if (v.tag === "text") {
      const t = asciiLower(v.val.trim());
      if (t === "true" || t === "false") return t === "true";
    }
    throw new SettingsError(`${name} must be true or false, not ${textOf(v)}`);
  }

  /**
   * The list named `name`: an array's items, or text split at commas; each item trimmed, empty
   * ones left out (absent: empty).
   */
  list(name) {
    const v = this.get(name);
    if (v === undefined) return [];
    let items;
    if (v.tag === "json" && v.val.trimStart().startsWith("[")) {
      try {
        const parsed = JSON.parse(v.val);
        items = (Array.isArray(parsed) ? parsed : [parsed]).map((i) =>
          typeof i === "string" ? i : JSON.stringify(i),
        );
      } catch {
        items = v.val
          .trim()
          .replace(/^\[+/, "")
          .replace(/\]+$/, "")
          .split(",")
          .map((s) => s.trim().replace(/^"+|"+$/g, ""));
      }
    } else {
      items = textOf(v).split(",");
    }
    return items.map((s) => s.trim()).filter((s) => s !== "");
  }

  /**
   * The value named `name` as data: an array or object parsed, text parsed as JSON when it is
   * JSON (else the text), numbers and flags as they are; else `fallback`.
   */
  json(name, fallback = undefined) {
    const v = this.get(name);
    if (v === undefined) return fallback;
    if (v.tag === "json" || v.tag === "text") {
      try {
        return JSON.parse(v.val);
      } catch {
        if (v.tag === "json") throw new SettingsError(`${name} is not valid JSON: ${v.val}`);
        return v.val;
      }
    }
    return v.val;
  }

  /** Throws {@link SettingsError} naming the first setting not in `known` (any case). */
  rejectUnknown(known, prefix = "") {
    const names = Array.from(known);
    const folded = new Set(names.map(asciiLower));
    for (const [k] of this._entries) {
      if (!folded.has(asciiLower(k))) {
        throw new SettingsError(
          `${prefix}unknown configuration key '${k}' (known: ${names.join(", ")})`,
        );
      }
    }
  }

  /** The settings as text, for logs. */
  toString() {
    return `Settings(${JSON.stringify(Object.fromEntries(this.texts()))})`;
  }
}

// ---------------------------------------------------------------------------------------------
// Boxes and regions (normalised image coordinates, 0..1 from the top-left). The contract's boxes
// are f32; these helpers round every step to f32 as Rust's f32 arithmetic does, so a JavaScript
// filter and a Rust one decide alike at the edges.

/** `x` rounded to the nearest f32 (as a box coordinate or a confidence crosses the contract). */
export const f32 = Math.fround;

/** A rectangle `{l, t, w, h}` (each rounded to f32, as the host will see them). */
export function rect(l, t, w, h) {
  return { l: f32(l), t: f32(t), w: f32(w), h: f32(h) };
}

/** The whole image. */
export const WHOLE = Object.freeze(rect(0, 0, 1, 1));

/** Right edge. */
export function right(r) {
  return f32(r.l + r.w);
}

/** Bottom edge. */
export function bottom(r) {
  return f32(r.t + r.h);
}

/** Area, as a fraction of the image. */
export function area(r) {
  return f32(Math.max(r.w, 0) * Math.max(r.h, 0));
}

/** Centre point `[x, y]`. */
export function center(r) {
  return [f32(r.l + f32(r.w / 2)), f32(r.t + f32(r.h / 2))];
}

/** Whether the point (x, y) is inside `r` (edges included). */
export function contains(r, x, y) {
  return r.l <= x && x <= right(r) && r.t <= y && y <= bottom(r);
}

/** The overlap of two rectangles, or `undefined` when they do not overlap. */
export function intersection(a, b) {
  const l = Math.max(a.l, b.l);
  const t = Math.max(a.t, b.t);
  const r = Math.min(right(a), right(b));
  const btm = Math.min(bottom(a), bottom(b));
  return r > l && btm > t ? { l, t, w: f32(r - l), h: f32(btm - t) } : undefined;
}

/** Intersection over union, 0..1. */
export function iou(a, b) {
  const overlap = intersection(a, b);
  const inter = overlap ? area(overlap) : 0;
  const union = f32(f32(area(a) + area(b)) - inter);
  return union > 0 ? f32(inter / union) : 0;
}

/** `r` clipped to the image. */
export function clamped(r) {
  const clamp = (v) => Math.min(Math.max(v, 0), 1);
  const l = clamp(r.l);
  const t = clamp(r.t);
  return {
    l,
    t,
    w: Math.max(f32(clamp(right(r)) - l), 0),
    h: Math.max(f32(clamp(bottom(r)) - t), 0),
  };
}

/** Parses `l,t,w,h` (four numbers 0..1, width and height above 0); throws an Error otherwise. */
export function parseRect(text) {
  const parts = String(text).split(",").map(parseNumber);
  if (parts.some((p) => p === undefined)) {
    throw new Error(`a box is four numbers l,t,w,h, not ${quoted(text)}`);
  }
  const v = parts.map(f32);
  if (v.length === 4 && v.every((x) => x >= 0 && x <= 1) && v[2] > 0 && v[3] > 0) {
    return { l: v[0], t: v[1], w: v[2], h: v[3] };
  }
  throw new Error(
    `a box is four numbers l,t,w,h from 0 to 1 with w and h above 0, not ${quoted(text)}`,
  );
}

/** A region of interest: one or more rectangles; none means the whole image. */
export class Region {
  /** @param {Array<{l: number, t: number, w: number, h: number}>} rects */
  constructor(rects = []) {
    this.rects = Array.from(rects);
    // Edges computed once: a region is asked about every detection.
    this._edges = this.rects.map((r) => [r.l, r.t, right(r), bottom(r)]);
  }

  /** Parses rectangles `l,t,w,h` separated by `;` (empty text: the whole image). */
  static parse(text) {
    const rects = String(text)
      .split(";")
      .map((p) => p.trim())
      .filter((p) => p !== "")
      .map(parseRect);
    return new Region(rects);
  }

  /** True when the region is the whole image (no rectangles). */
  isWhole() {
    return this.rects.length === 0;
  }

  /** Whether the point is inside the region. */
  contains(x, y) {
    if (this._edges.length === 0) return true;
    return this._edges.some(([l, t, r, b]) => l <= x && x <= r && t <= y && y <= b);
  }

  /** Whether a box's centre is inside the region. */
  holdsCenterOf(box) {
    const [x, y] = center(box);
    return this.contains(x, y);
  }

  /** The region as text, for logs (`whole` or the rectangles). */
  toString() {
    if (this.isWhole()) return "whole";
    return this.rects.map((r) => `${r.l},${r.t},${r.w},${r.h}`).join(";");
  }
}

// ---------------------------------------------------------------------------------------------
// Inferences and events.

function inference(payload, subtype) {
  return {
    payload,
    subtype: subtype ?? undefined,
    inferenceId: undefined,
    relatedInferences: [],
    extensions: [],
  };
}

function pairs(properties) {
  if (properties === null || properties === undefined) return [];
  const items = Array.isArray(properties) ? properties : Object.entries(properties);
  return items.map(([k, v]) => [String(k), String(v)]);
}

/** A named attribute with a confidence (rounded to f32). */
export function attribute(name, value, confidence) {
  return { name: String(name), value: String(value), confidence: f32(confidence) };
}

/** Motion, in `box` when known. */
export function motion(box = undefined, { subtype } = {}) {
  return inference({ tag: "motion", val: box ?? undefined }, subtype);
}

/** A detected object (the confidence rounded to f32, as the host will see it). */
export function entity(label, confidence, box, { id, attributes = [], subtype } = {}) {
  const tag = { value: String(label), confidence: f32(confidence) };
  return inference(
    { tag: "entity", val: { tag, box, id: id ?? undefined, attributes: Array.from(attributes) } },
    subtype,
  );
}

/** A whole-image label (the confidence rounded to f32). */
export function classification(label, confidence, { attributes = [], subtype } = {}) {
  const tag = { value: String(label), confidence: f32(confidence) };
  return inference(
    { tag: "classification", val: { tag, attributes: Array.from(attributes) } },
    subtype,
  );
}

/**
 * A named event with string properties (an object or [key, value] pairs; values made text): what
 * opens a signal gate, for instance.
 */
export function namedEvent(name, properties = undefined, { box, subtype } = {}) {
  return inference(
    { tag: "event", val: { name: String(name), properties: pairs(properties), box: box ?? undefined } },
    subtype,
  );
}

/** Recognised text, with the media times (ns) it covers when known. */
export function text(value, { language, startNs, endNs } = {}) {
  return inference({
    tag: "text",
    val: {
      value: String(value),
      language: language ?? undefined,
      startNs: startNs === undefined || startNs === null ? undefined : ns(startNs),
      endNs: endNs === undefined || endNs === null ? undefined : ns(endNs),
    },
  });
}

/** Anything else: a content type and its bytes. */
export function other(contentType, content) {
  return inference({
    tag: "other",
    val: { contentType: String(contentType), content: Uint8Array.from(content) },
  });
}

/** An event at `timestampNs` (BigInt ns; a number is truncated) with these inferences. */
export function event(timestampNs, inferences = []) {
  return { timestampNs: ns(timestampNs), inferences: Array.from(inferences) };
}

/** `i` with its subtype set (returned for chaining). */
export function withSubtype(i, subtype) {
  i.subtype = subtype ?? undefined;
  return i;
}

/** `motion`, `entity`, `classification`, `event`, `text` or `other`. */
export function kindOf(i) {
  return i.payload.tag;
}

/** The detected object (`{tag, box, id, attributes}`), when the inference is one. */
export function entityOf(i) {
  return i.payload.tag === "entity" ? i.payload.val : undefined;
}

/** The label and confidence (`{value, confidence}`) of an entity or classification. */
export function tagOf(i) {
  const { tag, val } = i.payload;
  return tag === "entity" || tag === "classification" ? val.tag : undefined;
}

// ---------------------------------------------------------------------------------------------
// Frames.

/** What a frame filter asks for: planes `width` wide, luma and/or RGB. */
export function frameRequest(width, { luma = true, rgb = false } = {}) {
  return { width, luma, rgb };
}

/** Row `y` of a plane (its first `width` pixels; for RGB pass 3), when inside it. */
export function row(plane, y, bytesPerPixel = 1) {
  if (!(y >= 0 && y < plane.height)) return undefined;
  const start = y * plane.stride;
  const end = start + plane.width * bytesPerPixel;
  if (end > plane.data.length) return undefined;
  return plane.data.subarray(start, end);
}

/** Width and height `[w, h]` of the planes sent (the luma's, else the RGB's). */
export function frameSize(frame) {
  const p = frame.luma ?? frame.rgb;
  return p ? [p.width, p.height] : [0, 0];
}

// ---------------------------------------------------------------------------------------------
// The worlds.

/**
 * A filter called per inference event (decision logic: "is this a truck?").
 *
 * Extend it, read the node's {@link Settings} in the constructor and implement `processEvent`.
 */
export class EventFilter {
  /** @param {Settings} settings the node's configuration */
  constructor(settings) {
    this.settings = settings;
  }

  /** The events to pass on: `null` or `[]` drops the event. */
  processEvent(_event) {
    throw new Error(`${this.constructor.name}.processEvent is not implemented`);
  }
}

/**
 * A filter called per decoded frame (motion detection, custom vision).
 *
 * Extend it, read the node's {@link Settings} in the constructor, say which pixels it wants in
 * `frameRequest` and implement `processFrame`.
 */
export class FrameFilter {
  /** @param {Settings} settings the node's configuration */
  constructor(settings) {
    this.settings = settings;
  }

  /** The pixels this instance wants: by default a 320-pixel-wide luma plane. */
  frameRequest() {
    return frameRequest(320);
  }

  /** The inferences found in a frame; `null` or `[]` when nothing was. */
  processFrame(_frame) {
    throw new Error(`${this.constructor.name}.processFrame is not implemented`);
  }
}

function extendsBase(value, base) {
  return typeof value === "function" && value.prototype instanceof base;
}

/**
 * The filter class of `world` (`"event"` or `"frame"`) that the module `app` exports: its
 * default export when that is one, else its only exported subclass of the world's base.
 */
export function _exported(world, app) {
  const base = world === "event" ? EventFilter : FrameFilter;
  const baseName = world === "event" ? "EventFilter" : "FrameFilter";
  if (extendsBase(app.default, base)) return app.default;
  const found = Object.entries(app).filter(([, v]) => extendsBase(v, base));
  if (found.length === 1) return found[0][1];
  if (found.length === 0) {
    throw new TypeError(`vigil_filter: app.js exports no class that extends ${baseName}`);
  }
  const names = found.map(([k]) => k).join(", ");
  throw new TypeError(
    `vigil_filter: app.js exports several ${baseName} classes (${names}); make the one to build its default export`,
  );
}

/** Why a configuration was refused: the message of a SettingsError or Error, else the value. */
function refusal(e) {
  if (e instanceof Error) {
    return e instanceof SettingsError || e.constructor === Error ? e.message : `${e.name}: ${e.message}`;
  }
  return String(e);
}

function many(out, single) {
  if (out === null || out === undefined) return [];
  // An async method: the bindings wait for the promise (ComponentizeJS runs the event loop).
  if (typeof out.then === "function") return out.then((v) => many(v, single));
  if (Array.isArray(out)) return out;
  if (single(out)) return [out];
  return Array.from(out);
}

const isEvent = (v) => typeof v === "object" && "inferences" in v && "timestampNs" in v;
const isInference = (v) => typeof v === "object" && "payload" in v;

/**
 * The `filter` resource class of the world's interface (`event-processor` / `frame-processor`)
 * around the app's class, as ComponentizeJS binds a resource: `Filter.create(config)` returns an
 * instance or `{tag: "err", val: message}` (the configuration refused), methods in camelCase.
 */
export function _resource(world, app) {
  const cls = _exported(world, app);
  const make = (Resource, config) => {
    let inner;
    try {
      inner = new cls(new Settings(config));
    } catch (e) {
      return { tag: "err", val: refusal(e) };
    }
    return new Resource(inner);
  };
  if (world === "event") {
    return class Filter {
      constructor(inner) {
        this.inner = inner;
      }
      static create(config) {
        return make(Filter, config);
      }
      processEvent(ev) {
        return many(this.inner.processEvent(ev), isEvent);
      }
    };
  }
  return class Filter {
    constructor(inner) {
      this.inner = inner;
    }
    static create(config) {
      return make(Filter, config);
    }
    frameRequest() {
      return this.inner.frameRequest();
    }
    processFrame(frame) {
      return many(this.inner.processFrame(frame), isInference);
    }
  };
}
