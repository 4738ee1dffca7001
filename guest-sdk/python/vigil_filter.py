"""Write Vigil filter components in Python, against ``vigil:filter@0.2.0`` (``wit/0.2``).

A frame filter (called with decoded frames) subclasses :class:`FrameFilter`; an event filter
(called with inference events) subclasses :class:`EventFilter`. The host creates one instance
per node from the node's :class:`Settings` and keeps it, so state lives in ``self``::

    from vigil_filter import EventFilter

    class Trucks(EventFilter):
        def __init__(self, settings):
            self.minimum = settings.number("minimumConfidence", 0.5)

        def process_event(self, event):
            event.inferences = [
                i for i in event.inferences
                if (t := tag_of(i)) and t.value == "truck" and t.confidence >= self.minimum
            ]
            return event if event.inferences else None

``scripts/build-python-guest.sh DIR OUT.wasm`` turns the ``app.py`` in ``DIR`` into a component
(with componentize-py; it finds the world from the base class). Mirrors the Rust SDK
(``guest-modules/vigil-guest``): the same settings rules, box helpers that compute in f32 as the
contract's numbers are (so a Python filter decides like a Rust one at the edges), inference
constructors, the host's log and the stream clock.

What the SDK does with what a filter gives:

* ``__init__`` raising any exception refuses the configuration: the host reports the message and
  does not start the node. :class:`SettingsError` messages name the setting.
* ``process_event`` may return ``None`` (drop the event), one ``Event``, or a list of them;
  ``process_frame`` ``None``, one ``Inference`` or a list of them.
* An exception in ``process_event`` / ``process_frame`` / ``frame_request`` is a fault of that
  call: its traceback goes to the host's log (stderr), the host reports a ``ModuleFault`` and the
  next call gets a fresh instance (``__init__`` runs again).

The generated bindings (``wit_world``) are made by componentize-py at build time; for unit tests
outside a component, ``scripts/build-python-guest.sh --test DIR`` generates them and runs
``python3 -m unittest`` in ``DIR`` (the host functions then write to stderr and read 0).
"""

from __future__ import annotations

import json as _json
import math as _math
import struct as _struct
import sys as _sys
from decimal import Decimal as _Decimal
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

try:
    from wit_world.imports import host as _host
    from wit_world.imports import types as _types
except ImportError as _missing:  # pragma: no cover - explained to the user
    raise ImportError(
        "vigil_filter needs the bindings componentize-py generates (package wit_world): build with "
        "scripts/build-python-guest.sh, or run unit tests with scripts/build-python-guest.sh --test DIR"
    ) from _missing

from componentize_py_types import Err

__all__ = [
    # worlds
    "EventFilter", "FrameFilter", "export",
    # settings
    "Settings", "SettingsError",
    # WIT types
    "Rect", "Tag", "Attribute", "Entity", "Classification", "NamedEvent", "Text", "Other",
    "Inference", "Event", "Frame", "Plane", "FrameRequest",
    # constructors and accessors
    "rect", "motion", "entity", "classification", "named_event", "text", "other", "event",
    "kind_of", "entity_of", "tag_of", "with_subtype",
    # boxes and regions
    "Region", "f32", "area", "center", "contains", "intersection", "iou", "clamped", "parse_rect",
    # frames
    "row", "frame_size",
    # log and time
    "debug", "info", "warn", "error", "now_ns", "seconds_between", "nanos", "second_of_day",
    "NANOS_PER_SECOND",
]

# --------------------------------------------------------------------------------------------
# The contract's types, as componentize-py generates them (dataclasses).

Rect = _types.Rect
Tag = _types.Tag
Attribute = _types.Attribute
Entity = _types.Entity
Classification = _types.Classification
NamedEvent = _types.NamedEvent
Text = _types.Text
Other = _types.Other
Inference = _types.Inference
Event = _types.Event
Frame = _types.Frame
Plane = _types.Plane
FrameRequest = _types.FrameRequest

_KINDS = {
    _types.Payload_Motion: "motion",
    _types.Payload_Entity: "entity",
    _types.Payload_Classification: "classification",
    _types.Payload_Event: "event",
    _types.Payload_Text: "text",
    _types.Payload_Other: "other",
}

# --------------------------------------------------------------------------------------------
# Log and time.


