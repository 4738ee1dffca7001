//! `availableMedia` (ava-spec §10.4): the recorded time ranges of a video at year, month, day or
//! full precision, with AVA's span limits, and the time ranges the playback routes accept.

use anyhow::{Result, bail};

use super::catalog::{Catalog, GapRow, SegmentRow};
use crate::media::time::{MediaDuration, MediaTime};

/// `precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// `YYYY`.
    Year,
    /// `YYYY-MM`.
    Month,
    /// `YYYY-MM-DD`.
    Day,
    /// Full ISO 8601 date and time.
    Full,
}

impl Precision {
    /// Parses `year|month|day|full` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "year" => Self::Year,
            "month" => Self::Month,
            "day" => Self::Day,
            "full" => Self::Full,
            other => bail!("precision must be year, month, day or full, not '{other}'"),
        })
    }
}

/// A UTC range [start, end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// Start.
    pub start: MediaTime,
    /// End (exclusive).
    pub end: MediaTime,
}

impl TimeRange {
    /// Every time the archive can hold (1970 to the end of the nanosecond clock, 2255).
    pub const ALL: TimeRange = TimeRange {
        start: MediaTime::from_secs(0),
        end: MediaTime::from_secs(9_000_000_000),
    };
}

fn civil(t: MediaTime) -> jiff::civil::DateTime {
    let ts = jiff::Timestamp::from_nanosecond(i128::from(t.as_nanos()))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    jiff::tz::Offset::UTC.to_datetime(ts)
}

fn utc(dt: jiff::civil::DateTime) -> Result<MediaTime> {
    let ts = jiff::tz::Offset::UTC.to_timestamp(dt)?;
    nanos(ts)
}

/// `ts` on the media timeline, which holds 1677-09-21 to 2262-04-11.
fn nanos(ts: jiff::Timestamp) -> Result<MediaTime> {
    i64::try_from(ts.as_nanosecond())
        .map(MediaTime::from_nanos)
        .map_err(|_| anyhow::anyhow!("{ts} is outside the range of recording times (1677 to 2262)"))
}

/// Parses a bound at `precision`; an end bound covers its whole period (`2026-01` ends at
/// 2026-02-01).
fn parse_bound(text: &str, precision: Precision, end: bool) -> Result<MediaTime> {
    let text = text.trim();
    let date = |y: i16, m: i8, d: i8| -> Result<jiff::civil::DateTime> {
        jiff::civil::Date::new(y, m, d)
            .map(|d| d.at(0, 0, 0, 0))
            .map_err(|e| anyhow::anyhow!("'{text}' is not a date: {e}"))
    };
    let bad = || {
        anyhow::anyhow!(
            "'{text}' is not a {precision:?} bound (expected {})",
            match precision {
                Precision::Year => "YYYY",
                Precision::Month => "YYYY-MM",
                Precision::Day => "YYYY-MM-DD",
                Precision::Full => "an ISO 8601 date and time such as 2026-01-01T00:00:00Z",
            }
        )
    };
    let parts: Vec<&str> = text.split('-').collect();
    let num = |s: &str| s.parse::<i16>().map_err(|_| bad());
    let small = |s: &str| s.parse::<i8>().map_err(|_| bad());
    let start = match precision {
        Precision::Year if parts.len() == 1 => date(num(parts[0])?, 1, 1)?,
        Precision::Month if parts.len() == 2 => date(num(parts[0])?, small(parts[1])?, 1)?,
        Precision::Day if parts.len() == 3 => {
            date(num(parts[0])?, small(parts[1])?, small(parts[2])?)?
        }
        Precision::Full => {
            let ts: jiff::Timestamp = text.parse().map_err(|_| bad())?;
            return nanos(ts);
        }
        _ => return Err(bad()),
    };
    let start = if end {
        match precision {
            Precision::Year => start.checked_add(jiff::Span::new().years(1))?,
            Precision::Month => start.checked_add(jiff::Span::new().months(1))?,
            _ => start.checked_add(jiff::Span::new().days(1))?,
        }
    } else {
        start
    };
    utc(start)
}

