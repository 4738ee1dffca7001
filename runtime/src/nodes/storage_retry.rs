//! One back-off for the sinks' storage (FileSink files, VideoSink segments): after a failed
//! create or write, the next file is tried at the first key frame [`RETRY_AFTER`] of media
//! later, so a disk that has room again is used within about a second, and a failed attempt
//! leaves no file behind. The failures are reported at once, then at most every
//! [`REPORT_EVERY`] of media with the number not reported (`repeatsNotReported`); after a
//! success the next failure is reported at once again.

use crate::media::time::{MediaDuration, MediaTime};

/// Media time between a storage failure and the next attempt.
pub const RETRY_AFTER: MediaDuration = MediaDuration::from_secs(1);

/// Media time between two reports of failures that go on.
pub const REPORT_EVERY: MediaDuration = MediaDuration::from_secs(10);

/// What the `retry` field of a `StorageError` says.
pub const RETRY_TEXT: &str = "the first key frame 1 s of media later";

/// Which storage failures are reported.
#[derive(Debug, Default)]
pub struct FailureReports {
    last_report: Option<MediaTime>,
    unreported: u64,
}

impl FailureReports {
    /// A failure at `at`: `Some(failures not reported since the last report)` when this one is
    /// to be reported.
    pub fn on_failure(&mut self, at: MediaTime) -> Option<u64> {
        let due = self
            .last_report
            .is_none_or(|t| at < t || at - t >= REPORT_EVERY);
        if !due {
            self.unreported += 1;
            return None;
        }
        self.last_report = Some(at);
        Some(std::mem::take(&mut self.unreported))
    }

    /// Storage works again: the next failure is news.
    pub fn on_success(&mut self) {
        self.last_report = None;
        self.unreported = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_that_go_on_are_reported_every_ten_seconds() {
        let t0 = MediaTime::from_secs(1_800_000_000);
        let at = |s: i64| t0 + MediaDuration::from_secs(s);
        let mut r = FailureReports::default();
        let reported: Vec<(i64, u64)> = (0..25)
            .filter_map(|s| r.on_failure(at(s)).map(|n| (s, n)))
            .collect();
        assert_eq!(reported, [(0, 0), (10, 9), (20, 9)]);
        r.on_success();
        assert_eq!(r.on_failure(at(21)), Some(0), "news after a success");
    }
}