def _log(level: Any, message: str) -> None:
    try:
        _host.log(level, str(message))
    except NotImplementedError:  # outside a component: the generated stub
        print(f"{level.name.lower()}: {message}", file=_sys.stderr)


def debug(message: str) -> None:
    """Logs at debug level (the host's log, tagged with the node)."""
    _log(_host.Level.DEBUG, message)


def info(message: str) -> None:
    """Logs at info level."""
    _log(_host.Level.INFO, message)


def warn(message: str) -> None:
    """Logs at warn level."""
    _log(_host.Level.WARN, message)


def error(message: str) -> None:
    """Logs at error level."""
    _log(_host.Level.ERROR, message)


NANOS_PER_SECOND = 1_000_000_000


def now_ns() -> int:
    """The stream clock: UTC ns of the frame or event being processed (outside a component: 0)."""
    try:
        return _host.now_ns()
    except NotImplementedError:
        return 0


def seconds_between(earlier_ns: int, later_ns: int) -> float:
    """Seconds from ``earlier_ns`` to ``later_ns`` (negative when ``later_ns`` is earlier)."""
    return (later_ns - earlier_ns) / NANOS_PER_SECOND


def nanos(seconds: float) -> int:
    """``seconds`` as nanoseconds."""
    return int(seconds * NANOS_PER_SECOND)


