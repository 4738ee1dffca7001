//! The archive catalog: which video has which segments and fragments, their UTC ranges, sizes,
//! content hashes, and whether each segment is in the local cache and in the object store.
//! SQLite in WAL mode with `synchronous=FULL`: a fragment is recorded only after its bytes are
//! fsync'd to the segment file, so after a crash the catalog never points at bytes that are not
//! on disk; the start-up repair ([`super::repair`]) trims what a crash left beyond the catalog.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::media::time::{MediaDuration, MediaTime};

#[path = "catalog_explanations.rs"]
mod explanations;
#[path = "catalog_shared.rs"]
mod shared;

/// A video: a named archive that gate openings append clips to.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoRow {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Creation time.
    pub created: MediaTime,
    /// Segment length in nanoseconds.
    pub segment_length_ns: i64,
    /// Retention in nanoseconds; none = forever.
    pub retention_ns: Option<i64>,
}

/// A segment: one fragmented MP4 file of one clip.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentRow {
    /// Catalog id.
    pub id: i64,
    /// Video name.
    pub video: String,
    /// Clip number within the installation (one per gate opening).
    pub clip: i64,
    /// Position within the clip, from 0.
    pub seq: i64,
    /// File, relative to the archive directory.
    pub path: String,
    /// UTC of its first frame.
    pub start: MediaTime,
    /// UTC end (exclusive) of its last complete fragment.
    pub end: MediaTime,
    /// Bytes of complete fragments (init included).
    pub bytes: i64,
    /// Length of the init segment (`ftyp` + `moov`).
    pub init_len: i64,
    /// SHA-256 of the file, once complete.
    pub sha256: Option<String>,
    /// Still being written.
    pub recording: bool,
    /// The file is in the local cache.
    pub local: bool,
    /// The object store has it.
    pub uploaded: bool,
    /// The installation the store keys it under: none for an archive with a store of its own
    /// (`<video>/<clip>-<seq>.mp4`); in a store a cluster shares, the recording installation's
    /// id (`<video>/<origin>/<clip>-<seq>.mp4`), this one's or another's (see
    /// [`Catalog::import`]).
    pub origin: Option<String>,
    /// Another installation's segment not in the store yet: its node's playback address.
    pub origin_url: Option<String>,
    /// Another installation's segment: its id in that installation's catalog.
    pub origin_id: Option<i64>,
}

/// A fragment (`moof` + `mdat`, one GOP or ≤ 1 s) of a segment file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FragmentRow {
    /// Byte offset in the file.
    pub offset: i64,
    /// Length in bytes.
    pub len: i64,
    /// UTC of its first frame.
    pub start: MediaTime,
    /// UTC end (exclusive).
    pub end: MediaTime,
}

/// Fragments further apart than this are not continuous: the rows of continuous fragments touch
/// exactly; this only absorbs rounding (a time read back from a file's ticks).
pub const CONTINUOUS_WITHIN: MediaDuration = MediaDuration::from_nanos(1_000_000);

/// True when media starting at `start` does not continue media that ended at `previous_end`:
/// a gap lies between them (playlists mark it, exports keep it).
pub fn resumes_after_gap(previous_end: Option<MediaTime>, start: MediaTime) -> bool {
    previous_end.is_some_and(|e| start > e + CONTINUOUS_WITHIN)
}

/// A gap in a video the archive reports (cache overflow, a crash).
#[derive(Clone, Debug, PartialEq)]
pub struct GapRow {
    /// UTC start.
    pub start: MediaTime,
    /// UTC end.
    pub end: MediaTime,
    /// Why.
    pub reason: String,
}

