//! Time on the stream clock: UTC nanoseconds since the Unix epoch, as frames and events carry it.

/// Nanoseconds in a second.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The stream clock: the time of the frame or event being processed (natively: 0).
pub fn now_ns() -> i64 {
    #[cfg(target_arch = "wasm32")]
    return crate::host::now_ns();
    #[cfg(not(target_arch = "wasm32"))]
    0
}

/// Seconds from `earlier_ns` to `later_ns` (negative when `later_ns` is earlier).
pub fn seconds_between(earlier_ns: i64, later_ns: i64) -> f64 {
    (i128::from(later_ns) - i128::from(earlier_ns)) as f64 / NANOS_PER_SECOND as f64
}

/// `seconds` as nanoseconds (saturating).
pub fn nanos(seconds: f64) -> i64 {
    (seconds * NANOS_PER_SECOND as f64) as i64
}

/// The second of the day (0..86400) of a UTC time, for rules such as "only at night".
pub fn second_of_day(ns: i64) -> u32 {
    ns.div_euclid(NANOS_PER_SECOND).rem_euclid(86_400) as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn spans_and_the_time_of_day() {
        assert_eq!(super::seconds_between(1_000_000_000, 3_500_000_000), 2.5);
        assert_eq!(super::nanos(0.25), 250_000_000);
        // 2026-12-02T07:30:15Z
        assert_eq!(
            super::second_of_day(1_796_196_615 * 1_000_000_000),
            7 * 3600 + 30 * 60 + 15
        );
    }
}
