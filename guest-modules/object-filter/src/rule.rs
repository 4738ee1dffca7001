//! The rule: which detections count, from the node's `configuration`.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `labels` | comma-separated labels to keep, case-insensitive (`truck,car`) | any label |
//! | `minimumConfidence` | lowest confidence kept, 0–1 | `0.5` |
//! | `regionOfInterest` | `l,t,w,h` normalised; a detection counts when its box centre is inside | whole frame |
//! | `minimumBoxWidth`, `minimumBoxHeight` | smallest box kept, as a fraction of the frame | `0` |
//! | `output` | `detections`: pass the event on with only the matching detections; `trigger`: pass one `event` inference named `eventName` instead | `detections` |
//! | `eventName` | name of the trigger event | `objectDetected` |

/// A normalised rectangle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    /// Left.
    pub l: f32,
    /// Top.
    pub t: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

/// What a passing event becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The event with only the matching detections.
    Detections,
    /// One named event summarising the match.
    Trigger,
}

/// The node's rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Labels kept (lower case); empty = any.
    pub labels: Vec<String>,
    /// Lowest confidence kept.
    pub minimum_confidence: f32,
    /// Where a box centre must be.
    pub region: Option<Area>,
    /// Smallest box width.
    pub minimum_width: f32,
    /// Smallest box height.
    pub minimum_height: f32,
    /// What a passing event becomes.
    pub output: Output,
    /// Name of the trigger event.
    pub event_name: String,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            labels: Vec::new(),
            minimum_confidence: 0.5,
            region: None,
            minimum_width: 0.0,
            minimum_height: 0.0,
            output: Output::Detections,
            event_name: "objectDetected".into(),
        }
    }
}

fn fraction(key: &str, value: &str) -> Result<f32, String> {
    value
        .trim()
        .parse::<f32>()
        .ok()
        .filter(|v| (0.0..=1.0).contains(v))
        .ok_or_else(|| {
            format!("object-filter: '{key}' must be a number from 0 to 1, not '{value}'")
        })
}

impl Rule {
    /// Reads the configuration; unknown keys and bad values are errors naming the key.
    pub fn parse(config: &[(String, String)]) -> Result<Self, String> {
        let mut rule = Rule::default();
        for (key, value) in config {
            match key.as_str() {
                "labels" => {
                    rule.labels = value
                        .split(',')
                        .map(|l| l.trim().to_lowercase())
                        .filter(|l| !l.is_empty())
                        .collect();
                }
                "minimumConfidence" => rule.minimum_confidence = fraction(key, value)?,
                "minimumBoxWidth" => rule.minimum_width = fraction(key, value)?,
                "minimumBoxHeight" => rule.minimum_height = fraction(key, value)?,
                "regionOfInterest" => {
                    let parts: Vec<f32> = value
                        .split(',')
                        .map(|p| fraction(key, p))
                        .collect::<Result<_, _>>()?;
                    let [l, t, w, h] = parts[..] else {
                        return Err(format!(
                            "object-filter: 'regionOfInterest' is 'l,t,w,h' (four numbers 0–1), not '{value}'"
                        ));
                    };
                    rule.region = Some(Area { l, t, w, h });
                }
                "output" => {
                    rule.output = match value.as_str() {
                        "detections" => Output::Detections,
                        "trigger" => Output::Trigger,
                        other => {
                            return Err(format!(
                                "object-filter: 'output' is 'detections' or 'trigger', not '{other}'"
                            ));
                        }
                    }
                }
                "eventName" if !value.trim().is_empty() => rule.event_name = value.trim().into(),
                other => {
                    return Err(format!(
                        "object-filter: unknown configuration key '{other}' (known: labels, minimumConfidence, regionOfInterest, minimumBoxWidth, minimumBoxHeight, output, eventName)"
                    ));
                }
            }
        }
        Ok(rule)
    }

    /// True when a detection labelled `label` with `confidence` and `area` counts.
    pub fn matches(&self, label: &str, confidence: f32, area: &Area) -> bool {
        let label_ok =
            self.labels.is_empty() || self.labels.iter().any(|l| l.eq_ignore_ascii_case(label));
        let (cx, cy) = (area.l + area.w / 2.0, area.t + area.h / 2.0);
        let in_region = self
            .region
            .is_none_or(|r| cx >= r.l && cx <= r.l + r.w && cy >= r.t && cy <= r.t + r.h);
        label_ok
            && confidence >= self.minimum_confidence
            && in_region
            && area.w >= self.minimum_width
            && area.h >= self.minimum_height
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const MIDDLE: Area = Area {
        l: 0.4,
        t: 0.4,
        w: 0.2,
        h: 0.2,
    };

    #[test]
    fn labels_confidence_region_and_size_all_count() {
        let rule = Rule::parse(&kv(&[
            ("labels", "Truck, car"),
            ("minimumConfidence", "0.6"),
            ("regionOfInterest", "0.25,0.25,0.5,0.5"),
            ("minimumBoxWidth", "0.1"),
        ]))
        .expect("valid");
        assert!(rule.matches("truck", 0.9, &MIDDLE));
        assert!(rule.matches("CAR", 0.6, &MIDDLE));
        assert!(!rule.matches("person", 0.9, &MIDDLE), "label");
        assert!(!rule.matches("truck", 0.59, &MIDDLE), "confidence");
        let corner = Area {
            l: 0.0,
            t: 0.0,
            ..MIDDLE
        };
        assert!(!rule.matches("truck", 0.9, &corner), "outside the region");
        let thin = Area { w: 0.05, ..MIDDLE };
        assert!(!rule.matches("truck", 0.9, &thin), "too small");
    }

    #[test]
    fn defaults_keep_any_label_above_half() {
        let rule = Rule::parse(&[]).expect("valid");
        assert!(rule.matches("anything", 0.5, &MIDDLE));
        assert!(!rule.matches("anything", 0.49, &MIDDLE));
        assert_eq!(rule.output, Output::Detections);
    }

    #[test]
    fn bad_configuration_names_the_key() {
        for (pairs, needle) in [
            (kv(&[("minimumConfidence", "high")]), "'minimumConfidence'"),
            (kv(&[("regionOfInterest", "0,0,1")]), "'regionOfInterest'"),
            (kv(&[("output", "clip")]), "'output'"),
            (
                kv(&[("label", "truck")]),
                "unknown configuration key 'label'",
            ),
        ] {
            let e = Rule::parse(&pairs).expect_err("invalid");
            assert!(e.contains(needle), "{e}");
        }
    }
}
