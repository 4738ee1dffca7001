//! The catalog's explanations: why each clip exists (a clip's [`ClipExplanation`] as JSON),
//! kept until the clip's last segment goes.
//!
//! [`ClipExplanation`]: crate::nodes::clip_explanation::ClipExplanation

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::Catalog;
use crate::media::time::MediaTime;

impl Catalog {
    /// Deletes the explanation of clip `clip` of `video` if the clip has no segment left.
    pub(super) fn forget_explanation_when_gone(&self, video: &str, clip: i64) -> Result<()> {
        self.conn.execute(
            "DELETE FROM explanations WHERE video = ?1 AND clip = ?2 AND NOT EXISTS \
             (SELECT 1 FROM segments WHERE video = ?1 AND clip = ?2)",
            params![video, clip],
        )?;
        Ok(())
    }

    /// Keeps why clip `clip` of `video` exists (its explanation, JSON).
    pub fn record_explanation(&self, video: &str, clip: i64, body: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO explanations(video, clip, body) VALUES(?1, ?2, ?3)",
            params![video, clip, body],
        )?;
        Ok(())
    }

    /// Why clip `clip` of `video` exists, if that was recorded.
    pub fn explanation(&self, video: &str, clip: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT body FROM explanations WHERE video = ?1 AND clip = ?2",
                params![video, clip],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The explanations of the clips of `video` with media in [start, end), by clip number.
    pub fn explanations_between(
        &self,
        video: &str,
        start: MediaTime,
        end: MediaTime,
    ) -> Result<Vec<(i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT clip, body FROM explanations WHERE video = ?1 AND clip IN \
             (SELECT clip FROM segments WHERE video = ?1 AND start_ns < ?3 AND end_ns > ?2) \
             ORDER BY clip",
        )?;
        let rows = stmt.query_map(params![video, start.as_nanos(), end.as_nanos()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest `limit` explanations of every video, newest first: (video, clip, body).
    pub fn recent_explanations(&self, limit: usize) -> Result<Vec<(String, i64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT video, clip, body FROM explanations ORDER BY rowid DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
