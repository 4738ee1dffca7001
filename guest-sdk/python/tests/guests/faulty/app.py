"""Test guest (tests/python_guest.rs): a trigger for events in even UTC seconds, an exception in
odd ones. Each trigger says how many calls its instance has had, so a test sees that a fault
costs its call only and the next call gets a fresh instance."""

from vigil_filter import EventFilter, event, named_event


class Faulty(EventFilter):
    def __init__(self, settings):
        self.calls = 0

    def process_event(self, ev):
        self.calls += 1
        second = ev.timestamp_ns // 1_000_000_000
        if second % 60 == 7:
            while True:
                pass
        if second % 2 == 1:
            raise RuntimeError(f"faulty guest: event at {ev.timestamp_ns} ns is in an odd second")
        properties = {"second": second, "calls": self.calls}
        return event(ev.timestamp_ns, [named_event("objectDetected", properties)])
