"""My filter: an event filter written with Vigil's Python SDK (guest-sdk/python/vigil_filter.py).

Build it into a component with ./build.sh (filter.wasm), then name the file in a topology:
    {"@type": "#Vigil.WasmProcessor", "name": "myFilter", "module": "/path/filter.wasm",
     "configuration": {"label": "truck"}, "inputs": [{"nodeName": "inference"}]}
"""

from vigil_filter import EventFilter, info, tag_of


class MyFilter(EventFilter):
    def __init__(self, settings):
        # Refuse settings this filter does not know (the message names the key).
        settings.reject_unknown(["label", "minimumConfidence"], prefix="my-filter: ")
        self.label = settings.text("label", "truck")
        self.minimum = settings.number("minimumConfidence", 0.5)
        info(f"my-filter: keeping {self.label} from {self.minimum}")

    def process_event(self, event):
        # Keep the detections and classifications of the label; drop the event when none is left.
        event.inferences = [
            i
            for i in event.inferences
            if (tag := tag_of(i)) is not None
            and tag.value == self.label
            and tag.confidence >= self.minimum
        ]
        return event if event.inferences else None
