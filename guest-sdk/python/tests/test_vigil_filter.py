"""Unit tests of the SDK outside a component: scripts/build-python-guest.sh --test guest-sdk/python/tests
(the cases of guest-modules/vigil-guest's own tests, plus the glue the build exports)."""

import unittest

import vigil_filter as vf
from componentize_py_types import Err
from wit_world.imports import types


class SettingsTest(unittest.TestCase):
    def test_typed_values_and_text_read_alike(self):
        s = vf.Settings(
            [
                ("minimumConfidence", types.Value_Number(0.5)),
                ("count", types.Value_Number(3.0)),
                ("Enabled", types.Value_Text(" TRUE ")),
                ("labels", types.Value_Text("truck, car,")),
                ("zones", types.Value_Json('["a", "b"]')),
                ("width", types.Value_Text("320")),
                ("tiny", types.Value_Number(1.5e-7)),
            ]
        )
        self.assertEqual(s.number("MINIMUMCONFIDENCE"), 0.5)
        self.assertEqual(s.number("width"), 320.0)
        self.assertEqual(s.text("count"), "3")
        self.assertEqual(s.text("tiny"), "0.00000015", "as Rust writes an f64")
        self.assertIs(s.flag("enabled"), True)
        self.assertIs(s.flag("missing", False), False)
        self.assertEqual(s.list("labels"), ["truck", "car"])
        self.assertEqual(s.list("zones"), ["a", "b"])
        self.assertEqual(s.json("zones"), ["a", "b"])
        with self.assertRaises(vf.SettingsError) as caught:
            s.number("labels")
        self.assertEqual(str(caught.exception), 'labels must be a number, not "truck, car,"')
        with self.assertRaises(vf.SettingsError):
            s.flag("count")
        self.assertIsNone(s.number("absent"))
        self.assertEqual(s.number("absent", 2.0), 2.0)

    def test_text_reads_as_numbers_only_as_rust_does(self):
        s = vf.Settings.of({"a": " 0.5 ", "b": "1_000", "c": "inf", "d": "", "e": 2, "f": True})
        self.assertEqual(s.number("a"), 0.5)
        for name in "bcd":
            with self.assertRaises(vf.SettingsError, msg=name):
                s.number(name)
        self.assertEqual(s.number("e"), 2.0)
        self.assertEqual(s.texts(), [("a", " 0.5 "), ("b", "1_000"), ("c", "inf"), ("d", ""), ("e", "2"), ("f", "true")])

    def test_unknown_keys_are_named(self):
        s = vf.Settings.of({"Labels": "x", "colour": "red"})
        with self.assertRaises(vf.SettingsError) as caught:
            s.reject_unknown(["labels"], prefix="f: ")
        self.assertEqual(str(caught.exception), "f: unknown configuration key 'colour' (known: labels)")


class BoxesTest(unittest.TestCase):
    def test_boxes_overlap_and_regions_hold_centres(self):
        a = vf.rect(0.0, 0.0, 0.5, 0.5)
        b = vf.rect(0.25, 0.25, 0.5, 0.5)
        self.assertEqual(vf.intersection(a, b), vf.rect(0.25, 0.25, 0.25, 0.25))
        self.assertAlmostEqual(vf.iou(a, b), 0.0625 / 0.4375, places=6)
        self.assertIsNone(vf.intersection(a, vf.rect(0.6, 0.6, 0.1, 0.1)))
        region = vf.Region.parse("0.5,0.5,0.5,0.5; 0,0,0.1,0.1")
        self.assertTrue(region.holds_center_of(vf.rect(0.6, 0.6, 0.2, 0.2)))
        self.assertFalse(region.holds_center_of(a))
        self.assertTrue(vf.Region.parse("").contains(0.9, 0.9))
        with self.assertRaises(ValueError):
            vf.parse_rect("0,0,0,1")
        with self.assertRaises(ValueError):
            vf.Region.parse("1,2")
        c = vf.clamped(vf.rect(-0.1, 0.9, 0.3, 0.3))
        self.assertEqual((c.l, c.t), (0.0, vf.f32(0.9)))
        self.assertAlmostEqual(c.w, 0.2, places=6)
        self.assertAlmostEqual(c.h, 0.1, places=6)
        self.assertAlmostEqual(vf.area(a), 0.25)

    def test_centres_are_computed_in_f32(self):
        # l + w/2 rounded to f32 at each step, as the Rust filter computes it.
        box = vf.rect((1 - 1 / 12) / 2, 0.62, 1 / 12, 1 / 6)
        x, _ = vf.center(box)
        self.assertEqual(x, vf.f32(vf.f32(box.l) + vf.f32(box.w / 2)))
        self.assertEqual(vf.f32(x), x)


