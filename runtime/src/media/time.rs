//! The media timeline: every sample and event carries a UTC instant in nanoseconds since the Unix
//! epoch. The signal gate and the sinks compute on these values only, never on the wall clock, so
//! the same input always gives the same clips.

use std::fmt;
use std::ops::{Add, Neg, Sub};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A point on the media timeline: UTC nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaTime(i64);

/// A signed length of time on the media timeline, in nanoseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaDuration(i64);

impl MediaTime {
    /// The instant `nanos` nanoseconds after the Unix epoch.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// The instant `secs` whole seconds after the Unix epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs * NANOS_PER_SEC)
    }

    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis * 1_000_000)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// AVA's analytics `timestamp`: 90 kHz ticks since the Unix epoch (ava-spec §8.4).
    pub const fn as_90khz_ticks(self) -> i64 {
        (self.0 as i128 * 9).div_euclid(100_000) as i64
    }
}

impl MediaDuration {
    /// Zero length.
    pub const ZERO: Self = Self(0);

    /// A duration of `nanos` nanoseconds (negative is allowed).
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// A duration of `secs` whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs * NANOS_PER_SEC)
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis * 1_000_000)
    }

    /// Length in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Length in seconds, as a float (for display and rates).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// True when the duration is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The absolute value.
    pub const fn abs(self) -> Self {
        Self(self.0.abs())
    }
}

impl Add<MediaDuration> for MediaTime {
    type Output = MediaTime;
    fn add(self, rhs: MediaDuration) -> MediaTime {
        MediaTime(self.0.saturating_add(rhs.0))
    }
}

impl Sub<MediaDuration> for MediaTime {
    type Output = MediaTime;
    fn sub(self, rhs: MediaDuration) -> MediaTime {
        MediaTime(self.0.saturating_sub(rhs.0))
    }
}

impl Sub for MediaTime {
    type Output = MediaDuration;
    fn sub(self, rhs: MediaTime) -> MediaDuration {
        MediaDuration(self.0.saturating_sub(rhs.0))
    }
}

impl Add for MediaDuration {
    type Output = MediaDuration;
    fn add(self, rhs: MediaDuration) -> MediaDuration {
        MediaDuration(self.0.saturating_add(rhs.0))
    }
}

impl Sub for MediaDuration {
    type Output = MediaDuration;
    fn sub(self, rhs: MediaDuration) -> MediaDuration {
        MediaDuration(self.0.saturating_sub(rhs.0))
    }
}

impl Neg for MediaDuration {
    type Output = MediaDuration;
    fn neg(self) -> MediaDuration {
        MediaDuration(self.0.saturating_neg())
    }
}

impl fmt::Display for MediaDuration {
    /// Seconds with up to nine decimals, trailing zeros trimmed: `-5s`, `1.5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let secs = abs / NANOS_PER_SEC as u64;
        let frac = abs % NANOS_PER_SEC as u64;
        if frac == 0 {
            write!(f, "{sign}{secs}s")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{sign}{secs}.{}s", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Display for MediaTime {
    /// ISO 8601 UTC with milliseconds, e.g. `2021-05-03T18:22:59.063Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_nanosecond(i128::from(self.0)) {
            Ok(ts) => write!(f, "{}", ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")),
            Err(_) => write!(f, "{}ns", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninety_khz_ticks_match_ava_sample() {
        // ava-spec §8.4: 145805956115743 ticks = 2021-05-03T18:22:59.063Z (to the millisecond).
        let t = MediaTime::from_millis(1_620_066_179_063);
        assert_eq!(t.as_90khz_ticks() / 90, 145_805_956_115_743 / 90);
        assert_eq!(t.to_string(), "2021-05-03T18:22:59.063Z");
    }

    #[test]
    fn duration_display_trims_zeros() {
        assert_eq!(MediaDuration::from_secs(-5).to_string(), "-5s");
        assert_eq!(MediaDuration::from_millis(1500).to_string(), "1.5s");
    }
}
