//! The catalog of an archive whose object store a cluster shares: this installation's segments
//! are keyed under its id, each finished one is published to the cluster's segment index
//! ([`SegmentRecord`]) once finished and again once uploaded (`published` 1 and 2), and the
//! other installations' segments are imported from it, so that playback answers for media
//! recorded on any node (read from the recording node until it is uploaded, then from the
//! store).

use anyhow::{Context, Result};
use rusqlite::{OptionalExtension, params};

use super::{Catalog, SEGMENT_COLUMNS, SegmentRow, segment_row};
use crate::archive::segment_record::{SegmentRecord, VideoRecord};
use crate::media::time::MediaTime;

impl Catalog {
    /// From now on, this archive's new segments are keyed in the store under this
    /// installation's id (a store shared with other installations). Kept in the catalog.
    pub fn share_store(&self) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) SELECT 'store_origin', value FROM meta WHERE key = 'installation'",
            [],
        )?;
        Ok(())
    }

    /// Whether this archive's store is shared ([`Catalog::share_store`]).
    pub fn shares_store(&self) -> Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM meta WHERE key = 'store_origin'", [], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    /// This installation's finished segments the cluster's index has not been told of as they
    /// are now (finished, or uploaded), oldest first.
    pub fn unpublished(&self) -> Result<Vec<SegmentRow>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE recording = 0
             AND (published = 0 OR (uploaded = 1 AND published < 2))
             AND origin = (SELECT value FROM meta WHERE key = 'store_origin') ORDER BY start_ns, id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], segment_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The cluster's index has segment `id`, as uploaded or not.
    pub fn mark_published(&self, id: i64, uploaded: bool) -> Result<()> {
        self.conn.execute(
            "UPDATE segments SET published = MAX(published, ?2) WHERE id = ?1",
            params![id, if uploaded { 2 } else { 1 }],
        )?;
        Ok(())
    }

    /// What the cluster's index says of segment `s` (with its video and fragments).
    pub fn record_of(&self, s: &SegmentRow) -> Result<SegmentRecord> {
        let video = self
            .videos()?
            .into_iter()
            .find(|v| v.name == s.video)
            .with_context(|| format!("segment {} names video '{}', unknown", s.id, s.video))?;
        let fragments = self
            .fragments(s.id)?
            .into_iter()
            .map(|f| [f.offset, f.len, f.start.as_nanos(), f.end.as_nanos()])
            .collect();
        Ok(SegmentRecord {
            origin: s.origin.clone().unwrap_or_default(),
            video: VideoRecord {
                name: video.name,
                title: video.title,
                description: video.description,
                created_ns: video.created.as_nanos(),
                segment_length_ns: video.segment_length_ns,
                retention_ns: video.retention_ns,
            },
            clip: s.clip,
            seq: s.seq,
            start_ns: s.start.as_nanos(),
            end_ns: s.end.as_nanos(),
            bytes: s.bytes,
            init_len: s.init_len,
            sha256: s.sha256.clone(),
            fragments,
            uploaded: s.uploaded,
            origin_id: s.id,
            node_url: None,
            dropped: false,
        })
    }

    /// The sequence number of the next record of the cluster's segment index to import (1 when
    /// none was imported yet), kept so that a node starting again reads on from there, and
    /// which stream it counts in (its creation time: a stream made anew counts from 1 again).
    pub fn index_position(&self) -> Result<(u64, Option<String>)> {
        let value = |key: &str| -> Result<Option<String>> {
            Ok(self
                .conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?)
        };
        let next = value("index_next")?
            .and_then(|t| t.parse().ok())
            .unwrap_or(1u64)
            .max(1);
        Ok((next, value("index_stream")?))
    }

    /// Records that the records before `next` of the index stream made at `stream` have been
    /// imported.
    pub fn set_index_position(&self, next: u64, stream: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for (key, value) in [
            ("index_next", next.to_string()),
            ("index_stream", stream.into()),
        ] {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES(?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops this installation's segment `s`, unuploaded (the cache full), a gap in its place;
    /// in a store a cluster shares, queues in the same transaction a record saying it is gone,
    /// so that the members that listed it (from a record this one may not know was
    /// acknowledged) list the gap instead of media nobody has ([`Catalog::outbox`]).
    pub fn drop_unuploaded(&self, s: &SegmentRow, reason: &str) -> Result<()> {
        if !self.shares_store()? {
            return self.drop_segment(s, reason);
        }
        let mut record = self.record_of(s)?;
        record.dropped = true;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO index_outbox(record) VALUES(?1)",
            params![serde_json::to_string(&record)?],
        )?;
        super::drop_segment_in(&tx, s, reason)?;
        tx.commit()?;
        let _ = self.forget_explanation_when_gone(&s.video, s.clip);
        Ok(())
    }

    /// The records queued for the cluster's index ([`Catalog::queue_dropped`]), oldest first,
    /// each with its queue id.
    pub fn outbox(&self) -> Result<Vec<(i64, SegmentRecord)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, record FROM index_outbox ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row?;
            let record = serde_json::from_str(&text)
                .with_context(|| format!("record {id} of the index outbox"))?;
            out.push((id, record));
        }
        Ok(out)
    }

    /// The cluster's index has queued record `id`.
    pub fn sent(&self, id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM index_outbox WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Lists another installation's segment (not in the cache: on its node, or in the store once
    /// uploaded), creating its video if this archive has none of that name; a record saying a
    /// listed segment is now uploaded marks it so. True when something changed; a record of this
    /// installation's own or one already applied changes nothing, and neither does one whose
    /// segment passed its video's retention period at `now` (retention deletes it from the store;
    /// an index read again from its start must not list it again). The record is checked first.
    pub fn import(&self, r: &SegmentRecord, now: MediaTime) -> Result<bool> {
        r.validate()?;
        if self.shares_store()? && self.installation()? == r.origin {
            return Ok(false);
        }
        if r.video
            .retention_ns
            .is_some_and(|retention| r.end_ns <= now.as_nanos().saturating_sub(retention))
        {
            return Ok(false);
        }
        let path = format!(
            "cluster/{}/{}/{:08}-{:04}.mp4",
            r.origin, r.video.name, r.clip, r.seq
        );
        if r.dropped {
            return self.forget_dropped(&path);
        }
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO videos(name, title, description, created_ns, segment_length_ns, retention_ns)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
            params![r.video.name, r.video.title, r.video.description, r.video.created_ns,
                    r.video.segment_length_ns, r.video.retention_ns],
        )?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO segments(video, clip, seq, path, start_ns, end_ns, bytes, init_len,
                 sha256, recording, local, uploaded, origin, published, origin_url, origin_id)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, 0, ?10, ?11, 2, ?12, ?13)",
            params![r.video.name, r.clip, r.seq, path, r.start_ns, r.end_ns, r.bytes, r.init_len,
                    r.sha256, r.uploaded, r.origin, r.node_url, r.origin_id],
        )?;
        let uploaded_now = added == 0
            && r.uploaded
            && tx.execute(
                "UPDATE segments SET uploaded = 1 WHERE path = ?1 AND uploaded = 0",
                params![path],
            )? == 1;
        if added == 1 {
            let id = tx.last_insert_rowid();
            let mut insert = tx.prepare_cached(
                "INSERT INTO fragments(segment, offset, len, start_ns, end_ns) VALUES(?1, ?2, ?3, ?4, ?5)",
            )?;
            for [offset, len, start, end] in &r.fragments {
                insert.execute(params![id, offset, len, start, end])?;
            }
        }
        tx.commit()?;
        Ok(added == 1 || uploaded_now)
    }

    /// Another installation's segment listed at `path` is gone unuploaded: a gap in its place.
    fn forget_dropped(&self, path: &str) -> Result<bool> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM segments WHERE path = ?1 AND uploaded = 0",
                params![path],
                |r| r.get(0),
            )
            .optional()?;
        let Some(row) = id.map(|id| self.segment(id)).transpose()?.flatten() else {
            return Ok(false);
        };
        self.drop_segment(&row, "cacheFull")?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::catalog::{FragmentRow, VideoRow};

    fn t(s: i64) -> MediaTime {
        MediaTime::from_secs(1_767_225_600 + s)
    }

    fn folder(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-shared-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A shared archive with one finished, uploaded segment of `lobby` from `at` (3 fragments).
    fn recorded(dir: &std::path::Path, at: i64) -> (Catalog, i64) {
        let c = Catalog::open(dir).expect("opens");
        c.share_store().expect("shared");
        c.ensure_video(&VideoRow {
            name: "lobby".into(),
            title: "Lobby".into(),
            description: "door".into(),
            created: t(0),
            segment_length_ns: 30_000_000_000,
            retention_ns: Some(86_400_000_000_000),
        })
        .expect("video");
        let clip = c.next_clip().expect("clip");
        let id = c
            .begin_segment(
                "lobby",
                clip,
                0,
                &format!("videos/lobby/{clip}.mp4"),
                t(at),
                700,
            )
            .expect("segment");
        for i in 0..3 {
            c.add_fragment(
                id,
                &FragmentRow {
                    offset: 700 + i * 1000,
                    len: 1000,
                    start: t(at + i),
                    end: t(at + i + 1),
                },
            )
            .expect("fragment");
        }
        c.finish_segment(id, "ab12").expect("finished");
        (c, id)
    }

    #[test]
    fn a_segment_recorded_on_one_node_is_listed_on_another_once() {
        let (a_dir, b_dir) = (folder("a"), folder("b"));
        let (a, id) = recorded(&a_dir, 10);
        let (b, _) = recorded(&b_dir, 20);
        let a_id = a.installation().expect("id");
        let s = a.segment(id).expect("q").expect("row");
        assert_eq!(
            s.origin.as_deref(),
            Some(a_id.as_str()),
            "keyed under its installation"
        );
        // Finished: told once as it is, then again once uploaded.
        assert_eq!(a.unpublished().expect("q").len(), 1);
        let finished = a.record_of(&s).expect("record");
        assert!(!finished.uploaded);
        a.mark_published(id, false).expect("published");
        assert!(a.unpublished().expect("q").is_empty());
        a.mark_uploaded(id).expect("uploaded");
        let s = a.segment(id).expect("q").expect("row");
        assert_eq!(a.unpublished().expect("q").len(), 1);
        let record = a.record_of(&s).expect("record");
        a.mark_published(id, true).expect("published");
        assert!(a.unpublished().expect("q").is_empty());

        assert!(
            !a.import(&record, t(100)).expect("own"),
            "its own record changes nothing"
        );
        let mut from_node = finished.clone();
        from_node.node_url = Some("http://10.1.0.1:7878".into());
        assert!(b.import(&from_node, t(100)).expect("imports"));
        let listed = b.segments_between("lobby", t(0), t(20)).expect("q")[0].clone();
        assert_eq!(
            (
                listed.uploaded,
                listed.origin_url.as_deref(),
                listed.origin_id
            ),
            (false, Some("http://10.1.0.1:7878"), Some(id)),
            "read from its node until uploaded"
        );
        assert!(b.import(&record, t(100)).expect("uploaded now"));
        assert!(!b.import(&record, t(100)).expect("again"), "listed once");
        let both = b.segments_between("lobby", t(0), t(60)).expect("q");
        assert_eq!(both.len(), 2);
        let imported = &both[0];
        assert_eq!(
            (
                imported.start,
                imported.end,
                imported.bytes,
                imported.local,
                imported.uploaded
            ),
            (t(10), t(13), 3700, false, true)
        );
        assert_eq!(imported.origin.as_deref(), Some(a_id.as_str()));
        assert_eq!(
            b.fragments(imported.id).expect("q"),
            a.fragments(id).expect("q")
        );
        let b_id = b.installation().expect("id");
        assert!(
            b.unpublished()
                .expect("q")
                .iter()
                .all(|s| s.origin.as_deref() == Some(b_id.as_str())),
            "only its own segments are published, not what it imported"
        );
        let _ = std::fs::remove_dir_all(&a_dir);
        let _ = std::fs::remove_dir_all(&b_dir);
    }

    #[test]
    fn an_unshared_archive_keeps_the_old_keys_and_a_video_arrives_with_its_first_segment() {
        let (a_dir, c_dir) = (folder("a2"), folder("c2"));
        let (a, id) = recorded(&a_dir, 10);
        let record = a
            .record_of(&a.segment(id).expect("q").expect("row"))
            .expect("r");
        let c = Catalog::open(&c_dir).expect("opens");
        assert!(!c.shares_store().expect("q"));
        assert!(c.import(&record, t(100)).expect("imports"));
        let videos = c.videos().expect("q");
        assert_eq!(
            (videos[0].name.as_str(), videos[0].description.as_str()),
            ("lobby", "door")
        );
        let clip = c.next_clip().expect("clip");
        let own = c
            .begin_segment("lobby", clip, 0, "videos/lobby/x.mp4", t(40), 700)
            .expect("segment");
        assert_eq!(c.segment(own).expect("q").expect("row").origin, None);
        let _ = std::fs::remove_dir_all(&a_dir);
        let _ = std::fs::remove_dir_all(&c_dir);
    }

    #[test]
    fn a_segment_dropped_on_its_node_becomes_a_gap_on_the_others() {
        let (a_dir, b_dir) = (folder("a4"), folder("b4"));
        let (a, id) = recorded(&a_dir, 10);
        let s = a.segment(id).expect("q").expect("row");
        let finished = a.record_of(&s).expect("record");
        a.mark_published(id, false).expect("published");
        let b = Catalog::open(&b_dir).expect("opens");
        b.share_store().expect("shared");
        assert!(b.import(&finished, t(100)).expect("listed"));
        // The cache overflows on a before the store took it.
        a.drop_unuploaded(&s, "cacheFull").expect("dropped");
        assert!(a.segment(id).expect("q").is_none());
        let outbox = a.outbox().expect("q");
        assert_eq!(outbox.len(), 1);
        let (queued, gone) = &outbox[0];
        assert!(gone.dropped);
        assert!(b.import(gone, t(100)).expect("forgotten"));
        assert!(
            b.segments_between("lobby", t(0), t(60))
                .expect("q")
                .is_empty()
        );
        let gaps = b.gaps_between("lobby", t(0), t(60)).expect("q");
        assert_eq!((gaps.len(), gaps[0].start, gaps[0].end), (1, t(10), t(13)));
        assert!(!b.import(gone, t(100)).expect("again"), "once");
        a.sent(*queued).expect("sent");
        assert!(a.outbox().expect("q").is_empty());
        let _ = std::fs::remove_dir_all(&a_dir);
        let _ = std::fs::remove_dir_all(&b_dir);
    }

    #[test]
    fn the_index_position_is_kept_and_starts_at_one() {
        let dir = folder("pos");
        let c = Catalog::open(&dir).expect("opens");
        assert_eq!(c.index_position().expect("q"), (1, None));
        c.set_index_position(42, "s1").expect("kept");
        c.set_index_position(43, "s1").expect("kept");
        drop(c);
        assert_eq!(
            Catalog::open(&dir)
                .expect("opens")
                .index_position()
                .expect("q"),
            (43, Some("s1".to_string()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_record_past_its_videos_retention_is_not_listed_again() {
        let (a_dir, d_dir) = (folder("a3"), folder("d3"));
        let (a, id) = recorded(&a_dir, 10);
        let record = a
            .record_of(&a.segment(id).expect("q").expect("row"))
            .expect("r");
        let d = Catalog::open(&d_dir).expect("opens");
        // The segment ends at t(13); its video keeps a day.
        let day = 86_400;
        assert!(!d.import(&record, t(13 + day)).expect("expired"));
        assert!(
            d.segments_between("lobby", t(0), t(60))
                .expect("q")
                .is_empty()
        );
        assert!(d.import(&record, t(12 + day)).expect("still kept"));
        let _ = std::fs::remove_dir_all(&a_dir);
        let _ = std::fs::remove_dir_all(&d_dir);
    }

    #[test]
    fn a_catalog_from_before_the_cluster_gets_its_new_columns_on_opening() {
        let dir = folder("old");
        std::fs::create_dir_all(&dir).expect("dir");
        {
            let old = rusqlite::Connection::open(dir.join("catalog.sqlite3")).expect("db");
            old.execute_batch(crate::archive::catalog::SCHEMA)
                .expect("old schema");
            old.execute_batch(
                "INSERT INTO videos VALUES('lobby', 'Lobby', '', 0, 30000000000, NULL);
                 INSERT INTO segments(video, clip, seq, path, start_ns, end_ns, bytes, init_len, recording)
                 VALUES('lobby', 1, 0, 'videos/lobby/1.mp4', 10, 20, 700, 700, 0);",
            )
            .expect("old rows");
        }
        let c = Catalog::open(&dir).expect("opens");
        let rows = c.all_segments().expect("q");
        assert_eq!((rows.len(), rows[0].origin.clone()), (1, None));
        c.share_store().expect("shared");
        c.mark_uploaded(rows[0].id).expect("uploaded");
        assert!(
            c.unpublished().expect("q").is_empty(),
            "keyed the old way: not the cluster's"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
