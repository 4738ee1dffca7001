"""The truck filter in Python: Vigil's built-in object filter (guest-modules/object-filter)
written with the Python SDK, with the same configuration and the same decisions.

It reads inference events (from an HttpExtension or any upstream node), keeps the entity
detections the rule accepts and drops events with none; with ``output: trigger`` it passes one
named ``event`` inference instead, ready to open a signal gate.

| key | meaning | default |
|---|---|---|
| ``labels`` | comma-separated labels to keep, case-insensitive (``truck,car``) | any label |
| ``minimumConfidence`` | lowest confidence kept, 0-1 | ``0.5`` |
| ``regionOfInterest`` | ``l,t,w,h`` normalised (more rectangles: ``;``); a detection counts when its box centre is inside | whole frame |
| ``minimumBoxWidth``, ``minimumBoxHeight`` | smallest box kept, as a fraction of the frame | ``0`` |
| ``output`` | ``detections``: the event with only the matching detections; ``trigger``: one ``event`` inference named ``eventName`` instead | ``detections`` |
| ``eventName`` | name of the trigger event | ``objectDetected`` |

Unknown keys and bad values refuse the configuration with a message naming the key.
"""

from vigil_filter import (
    EventFilter,
    Region,
    SettingsError,
    center,
    entity_of,
    event,
    f32,
    info,
    named_event,
)

NAME = "truck-filter"
KNOWN = (
    "labels",
    "minimumConfidence",
    "regionOfInterest",
    "minimumBoxWidth",
    "minimumBoxHeight",
    "output",
    "eventName",
)


def fraction(settings, key, default):
    """A number from 0 to 1 (as f32, as the Rust filter compares), or ``default``."""
    if key not in settings:
        return default
    try:
        value = f32(settings.number(key))
    except SettingsError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise SettingsError(
            f"{NAME}: '{key}' must be a number from 0 to 1, not '{settings.text(key)}'"
        )
    return value


def ascii_lower(text):
    """Lower case as Rust's ``eq_ignore_ascii_case`` compares."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


class TruckFilter(EventFilter):
    def __init__(self, settings):
        settings.reject_unknown(KNOWN, prefix=f"{NAME}: ")
        self.labels = {ascii_lower(label) for label in settings.list("labels")}
        self.minimum_confidence = fraction(settings, "minimumConfidence", 0.5)
        self.minimum_width = fraction(settings, "minimumBoxWidth", 0.0)
        self.minimum_height = fraction(settings, "minimumBoxHeight", 0.0)
        try:
            self.region = Region.parse(settings.text("regionOfInterest", ""))
        except ValueError as e:
            raise SettingsError(f"{NAME}: 'regionOfInterest': {e}") from None
        self.output = settings.text("output", "detections")
        if self.output not in ("detections", "trigger"):
            raise SettingsError(
                f"{NAME}: 'output' is 'detections' or 'trigger', not '{self.output}'"
            )
        self.event_name = settings.text("eventName", "objectDetected")
        if not self.event_name:
            raise SettingsError(f"{NAME}: 'eventName' must not be empty")
        info(
            f"{NAME}: labels={sorted(self.labels) or 'any'} minimumConfidence="
            f"{self.minimum_confidence:.3f} region={self.region.rects or 'whole'} output={self.output}"
        )

    def matches(self, e):
        """True when the detection ``e`` (an Entity) counts."""
        tag, box = e.tag, e.box
        if self.labels and ascii_lower(tag.value) not in self.labels:
            return False
        if tag.confidence < self.minimum_confidence:
            return False
        if box.w < self.minimum_width or box.h < self.minimum_height:
            return False
        return self.region.is_whole() or self.region.contains(*center(box))

    def process_event(self, ev):
        kept = [i for i in ev.inferences if (e := entity_of(i)) is not None and self.matches(e)]
        if not kept:
            return None
        if self.output == "detections":
            return event(ev.timestamp_ns, kept)
        # The most confident detection (the last of equals, as Rust's max_by).
        best = None
        for i in kept:
            tag = entity_of(i).tag
            if best is None or tag.confidence >= best.confidence:
                best = tag
        properties = [("count", len(kept)), ("label", best.value), ("confidence", f"{best.confidence:.3f}")]
        return event(ev.timestamp_ns, [named_event(self.event_name, properties)])
