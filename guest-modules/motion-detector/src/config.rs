//! The node's properties, as the host passes them to `init`.

use crate::detector::Sensitivity;

/// Width of the luma plane requested when `frameWidth` is not given.
pub const DEFAULT_FRAME_WIDTH: u32 = 320;
/// Accepted range for `frameWidth`.
pub const FRAME_WIDTH_RANGE: std::ops::RangeInclusive<u32> = 16..=1920;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `sensitivity`: low | medium | high (case-insensitive), default medium.
    pub sensitivity: Sensitivity,
    /// `outputMotionRegion`: true | false, default true.
    pub output_region: bool,
    /// `frameWidth`: width of the plane the detector asks for, default 320.
    pub frame_width: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sensitivity: Sensitivity::Medium,
            output_region: true,
            frame_width: DEFAULT_FRAME_WIDTH,
        }
    }
}

impl Settings {
    /// Reads the properties it knows (names case-insensitive, values trimmed) and ignores the
    /// others; a bad value is an error, which stops the node with that message.
    pub fn parse(pairs: &[(String, String)]) -> Result<Settings, String> {
        let mut s = Settings::default();
        for (name, value) in pairs {
            let value = value.trim();
            if name.eq_ignore_ascii_case("sensitivity") {
                s.sensitivity = Sensitivity::parse(value).ok_or_else(|| {
                    format!("sensitivity must be low, medium or high, not {value:?}")
                })?;
            } else if name.eq_ignore_ascii_case("outputMotionRegion") {
                s.output_region = if value.eq_ignore_ascii_case("true") {
                    true
                } else if value.eq_ignore_ascii_case("false") {
                    false
                } else {
                    return Err(format!(
                        "outputMotionRegion must be true or false, not {value:?}"
                    ));
                };
            } else if name.eq_ignore_ascii_case("frameWidth") {
                s.frame_width = value
                    .parse::<u32>()
                    .ok()
                    .filter(|w| FRAME_WIDTH_RANGE.contains(w))
                    .ok_or_else(|| {
                        format!(
                            "frameWidth must be a whole number from {} to {}, not {value:?}",
                            FRAME_WIDTH_RANGE.start(),
                            FRAME_WIDTH_RANGE.end()
                        )
                    })?;
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let s = Settings::parse(&pairs(&[(
            "@type",
            "#Microsoft.VideoAnalyzer.MotionDetectionProcessor",
        )]))
        .unwrap();
        assert_eq!(
            s,
            Settings {
                sensitivity: Sensitivity::Medium,
                output_region: true,
                frame_width: 320
            }
        );
    }

    #[test]
    fn values_case_insensitive() {
        let s = Settings::parse(&pairs(&[
            ("sensitivity", "HIGH"),
            ("outputMotionRegion", "False"),
            ("frameWidth", "160"),
        ]))
        .unwrap();
        assert_eq!(
            s,
            Settings {
                sensitivity: Sensitivity::High,
                output_region: false,
                frame_width: 160
            }
        );
        assert_eq!(
            Settings::parse(&pairs(&[("sensitivity", " Low ")]))
                .unwrap()
                .sensitivity,
            Sensitivity::Low
        );
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(
            Settings::parse(&pairs(&[("sensitivity", "extreme")]))
                .unwrap_err()
                .contains("sensitivity")
        );
        assert!(Settings::parse(&pairs(&[("outputMotionRegion", "yes")])).is_err());
        assert!(Settings::parse(&pairs(&[("frameWidth", "0")])).is_err());
        assert!(Settings::parse(&pairs(&[("frameWidth", "wide")])).is_err());
    }
}