class InferencesTest(unittest.TestCase):
    def test_constructors_and_accessors(self):
        i = vf.entity("truck", 0.9, vf.rect(0, 0, 1, 1), subtype="objectDetection")
        self.assertEqual(vf.kind_of(i), "entity")
        self.assertEqual(vf.tag_of(i).value, "truck")
        self.assertEqual(vf.tag_of(i).confidence, vf.f32(0.9))
        self.assertEqual(i.subtype, "objectDetection")
        self.assertEqual(vf.kind_of(vf.motion()), "motion")
        self.assertIsNone(vf.tag_of(vf.motion()))
        e = vf.named_event("door", {"open": True, "n": 2})
        self.assertEqual(e.payload.value.properties, [("open", "True"), ("n", "2")])
        self.assertEqual(vf.kind_of(vf.classification("day", 1.0)), "classification")

    def test_rows_respect_the_stride(self):
        p = types.Plane(width=2, height=2, stride=4, data=bytes([1, 2, 0, 0, 3, 4, 0, 0]))
        self.assertEqual(bytes(vf.row(p, 1)), bytes([3, 4]))
        self.assertIsNone(vf.row(p, 2))

    def test_time_helpers(self):
        self.assertEqual(vf.seconds_between(1_000_000_000, 3_500_000_000), 2.5)
        self.assertEqual(vf.nanos(0.25), 250_000_000)
        self.assertEqual(vf.second_of_day(1_796_196_615 * 1_000_000_000), 7 * 3600 + 30 * 60 + 15)
        self.assertEqual(vf.now_ns(), 0, "no host outside a component")


class GlueTest(unittest.TestCase):
    """What the build exports: the resource around the app's class."""

    def setUp(self):
        self.saved = {k: list(v) for k, v in vf._REGISTERED.items()}
        for v in vf._REGISTERED.values():
            v.clear()
        vf._EXPLICIT.clear()

    def tearDown(self):
        vf._REGISTERED.update(self.saved)
        vf._EXPLICIT.clear()

    def test_an_event_filter_becomes_the_resource(self):
        class Keep(vf.EventFilter):
            def __init__(self, settings):
                self.n = settings.number("n", 1)

            def process_event(self, event):
                return event if self.n > 0 else None

        resource = vf._resource("event", None)
        f = resource.create([("n", types.Value_Text("1"))])
        ev = vf.event(5, [vf.motion()])
        self.assertEqual(f.process_event(ev), [ev])
        self.assertEqual(resource.create([("n", types.Value_Number(0))]).process_event(ev), [])
        with self.assertRaises(Err) as caught:
            resource.create([("n", types.Value_Text("many"))])
        self.assertEqual(caught.exception.value, 'n must be a number, not "many"')

    def test_a_frame_filter_asks_for_luma_by_default(self):
        class Bright(vf.FrameFilter):
            def process_frame(self, frame):
                return vf.motion()

        f = vf._resource("frame", None).create([])
        self.assertEqual(f.frame_request(), types.FrameRequest(width=320, luma=True, rgb=False))
        frame = types.Frame(timestamp_ns=0, source_width=2, source_height=2, luma=None, rgb=None)
        self.assertEqual([vf.kind_of(i) for i in f.process_frame(frame)], ["motion"])

    def test_several_classes_need_export(self):
        class A(vf.EventFilter):
            pass

        class B(vf.EventFilter):
            pass

        with self.assertRaises(TypeError):
            vf._resource("event", None)
        vf.export(B)
        self.assertIsNotNone(vf._resource("event", None).create([]))
        with self.assertRaises(TypeError):
            vf._resource("frame", None)


if __name__ == "__main__":
    unittest.main()
