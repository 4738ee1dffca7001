//! A finished, uploaded segment as other installations sharing the object store learn of it (a
//! cluster's segment index): enough to list it in their catalogs, answer `availableMedia`, build
//! HLS playlists and MP4 exports, and read its bytes from the store.

use std::sync::Arc;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The video a segment belongs to, as its recording installation created it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoRecord {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Creation time, ns since the epoch (UTC).
    pub created_ns: i64,
    /// Segment length, ns.
    pub segment_length_ns: i64,
    /// Retention, ns; none = forever.
    pub retention_ns: Option<i64>,
}

/// One finished segment: where the store keeps it (`<video>/<origin>/<clip>-<seq>.mp4`) once
/// uploaded, where its recording node serves it until then, and its fragments. Published once
/// when it is finished and again when it is uploaded, or dropped unuploaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRecord {
    /// The recording installation's id (its archive catalog's).
    pub origin: String,
    /// The video.
    pub video: VideoRecord,
    /// Clip number within the origin installation.
    pub clip: i64,
    /// Position within the clip.
    pub seq: i64,
    /// UTC of the first frame, ns.
    pub start_ns: i64,
    /// UTC end (exclusive), ns.
    pub end_ns: i64,
    /// Bytes in the store (init included).
    pub bytes: i64,
    /// Length of the init segment.
    pub init_len: i64,
    /// SHA-256 of the bytes.
    pub sha256: Option<String>,
    /// Fragments: `[offset, len, start_ns, end_ns]`.
    pub fragments: Vec<[i64; 4]>,
    /// The object store has it (records before this field: always).
    #[serde(default = "yes")]
    pub uploaded: bool,
    /// Its id in the origin's catalog (`/api/videos/<video>/media/<id>.mp4` on its node).
    #[serde(default)]
    pub origin_id: i64,
    /// The recording node's playback address (`http://host:port`), where it can be read
    /// before it is uploaded.
    #[serde(default)]
    pub node_url: Option<String>,
    /// The segment is gone before it was uploaded (the recording node's cache was full): the
    /// others list a gap in its place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dropped: bool,
}

fn yes() -> bool {
    true
}

/// Tells the other installations of a finished segment; an error means "try again later".
pub type SegmentPublisher = Arc<dyn Fn(&SegmentRecord) -> Result<()> + Send + Sync>;

/// At most this many fragments in one record (a 5-minute segment of 1-s fragments has 300).
pub const MAX_FRAGMENTS: usize = 10_000;

impl SegmentRecord {
    /// Checks what a catalog would store: names usable as a path part and a store key, times
    /// and byte ranges in order; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 256
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !name_ok(&self.origin) {
            bail!("origin '{}' is not an installation id", self.origin);
        }
        if !name_ok(&self.video.name) {
            bail!("video.name '{}' is not a video name", self.video.name);
        }
        if self.clip < 0 || self.seq < 0 {
            bail!("clip {} / seq {} is negative", self.clip, self.seq);
        }
        if self.end_ns < self.start_ns {
            bail!("endNs {} is before startNs {}", self.end_ns, self.start_ns);
        }
        if self.init_len < 0 || self.bytes < self.init_len {
            bail!(
                "bytes {} / initLen {} out of order",
                self.bytes,
                self.init_len
            );
        }
        if self.fragments.len() > MAX_FRAGMENTS {
            bail!(
                "{} fragments (at most {MAX_FRAGMENTS})",
                self.fragments.len()
            );
        }
        if let Some(url) = &self.node_url {
            let scheme = url.starts_with("http://") || url.starts_with("https://");
            if !scheme || url.len() > 512 || url.chars().any(|c| c.is_whitespace()) {
                bail!("nodeUrl '{url}' is not an http(s) address");
            }
        }
        let mut next = self.init_len;
        for (i, [offset, len, start, end]) in self.fragments.iter().copied().enumerate() {
            let fits = offset >= next && len > 0 && offset.checked_add(len).is_some();
            if !fits || offset + len > self.bytes || end < start {
                bail!("fragments[{i}] does not fit the segment");
            }
            next = offset + len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SegmentRecord {
        SegmentRecord {
            origin: "0b7e-41".into(),
            video: VideoRecord {
                name: "lobby".into(),
                title: "Lobby".into(),
                description: String::new(),
                created_ns: 1,
                segment_length_ns: 30_000_000_000,
                retention_ns: None,
            },
            clip: 3,
            seq: 0,
            start_ns: 10,
            end_ns: 30,
            bytes: 300,
            init_len: 100,
            sha256: None,
            fragments: vec![[100, 100, 10, 20], [200, 100, 20, 30]],
            uploaded: false,
            origin_id: 7,
            node_url: Some("http://10.0.0.2:7878".into()),
            dropped: false,
        }
    }

    #[test]
    fn a_well_formed_record_passes_and_each_fault_is_named() {
        assert!(record().validate().is_ok());
        // A record with one fault, and the field its error must name.
        type Spoil = fn(&mut SegmentRecord);
        let faults: [(Spoil, &str); 6] = [
            (|r| r.video.name = "../etc".into(), "video.name"),
            (|r| r.origin = "a/b".into(), "origin"),
            (|r| r.fragments[1] = [150, 100, 20, 30], "fragments[1]"),
            (|r| r.fragments[1] = [200, 101, 20, 30], "fragments[1]"),
            (|r| r.end_ns = 5, "endNs"),
            (
                |r| r.node_url = Some("file:///etc/passwd".into()),
                "nodeUrl",
            ),
        ];
        for (spoil, field) in faults {
            let mut r = record();
            spoil(&mut r);
            let error = r.validate().expect_err(field).to_string();
            assert!(error.contains(field), "{field}: {error}");
        }
    }

    #[test]
    fn the_wire_form_is_camel_case_json() {
        let text = serde_json::to_string(&record()).expect("serializes");
        assert!(text.contains("\"startNs\":10") && text.contains("\"segmentLengthNs\""));
        let back: SegmentRecord = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, record());
        // A record from before the node's address was published: in the store.
        let mut old: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        for field in ["uploaded", "originId", "nodeUrl"] {
            old.as_object_mut().expect("object").remove(field);
        }
        let old: SegmentRecord = serde_json::from_value(old).expect("parses");
        assert!(old.uploaded && old.node_url.is_none());
    }
}