/// A connection to the catalog of one archive directory.
pub struct Catalog {
    conn: Connection,
    dir: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS index_outbox(id INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos(
    name TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL,
    created_ns INTEGER NOT NULL, segment_length_ns INTEGER NOT NULL, retention_ns INTEGER);
CREATE TABLE IF NOT EXISTS segments(
    id INTEGER PRIMARY KEY AUTOINCREMENT, video TEXT NOT NULL REFERENCES videos(name),
    clip INTEGER NOT NULL, seq INTEGER NOT NULL, path TEXT NOT NULL UNIQUE,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, bytes INTEGER NOT NULL,
    init_len INTEGER NOT NULL, sha256 TEXT, recording INTEGER NOT NULL,
    local INTEGER NOT NULL DEFAULT 1, uploaded INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS segments_by_time ON segments(video, start_ns);
CREATE TABLE IF NOT EXISTS fragments(
    segment INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    offset INTEGER NOT NULL, len INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    PRIMARY KEY(segment, offset));
CREATE TABLE IF NOT EXISTS gaps(
    video TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS explanations(
    video TEXT NOT NULL, clip INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY(video, clip));
";

fn segment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SegmentRow> {
    Ok(SegmentRow {
        id: r.get(0)?,
        video: r.get(1)?,
        clip: r.get(2)?,
        seq: r.get(3)?,
        path: r.get(4)?,
        start: MediaTime::from_nanos(r.get(5)?),
        end: MediaTime::from_nanos(r.get(6)?),
        bytes: r.get(7)?,
        init_len: r.get(8)?,
        sha256: r.get(9)?,
        recording: r.get(10)?,
        local: r.get(11)?,
        uploaded: r.get(12)?,
        origin: r.get(13)?,
        origin_url: r.get(14)?,
        origin_id: r.get(15)?,
    })
}

const SEGMENT_COLUMNS: &str = "id, video, clip, seq, path, start_ns, end_ns, bytes, init_len, sha256, recording, local, uploaded, origin, origin_url, origin_id";

impl Catalog {
    /// Opens (creating) the catalog of archive directory `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the archive directory {}", dir.display()))?;
        let path = dir.join("catalog.sqlite3");
        let conn = Connection::open(&path)
            .with_context(|| format!("cannot open the catalog {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Two connections setting up a new catalog at once (a pipeline's archive and the
        // playback API) race for the switch to WAL, which SQLite refuses at once rather than
        // waiting: `vigil run` died of "database is locked" at start. Retry for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match set_up(&conn) {
                Ok(()) => break,
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("cannot set up the catalog {}", path.display()));
                }
            }
        }
        Ok(Self {
            conn,
            dir: dir.to_path_buf(),
        })
    }

    /// Turns fsync off for this connection: only for bulk loads that can be redone (benchmarks).
    pub fn without_fsync(&self) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "OFF")?;
        Ok(())
    }

    /// The archive directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This installation's id (made once, kept in the catalog).
    pub fn installation(&self) -> Result<String> {
        Ok(self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'installation'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Creates the video if it does not exist; returns whether it was created.
    pub fn ensure_video(&self, v: &VideoRow) -> Result<bool> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO videos(name, title, description, created_ns, segment_length_ns, retention_ns)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
            params![v.name, v.title, v.description, v.created.as_nanos(), v.segment_length_ns, v.retention_ns],
        )?;
        Ok(n == 1)
    }

    /// Every video, by name.
    pub fn videos(&self) -> Result<Vec<VideoRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, title, description, created_ns, segment_length_ns, retention_ns FROM videos ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(VideoRow {
                name: r.get(0)?,
                title: r.get(1)?,
                description: r.get(2)?,
                created: MediaTime::from_nanos(r.get(3)?),
                segment_length_ns: r.get(4)?,
                retention_ns: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The next clip number.
    pub fn next_clip(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(clip), 0) + 1 FROM segments", [], |r| {
                r.get(0)
            })?)
    }

    /// Records a new segment being written (before its file exists); in an archive whose store
    /// is shared ([`Catalog::share_store`]) it is keyed under this installation.
    pub fn begin_segment(
        &self,
        video: &str,
        clip: i64,
        seq: i64,
        path: &str,
        start: MediaTime,
        init_len: i64,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO segments(video, clip, seq, path, start_ns, end_ns, bytes, init_len, recording, origin)
             VALUES(?1, ?2, ?3, ?4, ?5, ?5, ?6, ?6, 1, (SELECT value FROM meta WHERE key = 'store_origin'))",
            params![video, clip, seq, path, start.as_nanos(), init_len],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records a fragment whose bytes are on disk (fsync'd).
    pub fn add_fragment(&self, segment: i64, f: &FragmentRow) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO fragments(segment, offset, len, start_ns, end_ns) VALUES(?1, ?2, ?3, ?4, ?5)",
            params![segment, f.offset, f.len, f.start.as_nanos(), f.end.as_nanos()],
        )?;
        tx.execute(
            "UPDATE segments SET end_ns = MAX(end_ns, ?2), bytes = ?3 WHERE id = ?1",
            params![segment, f.end.as_nanos(), f.offset + f.len],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a segment complete with its content hash.
    pub fn finish_segment(&self, segment: i64, sha256: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE segments SET recording = 0, sha256 = ?2 WHERE id = ?1",
            params![segment, sha256],
        )?;
        Ok(())
    }

    /// Segments of `video` overlapping [start, end), in time order.
    pub fn segments_between(
        &self,
        video: &str,
        start: MediaTime,
        end: MediaTime,
    ) -> Result<Vec<SegmentRow>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE video = ?1 AND start_ns < ?3 AND end_ns > ?2 ORDER BY start_ns, id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![video, start.as_nanos(), end.as_nanos()],
            segment_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// True when `video` has media in [start, end): two indexed lookups (segments of one video
    /// never overlap, so only the last one starting before `start` can reach into the range).
    pub fn has_media(&self, video: &str, start: MediaTime, end: MediaTime) -> Result<bool> {
        let inside: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM segments WHERE video = ?1 AND start_ns >= ?2 AND start_ns < ?3 AND end_ns > start_ns LIMIT 1",
            )?
            .query_row(params![video, start.as_nanos(), end.as_nanos()], |r| r.get(0))
            .optional()?;
        if inside.is_some() {
            return Ok(true);
        }
        let before: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT end_ns FROM segments WHERE video = ?1 AND start_ns < ?2 ORDER BY start_ns DESC LIMIT 1",
            )?
            .query_row(params![video, start.as_nanos()], |r| r.get(0))
            .optional()?;
        Ok(before.is_some_and(|e| e > start.as_nanos()))
    }

    /// The UTC span of `video`'s media: first start and last end.
    pub fn media_span(&self, video: &str) -> Result<Option<(MediaTime, MediaTime)>> {
        let span: (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT MIN(start_ns), MAX(end_ns) FROM segments WHERE video = ?1",
            params![video],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(match span {
            (Some(a), Some(b)) => Some((MediaTime::from_nanos(a), MediaTime::from_nanos(b))),
            _ => None,
        })
    }

    /// One segment.
    pub fn segment(&self, id: i64) -> Result<Option<SegmentRow>> {
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = ?1");
        Ok(self
            .conn
            .query_row(&sql, params![id], segment_row)
            .optional()?)
    }

    /// Every segment, oldest first (repair, upload, cache accounting).
    pub fn all_segments(&self) -> Result<Vec<SegmentRow>> {
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY start_ns, id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], segment_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The complete fragments of a segment, in order.
    pub fn fragments(&self, segment: i64) -> Result<Vec<FragmentRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT offset, len, start_ns, end_ns FROM fragments WHERE segment = ?1 ORDER BY offset",
        )?;
        let rows = stmt.query_map(params![segment], |r| {
            Ok(FragmentRow {
                offset: r.get(0)?,
                len: r.get(1)?,
                start: MediaTime::from_nanos(r.get(2)?),
                end: MediaTime::from_nanos(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks a segment uploaded.
    pub fn mark_uploaded(&self, segment: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE segments SET uploaded = 1 WHERE id = ?1",
            params![segment],
        )?;
        Ok(())
    }

    /// The local file of an uploaded segment was evicted from the cache.
    pub fn mark_evicted(&self, segment: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE segments SET local = 0 WHERE id = ?1",
            params![segment],
        )?;
        Ok(())
    }

    /// Forgets a segment whose media is gone, recording the gap it leaves.
    pub fn drop_segment(&self, s: &SegmentRow, reason: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        drop_segment_in(&tx, s, reason)?;
        tx.commit()?;
        let _ = self.forget_explanation_when_gone(&s.video, s.clip);
        Ok(())
    }

    /// Whether clip `clip` of `video` still has a segment.
    pub fn clip_has_segments(&self, video: &str, clip: i64) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM segments WHERE video = ?1 AND clip = ?2 LIMIT 1",
                params![video, clip],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records a gap in `video` that no segment was dropped for: media that never reached the
    /// archive (the camera was away, a write failed).
    /// A gap recorded again from the same start (a sink that failed to resume after recording
    /// it, then tried again later) extends the row already there.
    pub fn record_gap(&self, video: &str, gap: &GapRow) -> Result<()> {
        if gap.end > gap.start {
            let extended = self.conn.execute(
                "UPDATE gaps SET end_ns = MAX(end_ns, ?3) WHERE video = ?1 AND start_ns = ?2",
                params![video, gap.start.as_nanos(), gap.end.as_nanos()],
            )?;
            if extended == 0 {
                self.conn.execute(
                    "INSERT INTO gaps(video, start_ns, end_ns, reason) VALUES(?1, ?2, ?3, ?4)",
                    params![video, gap.start.as_nanos(), gap.end.as_nanos(), gap.reason],
                )?;
            }
        }
        Ok(())
    }

    /// Deletes a segment (retention): no gap is recorded. The clip's explanation goes with its
    /// last segment (best effort: on a full disk the segment's row goes first, as it did before
    /// explanations existed, and an explanation left over is harmless).
    pub fn delete_segment(&self, segment: i64) -> Result<()> {
        let clip: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT video, clip FROM segments WHERE id = ?1",
                params![segment],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        self.conn
            .execute("DELETE FROM segments WHERE id = ?1", params![segment])?;
        if let Some((video, clip)) = clip {
            let _ = self.forget_explanation_when_gone(&video, clip);
        }
        Ok(())
    }

    /// Gaps recorded for `video` overlapping [start, end).
    pub fn gaps_between(
        &self,
        video: &str,
        start: MediaTime,
        end: MediaTime,
    ) -> Result<Vec<GapRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT start_ns, end_ns, reason FROM gaps WHERE video = ?1 AND start_ns < ?3 AND end_ns > ?2 ORDER BY start_ns",
        )?;
        let rows = stmt.query_map(params![video, start.as_nanos(), end.as_nanos()], |r| {
            Ok(GapRow {
                start: MediaTime::from_nanos(r.get(0)?),
                end: MediaTime::from_nanos(r.get(1)?),
                reason: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Bytes of segment files in the local cache.
    pub fn local_bytes(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(SUM(bytes), 0) FROM segments WHERE local = 1",
            [],
            |r| r.get(0),
        )?)
    }

    /// Drops the fragments past `bytes` (repair after a crash) and sets the segment's end.
    pub fn truncate_segment(&self, segment: i64, bytes: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM fragments WHERE segment = ?1 AND offset + len > ?2",
            params![segment, bytes],
        )?;
        tx.execute(
            "UPDATE segments SET bytes = ?2,
                end_ns = COALESCE((SELECT MAX(end_ns) FROM fragments WHERE segment = ?1), start_ns)
             WHERE id = ?1",
            params![segment, bytes],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// The connection's settings and the schema; each step may be repeated.
fn set_up(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    add_columns(conn)?;
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES('installation', ?1)",
        params![uuid::Uuid::new_v4().to_string()],
    )?;
    Ok(())
}

/// Columns added after the first release: catalogs made before get them on opening (in one
/// write transaction, so two connections opening an old catalog at once add them once).
fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    const ADDED: [(&str, &str); 4] = [
        ("origin", "TEXT"),
        ("published", "INTEGER NOT NULL DEFAULT 0"),
        ("origin_url", "TEXT"),
        ("origin_id", "INTEGER"),
    ];
    let missing = |conn: &Connection| -> rusqlite::Result<Vec<(&str, &str)>> {
        let mut stmt =
            conn.prepare("SELECT 1 FROM pragma_table_info('segments') WHERE name = ?1")?;
        let mut out = Vec::new();
        for (name, decl) in ADDED {
            if !stmt.exists(params![name])? {
                out.push((name, decl));
            }
        }
        Ok(out)
    };
    if missing(conn)?.is_empty() {
        return Ok(());
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    for (name, decl) in missing(&tx)? {
        tx.execute_batch(&format!("ALTER TABLE segments ADD COLUMN {name} {decl}"))?;
    }
    tx.commit()
}

/// Deletes segment `s` in `tx`, a gap (`reason`) in its place.
fn drop_segment_in(tx: &rusqlite::Transaction<'_>, s: &SegmentRow, reason: &str) -> Result<()> {
    if s.end > s.start {
        tx.execute(
            "INSERT INTO gaps(video, start_ns, end_ns, reason) VALUES(?1, ?2, ?3, ?4)",
            params![s.video, s.start.as_nanos(), s.end.as_nanos(), reason],
        )?;
    }
    tx.execute("DELETE FROM segments WHERE id = ?1", params![s.id])?;
    Ok(())
}

/// Whether SQLite refused because another connection holds the lock.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> MediaTime {
        MediaTime::from_secs(1_767_225_600 + s)
    }

    #[test]
    fn segments_fragments_and_gaps_round_trip() {
        let dir = std::env::temp_dir().join(format!("vigil-catalog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = Catalog::open(&dir).expect("opens");
        let video = VideoRow {
            name: "lobby".into(),
            title: "Lobby".into(),
            description: String::new(),
            created: t(0),
            segment_length_ns: 30_000_000_000,
            retention_ns: None,
        };
        assert!(c.ensure_video(&video).expect("creates"));
        assert!(!c.ensure_video(&video).expect("exists"), "created once");
        let clip = c.next_clip().expect("clip");
        let id = c
            .begin_segment("lobby", clip, 0, "videos/lobby/1.mp4", t(10), 700)
            .expect("segment");
        for i in 0..3 {
            c.add_fragment(
                id,
                &FragmentRow {
                    offset: 700 + i * 1000,
                    len: 1000,
                    start: t(10 + i),
                    end: t(11 + i),
                },
            )
            .expect("fragment");
        }
        let s = c.segment(id).expect("query").expect("exists");
        assert_eq!(
            (s.start, s.end, s.bytes, s.recording),
            (t(10), t(13), 3700, true)
        );
        assert_eq!(
            c.segments_between("lobby", t(12), t(20)).expect("q").len(),
            1
        );
        assert!(
            c.segments_between("lobby", t(13), t(20))
                .expect("q")
                .is_empty(),
            "end exclusive"
        );
        c.truncate_segment(id, 2700).expect("truncates");
        let s = c.segment(id).expect("query").expect("exists");
        assert_eq!((s.end, s.bytes), (t(12), 2700));
        assert_eq!(c.fragments(id).expect("q").len(), 2);
        c.drop_segment(&s, "cacheFull").expect("drops");
        assert_eq!(
            c.gaps_between("lobby", t(0), t(60)).expect("q")[0].reason,
            "cacheFull"
        );
        assert!(
            c.fragments(id).expect("q").is_empty(),
            "fragments go with it"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod open_race_tests {
    /// Connections that set up a new catalog at the same moment all succeed (the switch to
    /// WAL is refused at once to all but one; `vigil run` died of it at start).
    #[test]
    fn a_gap_recorded_again_from_its_start_is_extended_not_repeated() {
        let dir = std::env::temp_dir().join(format!("vigil-catalog-gap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = crate::archive::catalog::Catalog::open(&dir).expect("opens");
        let t = |s: i64| crate::media::time::MediaTime::from_secs(1_800_000_000 + s);
        for (end, reason) in [(8, "storage error"), (12, "storage error"), (20, "other")] {
            c.record_gap(
                "v",
                &crate::archive::catalog::GapRow {
                    start: t(6),
                    end: t(end),
                    reason: reason.into(),
                },
            )
            .expect("gap");
        }
        let gaps = c.gaps_between("v", t(0), t(60)).expect("gaps");
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!((gaps[0].start, gaps[0].end), (t(6), t(20)));
        assert_eq!(gaps[0].reason, "storage error", "the first reason stays");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn many_connections_can_set_up_a_new_catalog_at_once() {
        for round in 0..5 {
            let dir = std::env::temp_dir()
                .join(format!("vigil-catalog-race-{}-{round}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
            let opened: Vec<bool> = (0..6)
                .map(|_| {
                    let (dir, barrier) = (dir.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        super::Catalog::open(&dir).is_ok()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap_or(false))
                .collect();
            assert!(opened.iter().all(|o| *o), "round {round}: {opened:?}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
