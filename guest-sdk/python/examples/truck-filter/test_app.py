"""Unit tests of the truck filter, outside a component:
scripts/build-python-guest.sh --test guest-sdk/python/examples/truck-filter
(the same cases as guest-modules/object-filter/src/rule.rs's tests)."""

import unittest

from vigil_filter import Settings, SettingsError, entity, event, kind_of, named_event, rect

from app import TruckFilter

MIDDLE = rect(0.4, 0.4, 0.2, 0.2)


def one(label, confidence, box=MIDDLE):
    return event(7, [entity(label, confidence, box)])


class TruckFilterTest(unittest.TestCase):
    def test_labels_confidence_region_and_size_all_count(self):
        f = TruckFilter(
            Settings.of(
                {
                    "labels": "Truck, car",
                    "minimumConfidence": "0.6",
                    "regionOfInterest": "0.25,0.25,0.5,0.5",
                    "minimumBoxWidth": "0.1",
                }
            )
        )
        self.assertIsNotNone(f.process_event(one("truck", 0.9)))
        self.assertIsNotNone(f.process_event(one("CAR", 0.6)))
        self.assertIsNone(f.process_event(one("person", 0.9)), "label")
        self.assertIsNone(f.process_event(one("truck", 0.59)), "confidence")
        self.assertIsNone(f.process_event(one("truck", 0.9, rect(0, 0, 0.2, 0.2))), "region")
        self.assertIsNone(f.process_event(one("truck", 0.9, rect(0.4, 0.4, 0.05, 0.2))), "size")

    def test_defaults_keep_any_label_above_half_as_detections(self):
        f = TruckFilter(Settings())
        out = f.process_event(event(7, [entity("anything", 0.5, MIDDLE), named_event("x")]))
        self.assertEqual(out.timestamp_ns, 7)
        self.assertEqual([kind_of(i) for i in out.inferences], ["entity"], "only detections kept")
        self.assertIsNone(f.process_event(one("anything", 0.49)))

    def test_trigger_names_the_best_detection(self):
        f = TruckFilter(Settings.of({"output": "trigger", "eventName": "truckSeen"}))
        out = f.process_event(event(9, [entity("truck", 0.7, MIDDLE), entity("car", 0.9, MIDDLE)]))
        (trigger,) = out.inferences
        self.assertEqual(trigger.payload.value.name, "truckSeen")
        self.assertEqual(
            trigger.payload.value.properties,
            [("count", "2"), ("label", "car"), ("confidence", "0.900")],
        )

    def test_bad_configuration_names_the_key(self):
        for values, needle in [
            ({"minimumConfidence": "high"}, "'minimumConfidence'"),
            ({"minimumConfidence": 2}, "'minimumConfidence'"),
            ({"regionOfInterest": "0,0,1"}, "'regionOfInterest'"),
            ({"output": "clip"}, "'output'"),
            ({"label": "truck"}, "unknown configuration key 'label'"),
        ]:
            with self.assertRaises(SettingsError) as caught:
                TruckFilter(Settings.of(values))
            self.assertIn(needle, str(caught.exception))


if __name__ == "__main__":
    unittest.main()