def second_of_day(ns: int) -> int:
    """The second of the day (0..86400) of a UTC time, for rules such as "only at night"."""
    return (ns // NANOS_PER_SECOND) % 86_400


# --------------------------------------------------------------------------------------------
# Settings (mirrors guest-modules/vigil-guest/src/settings.rs).


class SettingsError(ValueError):
    """A setting that is missing, unknown or of the wrong kind; the message names it."""


def _parse_number(text: str) -> Optional[float]:
    """A finite number written as text (as Rust's ``f64::from_str`` reads it), else None."""
    t = text.strip()
    # Python's float() also takes digit separators and non-ASCII digits; Rust does not.
    if not t or "_" in t or not t.isascii():
        return None
    try:
        n = float(t)
    except ValueError:
        return None
    return n if _math.isfinite(n) else None


def _text_of(v: Any) -> str:
    """A configuration value as text: text as it is, numbers and flags as written, JSON as JSON."""
    if isinstance(v, (_types.Value_Text, _types.Value_Json)):
        return v.value
    if isinstance(v, _types.Value_Flag):
        return "true" if v.value else "false"
    n = float(v.value)
    if _math.isnan(n):
        return "NaN"
    if _math.isinf(n):
        return "inf" if n > 0 else "-inf"
    if n == int(n) and abs(n) < 1e15:
        return str(int(n))
    return format(_Decimal(repr(n)), "f")


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _fold(text: str) -> str:
    """ASCII lower case: names and flags compare as Rust's ``eq_ignore_ascii_case`` does."""
    return text.translate(_ASCII_LOWER)


def _quoted(text: str) -> str:
    return _json.dumps(text, ensure_ascii=False)


def _value_of(python: Any) -> Any:
    """A Python value as a configuration value (for tests): str, bool, number, list or dict."""
    if isinstance(python, bool):
        return _types.Value_Flag(python)
    if isinstance(python, (int, float)):
        return _types.Value_Number(float(python))
    if isinstance(python, str):
        return _types.Value_Text(python)
    if isinstance(python, (list, tuple, dict)):
        return _types.Value_Json(_json.dumps(python))
    raise TypeError(f"no configuration value for {python!r}")


class Settings:
    """A node's ``configuration`` with typed access.

    Names are matched case-insensitively (AVA's names are camelCase, users write them as they
    like); a value given as text (every ``${parameter}`` is text) is read as a number or a flag
    when one is asked for. Readers with a ``default`` return it when the setting is absent and
    raise :class:`SettingsError` when it is present but of the wrong kind.
    """

    def __init__(self, entries: Sequence[Tuple[str, Any]] = ()):
        self._entries: List[Tuple[str, Any]] = list(entries)

    @classmethod
    def of(cls, values: Union[dict, Sequence[Tuple[str, Any]]]) -> "Settings":
        """Settings from plain Python values (for unit tests): ``Settings.of({"labels": "truck"})``;
        text stays text, booleans are flags, numbers numbers, lists and dicts JSON."""
        pairs = values.items() if isinstance(values, dict) else values
        return cls([(k, _value_of(v)) for k, v in pairs])

    def names(self) -> List[str]:
        """Every name, in the topology's order."""
        return [k for k, _ in self._entries]

    def entries(self) -> List[Tuple[str, Any]]:
        """Every entry as (name, WIT value), in the topology's order."""
        return list(self._entries)

    def texts(self) -> List[Tuple[str, str]]:
        """Every entry as text: text as it is, numbers and flags as written, JSON as JSON."""
        return [(k, _text_of(v)) for k, v in self._entries]

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> Any:
        """The WIT value named ``name`` (``Value_Text``, ``Value_Number``, ...), or None."""
        wanted = _fold(name)
        for k, v in self._entries:
            if _fold(k) == wanted:
                return v
        return None

    def text(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value named ``name`` as text (see :meth:`texts`), trimmed; else ``default``."""
        v = self.get(name)
        return default if v is None else _text_of(v).strip()

    def number(self, name: str, default: Optional[float] = None) -> Optional[float]:
        """The number named ``name``: a number, or text that reads as one; else ``default``."""
        v = self.get(name)
        if v is None:
            return default
        if isinstance(v, _types.Value_Number):
            return float(v.value)
        if isinstance(v, _types.Value_Text):
            n = _parse_number(v.value)
            if n is None:
                raise SettingsError(f"{name} must be a number, not {_quoted(v.value)}")
            return n
        raise SettingsError(f"{name} must be a number, not {_text_of(v)}")

    def flag(self, name: str, default: Optional[bool] = None) -> Optional[bool]:
        """The flag named ``name``: a boolean, or the text ``true`` / ``false`` (any case)."""
        v = self.get(name)
        if v is None:
            return default
        if isinstance(v, _types.Value_Flag):
            return bool(v.value)
        if isinstance(v, _types.Value_Text) and _fold(v.value.strip()) in ("true", "false"):
            return _fold(v.value.strip()) == "true"
        raise SettingsError(f"{name} must be true or false, not {_text_of(v)}")

    def list(self, name: str) -> List[str]:
        """The list named ``name``: an array's items, or text split at commas; each item trimmed,
        empty ones left out (absent: empty)."""
        v = self.get(name)
        if v is None:
            return []
        if isinstance(v, _types.Value_Json) and v.value.lstrip().startswith("["):
            try:
                items = _json.loads(v.value)
            except ValueError:
                items = v.value.strip().lstrip("[").rstrip("]").split(",")
                items = [s.strip().strip('"') for s in items]
            out = [i if isinstance(i, str) else _json.dumps(i) for i in items]
            return [s.strip() for s in out if s.strip()]
        return [s.strip() for s in _text_of(v).split(",") if s.strip()]

    def json(self, name: str, default: Any = None) -> Any:
        """The value named ``name`` as Python data: an array or object parsed, text parsed as
        JSON when it is JSON (else the text), numbers and flags as they are."""
        v = self.get(name)
        if v is None:
            return default
        if isinstance(v, (_types.Value_Json, _types.Value_Text)):
            try:
                return _json.loads(v.value)
            except ValueError:
                if isinstance(v, _types.Value_Json):
                    raise SettingsError(f"{name} is not valid JSON: {v.value}") from None
                return v.value
        return v.value

    def reject_unknown(self, known: Iterable[str], prefix: str = "") -> None:
        """Raises :class:`SettingsError` naming the first setting not in ``known`` (any case)."""
        known = list(known)
        folded = {_fold(k) for k in known}
        for k, _ in self._entries:
            if _fold(k) not in folded:
                raise SettingsError(
                    f"{prefix}unknown configuration key '{k}' (known: {', '.join(known)})"
                )

    def __repr__(self) -> str:
        return f"Settings({dict(self.texts())!r})"


# --------------------------------------------------------------------------------------------
# Boxes and regions (normalised image coordinates, 0..1 from the top-left). The contract's boxes
# are f32; these helpers round every step to f32 as Rust's f32 arithmetic does, so a Python
# filter and a Rust one decide alike at the edges.

_F32 = _struct.Struct("f")


def f32(x: float) -> float:
    """``x`` rounded to the nearest f32 (as a box coordinate or a confidence crosses the
    contract)."""
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:
        return _math.copysign(_math.inf, x)


def rect(l: float, t: float, w: float, h: float) -> Rect:
    """A rectangle from its left, top, width and height (each rounded to f32, as the host will
    see them)."""
    return Rect(l=f32(l), t=f32(t), w=f32(w), h=f32(h))


def right(r: Rect) -> float:
    """Right edge."""
    return f32(r.l + r.w)


def bottom(r: Rect) -> float:
    """Bottom edge."""
    return f32(r.t + r.h)


def area(r: Rect) -> float:
    """Area, as a fraction of the image."""
    return f32(max(r.w, 0.0) * max(r.h, 0.0))


def center(r: Rect) -> Tuple[float, float]:
    """Centre point (x, y)."""
    return f32(r.l + f32(r.w / 2.0)), f32(r.t + f32(r.h / 2.0))


def contains(r: Rect, x: float, y: float) -> bool:
    """Whether the point (x, y) is inside ``r`` (edges included)."""
    return r.l <= x <= f32(r.l + r.w) and r.t <= y <= f32(r.t + r.h)


def intersection(a: Rect, b: Rect) -> Optional[Rect]:
    """The overlap of two rectangles, if they overlap."""
    l, t = max(a.l, b.l), max(a.t, b.t)
    r, btm = min(right(a), right(b)), min(bottom(a), bottom(b))
    if r > l and btm > t:
        return Rect(l=l, t=t, w=f32(r - l), h=f32(btm - t))
    return None


def iou(a: Rect, b: Rect) -> float:
    """Intersection over union, 0..1."""
    overlap = intersection(a, b)
    inter = area(overlap) if overlap is not None else 0.0
    union = f32(f32(area(a) + area(b)) - inter)
    return f32(inter / union) if union > 0.0 else 0.0


def clamped(r: Rect) -> Rect:
    """``r`` clipped to the image."""
    l, t = min(max(r.l, 0.0), 1.0), min(max(r.t, 0.0), 1.0)
    w = max(f32(min(max(right(r), 0.0), 1.0) - l), 0.0)
    h = max(f32(min(max(bottom(r), 0.0), 1.0) - t), 0.0)
    return Rect(l=l, t=t, w=w, h=h)


def parse_rect(text: str) -> Rect:
    """Parses ``l,t,w,h`` (four numbers 0..1, width and height above 0); ValueError otherwise."""
    parts = [_parse_number(p) for p in text.split(",")]
    if any(p is None for p in parts):
        raise ValueError(f"a box is four numbers l,t,w,h, not {_quoted(text)}")
    vals = [f32(p) for p in parts]  # type: ignore[arg-type]
    if len(vals) == 4 and all(0.0 <= v <= 1.0 for v in vals) and vals[2] > 0.0 and vals[3] > 0.0:
        return Rect(l=vals[0], t=vals[1], w=vals[2], h=vals[3])
    raise ValueError(
        f"a box is four numbers l,t,w,h from 0 to 1 with w and h above 0, not {_quoted(text)}"
    )


class Region:
    """A region of interest: one or more rectangles; none means the whole image."""

    def __init__(self, rects: Sequence[Rect] = ()):
        self.rects: List[Rect] = list(rects)
        # Edges computed once: a region is asked about every detection.
        self._edges = [(r.l, r.t, right(r), bottom(r)) for r in self.rects]

    @classmethod
    def parse(cls, text: str) -> "Region":
        """Parses rectangles ``l,t,w,h`` separated by ``;`` (empty text: the whole image)."""
        return cls([parse_rect(p.strip()) for p in text.split(";") if p.strip()])

    def is_whole(self) -> bool:
        """True when the region is the whole image (no rectangles)."""
        return not self.rects

    def contains(self, x: float, y: float) -> bool:
        """Whether the point is inside the region."""
        if not self._edges:
            return True
        return any(l <= x <= r and t <= y <= b for l, t, r, b in self._edges)

    def holds_center_of(self, box: Rect) -> bool:
        """Whether a box's centre is inside the region."""
        x, y = center(box)
        return self.contains(x, y)

    def __repr__(self) -> str:
        return f"Region({self.rects!r})"


# --------------------------------------------------------------------------------------------
# Inferences and events.


def _inference(payload: Any, subtype: Optional[str] = None) -> Inference:
    return Inference(
        payload=payload, subtype=subtype, inference_id=None, related_inferences=[], extensions=[]
    )


def _pairs(properties: Any) -> List[Tuple[str, str]]:
    if properties is None:
        return []
    items = properties.items() if isinstance(properties, dict) else properties
    return [(str(k), str(v)) for k, v in items]


def motion(box: Optional[Rect] = None, subtype: Optional[str] = None) -> Inference:
    """Motion, in ``box`` when known."""
    return _inference(_types.Payload_Motion(box), subtype)


def entity(
    label: str,
    confidence: float,
    box: Rect,
    id: Optional[str] = None,
    attributes: Sequence[Attribute] = (),
    subtype: Optional[str] = None,
) -> Inference:
    """A detected object (the confidence rounded to f32, as the host will see it)."""
    tag = Tag(value=label, confidence=f32(confidence))
    return _inference(
        _types.Payload_Entity(Entity(tag=tag, box=box, id=id, attributes=list(attributes))),
        subtype,
    )


def classification(
    label: str, confidence: float, attributes: Sequence[Attribute] = (), subtype: Optional[str] = None
) -> Inference:
    """A whole-image label (the confidence rounded to f32)."""
    tag = Tag(value=label, confidence=f32(confidence))
    return _inference(
        _types.Payload_Classification(Classification(tag=tag, attributes=list(attributes))),
        subtype,
    )


def named_event(
    name: str, properties: Any = None, box: Optional[Rect] = None, subtype: Optional[str] = None
) -> Inference:
    """A named event with string properties (a dict or pairs; values made text): what opens a
    signal gate, for instance."""
    return _inference(
        _types.Payload_Event(NamedEvent(name=name, properties=_pairs(properties), box=box)), subtype
    )


def text(
    value: str,
    language: Optional[str] = None,
    start_ns: Optional[int] = None,
    end_ns: Optional[int] = None,
) -> Inference:
    """Recognised text."""
    return _inference(
        _types.Payload_Text(Text(value=value, language=language, start_ns=start_ns, end_ns=end_ns))
    )


def other(content_type: str, content: bytes) -> Inference:
    """Anything else: a content type and its bytes."""
    return _inference(_types.Payload_Other(Other(content_type=content_type, content=bytes(content))))


def event(timestamp_ns: int, inferences: Sequence[Inference]) -> Event:
    """An event at ``timestamp_ns`` with these inferences."""
    return Event(timestamp_ns=timestamp_ns, inferences=list(inferences))


def with_subtype(inference: Inference, subtype: Optional[str]) -> Inference:
    """``inference`` with its subtype set (returned for chaining)."""
    inference.subtype = subtype
    return inference


def kind_of(inference: Inference) -> str:
    """``motion``, ``entity``, ``classification``, ``event``, ``text`` or ``other``."""
    return _KINDS[type(inference.payload)]


def entity_of(inference: Inference) -> Optional[Entity]:
    """The detected object, when the inference is one."""
    p = inference.payload
    return p.value if isinstance(p, _types.Payload_Entity) else None


def tag_of(inference: Inference) -> Optional[Tag]:
    """The label and confidence of an entity or classification."""
    p = inference.payload
    if isinstance(p, (_types.Payload_Entity, _types.Payload_Classification)):
        return p.value.tag
    return None


# --------------------------------------------------------------------------------------------
# Frames.


def row(plane: Plane, y: int, bytes_per_pixel: int = 1) -> Optional[memoryview]:
    """Row ``y`` of a plane (its first ``width`` pixels; for RGB pass 3), when inside it."""
    if not 0 <= y < plane.height:
        return None
    start = y * plane.stride
    end = start + plane.width * bytes_per_pixel
    if end > len(plane.data):
        return None
    return memoryview(plane.data)[start:end]


def frame_size(frame: Frame) -> Tuple[int, int]:
    """Width and height of the planes sent (the luma's, else the RGB's)."""
    p = frame.luma if frame.luma is not None else frame.rgb
    return (p.width, p.height) if p is not None else (0, 0)


# --------------------------------------------------------------------------------------------
# The worlds.

_REGISTERED: dict = {"event": [], "frame": []}
_EXPLICIT: dict = {}


def export(cls: type) -> type:
    """Marks the class to export when a module defines more than one filter class."""
    world = "event" if issubclass(cls, EventFilter) else "frame" if issubclass(cls, FrameFilter) else None
    if world is None:
        raise TypeError(f"export: {cls.__name__} is neither an EventFilter nor a FrameFilter")
    _EXPLICIT[world] = cls
    return cls


class EventFilter:
    """A filter called per inference event (decision logic: "is this a truck?").

    Subclass it, take the node's :class:`Settings` in ``__init__`` and implement
    :meth:`process_event`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTERED["event"].append(cls)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def process_event(self, event: Event) -> Union[None, Event, List[Event]]:
        """The events to pass on: None or ``[]`` drops the event."""
        raise NotImplementedError(f"{type(self).__name__}.process_event")


class FrameFilter:
    """A filter called per decoded frame (motion detection, custom vision).

    Subclass it, take the node's :class:`Settings` in ``__init__``, say which pixels it wants in
    :meth:`frame_request` and implement :meth:`process_frame`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTERED["frame"].append(cls)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def frame_request(self) -> FrameRequest:
        """The pixels this instance wants: by default a 320-pixel-wide luma plane."""
        return FrameRequest(width=320, luma=True, rgb=False)

    def process_frame(self, frame: Frame) -> Union[None, Inference, List[Inference]]:
        """The inferences found in a frame; None or ``[]`` when nothing was."""
        raise NotImplementedError(f"{type(self).__name__}.process_frame")


def _exported(world: str, module: Any) -> type:
    """The filter class of ``world`` to export (the build's generated glue calls this)."""
    if world in _EXPLICIT:
        return _EXPLICIT[world]
    found = [c for c in _REGISTERED[world] if c.__dict__.get("abstract") is not True]
    base = "EventFilter" if world == "event" else "FrameFilter"
    name = getattr(module, "__name__", "app")
    if not found:
        raise TypeError(f"vigil_filter: {name} defines no subclass of {base}")
    if len(found) > 1:
        names = ", ".join(c.__name__ for c in found)
        raise TypeError(
            f"vigil_filter: {name} defines several {base} classes ({names}); mark the one to "
            "export with @vigil_filter.export (or give the others `abstract = True`)"
        )
    return found[0]


def _refusal(e: BaseException) -> str:
    if isinstance(e, (SettingsError, ValueError)):
        return str(e)
    return f"{type(e).__name__}: {e}"


def _events(out: Any) -> List[Event]:
    if out is None:
        return []
    if isinstance(out, Event):
        return [out]
    return list(out)


def _inferences(out: Any) -> List[Inference]:
    if out is None:
        return []
    if isinstance(out, Inference):
        return [out]
    return list(out)


def _created_from(cls: type) -> type:
    """A resource base whose ``create`` makes the user's ``cls`` from the configuration."""

    class Created:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        @classmethod
        def create(cls_, config: List[Tuple[str, Any]]) -> "Created":
            try:
                inner = cls(Settings(config))
            except Exception as e:  # the configuration is refused, the message reported
                raise Err(_refusal(e)) from None
            return cls_(inner)

    return Created


def _event_resource(cls: type) -> type:
    """The ``filter`` resource of ``event-processor`` around the user's class."""

    class Filter(_created_from(cls)):
        def process_event(self, event: Event) -> List[Event]:
            return _events(self.inner.process_event(event))

    Filter.__qualname__ = f"{cls.__name__}Filter"
    return Filter


def _frame_resource(cls: type) -> type:
    """The ``filter`` resource of ``frame-processor`` around the user's class."""

    class Filter(_created_from(cls)):
        def frame_request(self) -> FrameRequest:
            return self.inner.frame_request()

        def process_frame(self, frame: Frame) -> List[Inference]:
            return _inferences(self.inner.process_frame(frame))

    Filter.__qualname__ = f"{cls.__name__}Filter"
    return Filter


def _resource(world: str, module: Any) -> type:
    """The resource class the generated ``event_processor`` / ``frame_processor`` module exports."""
    cls = _exported(world, module)
    return _event_resource(cls) if world == "event" else _frame_resource(cls)