/// The range an `availableMedia` query asks for, checked against AVA's span limits.
pub fn query_range(
    precision: Precision,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<TimeRange> {
    let (start, end) = match (start, end) {
        (Some(s), Some(e)) => (
            parse_bound(s, precision, false)?,
            parse_bound(e, precision, true)?,
        ),
        (None, None) if precision == Precision::Year => (TimeRange::ALL.start, TimeRange::ALL.end),
        _ => bail!("startTime and endTime are both required unless precision is year"),
    };
    if end <= start {
        bail!("startTime must be before endTime");
    }
    let (s, e) = (civil(start), civil(end - MediaDuration::from_nanos(1)));
    let months = (i32::from(e.year()) - i32::from(s.year())) * 12 + i32::from(e.month())
        - i32::from(s.month());
    let too_long = match precision {
        Precision::Year => false,
        Precision::Month => months >= 12,
        Precision::Day => end - start > MediaDuration::from_secs(31 * 86_400),
        Precision::Full => end - start > MediaDuration::from_secs(25 * 3_600),
    };
    if too_long {
        bail!(
            "the span is too long for precision {precision:?} (year: any; month: 12 months; day: 31 days; full: 25 hours)"
        );
    }
    Ok(TimeRange { start, end })
}

/// Ranges this close are one (within one frame at 10 fps).
const TOUCHING: MediaDuration = MediaDuration::from_nanos(100_000_000);

/// Merges segments into continuous ranges (segments of one clip that touch), clipped to `within`.
pub fn merge_ranges(segments: &[SegmentRow], within: TimeRange) -> Vec<TimeRange> {
    let mut out: Vec<TimeRange> = Vec::new();
    for s in segments {
        if s.end <= s.start {
            continue;
        }
        let r = TimeRange {
            start: s.start.max(within.start),
            end: s.end.min(within.end),
        };
        if r.end <= r.start {
            continue;
        }
        match out.last_mut() {
            Some(last) if r.start <= last.end + TOUCHING => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

/// `ranges` with the recorded gaps longer than the merge tolerance (one frame at 10 fps) cut
/// out of them: media lost inside a segment (frames lost in a GOP, a write that failed).
fn without_gaps(ranges: Vec<TimeRange>, gaps: &[GapRow]) -> Vec<TimeRange> {
    let mut out = ranges;
    for g in gaps.iter().filter(|g| g.end - g.start > TOUCHING) {
        out = out
            .into_iter()
            .flat_map(|r| {
                if g.end <= r.start || g.start >= r.end {
                    return vec![r];
                }
                [
                    TimeRange {
                        start: r.start,
                        end: g.start,
                    },
                    TimeRange {
                        start: g.end,
                        end: r.end,
                    },
                ]
                .into_iter()
                .filter(|p| p.end > p.start)
                .collect()
            })
            .collect();
    }
    out
}

/// The continuous ranges `segments` (of `video`, overlapping `range`) hold, clipped to `range`,
/// with the gaps the catalog recorded inside them cut out.
pub fn recorded_ranges(
    catalog: &Catalog,
    video: &str,
    segments: &[SegmentRow],
    range: TimeRange,
) -> Result<Vec<TimeRange>> {
    let gaps = catalog.gaps_between(video, range.start, range.end)?;
    Ok(without_gaps(merge_ranges(segments, range), &gaps))
}

/// The recorded ranges of `video` in `range` at `precision`: full precision gives exact ranges;
/// coarser precisions give the periods (years, months, days) that hold media.
pub fn available_media(
    catalog: &Catalog,
    video: &str,
    precision: Precision,
    range: TimeRange,
) -> Result<Vec<TimeRange>> {
    if precision == Precision::Full {
        let segments = catalog.segments_between(video, range.start, range.end)?;
        return recorded_ranges(catalog, video, &segments, range);
    }
    // Coarser precisions: each period (year, month, day) in the range that holds media, found
    // with two indexed lookups per period rather than by reading every segment.
    let Some((first, last)) = catalog.media_span(video)? else {
        return Ok(Vec::new());
    };
    let mut periods = Vec::new();
    let mut t = range.start.max(first);
    let stop = range.end.min(last);
    while t < stop {
        let c = civil(t);
        let start = match precision {
            Precision::Year => jiff::civil::date(c.year(), 1, 1),
            Precision::Month => jiff::civil::date(c.year(), c.month(), 1),
            _ => c.date(),
        }
        .at(0, 0, 0, 0);
        let span = match precision {
            Precision::Year => jiff::Span::new().years(1),
            Precision::Month => jiff::Span::new().months(1),
            _ => jiff::Span::new().days(1),
        };
        let period = TimeRange {
            start: utc(start)?,
            end: utc(start.checked_add(span)?)?,
        };
        let probe_start = period.start.max(range.start);
        let probe_end = period.end.min(range.end);
        if catalog.has_media(video, probe_start, probe_end)? {
            periods.push(period);
        }
        t = period.end;
    }
    Ok(periods)
}

/// Formats a UTC time as AVA does in `availableMedia` (`2026-01-01T00:00:04.000Z`).
pub fn iso(t: MediaTime) -> String {
    t.to_string()
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[test]
    fn impossible_and_far_dates_are_errors_not_panics() {
        for (precision, start, end) in [
            (Precision::Day, "2026-02-31", "2026-03-01"),
            (Precision::Month, "2026-13", "2027-01"),
            (Precision::Day, "2026-01-200", "2026-01-02"),
            (Precision::Year, "9999", "9999"),
            (
                Precision::Full,
                "9999-01-01T00:00:00Z",
                "9999-01-02T00:00:00Z",
            ),
            (Precision::Year, "-9999", "2026"),
        ] {
            let e = query_range(precision, Some(start), Some(end)).expect_err(start);
            assert!(!format!("{e:#}").is_empty());
        }
        assert!(query_range(Precision::Day, Some("2026-02-28"), Some("2026-03-01")).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_limits_follow_ava() {
        assert!(query_range(Precision::Year, None, None).is_ok());
        assert!(query_range(Precision::Month, Some("2026-01"), Some("2026-12")).is_ok());
        assert!(query_range(Precision::Month, Some("2026-01"), Some("2027-01")).is_err());
        assert!(query_range(Precision::Day, Some("2026-01-01"), Some("2026-01-31")).is_ok());
        assert!(query_range(Precision::Day, Some("2026-01-01"), Some("2026-02-01")).is_err());
        assert!(
            query_range(
                Precision::Full,
                Some("2026-01-01T00:00:00Z"),
                Some("2026-01-02T01:00:00Z")
            )
            .is_ok()
        );
        assert!(
            query_range(
                Precision::Full,
                Some("2026-01-01T00:00:00Z"),
                Some("2026-01-02T01:00:01Z")
            )
            .is_err()
        );
        assert!(query_range(Precision::Day, Some("2026-01-01"), None).is_err());
        let r = query_range(Precision::Month, Some("2026-01"), Some("2026-01")).expect("ok");
        assert_eq!(r.end - r.start, MediaDuration::from_secs(31 * 86_400));
    }
}
