"""Unit tests of NAME, run outside a component: ./build.sh --test"""

import unittest

from vigil_filter import Settings, SettingsError, entity, event, rect

from app import MyFilter

BOX = rect(0.4, 0.4, 0.2, 0.2)


class MyFilterTest(unittest.TestCase):
    def test_keeps_the_label_above_the_minimum(self):
        f = MyFilter(Settings.of({"label": "truck", "minimumConfidence": 0.6}))
        out = f.process_event(event(7, [entity("truck", 0.9, BOX), entity("car", 0.9, BOX)]))
        self.assertEqual([i.payload.value.tag.value for i in out.inferences], ["truck"])
        self.assertIsNone(f.process_event(event(7, [entity("truck", 0.5, BOX)])))

    def test_refuses_an_unknown_key(self):
        with self.assertRaises(SettingsError):
            MyFilter(Settings.of({"lable": "truck"}))


if __name__ == "__main__":
    unittest.main()
