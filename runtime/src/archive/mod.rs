//! The video archive behind VideoSink: segment files in a local directory (the cache), a SQLite
//! catalog of segments and fragments, the start-up repair, availability queries, HLS playlists and
//! MP4 export for playback, and the upload of segments to object storage (S3, Azure Blob, GCS, a folder).

pub mod available;
pub mod catalog;
pub mod export;
pub mod hls;
pub mod keeper;
pub mod repair;
pub mod segment_record;
pub mod store;
pub mod store_location;

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::time::MediaTime;

/// The subject of an archive's own events (repair, uploads, retention): `/archive/<dir>`, the
/// directory's path without its leading `/`.
pub fn subject(dir: &Path) -> String {
    format!(
        "/archive/{}",
        dir.display().to_string().trim_start_matches('/')
    )
}

/// Opens the archive at `dir` and repairs what a crash left, reporting the repair as an
/// `ArchiveRepaired` diagnostics event at `at`.
pub fn open_archive(dir: &Path, bus: &EventBus, at: MediaTime) -> Result<catalog::Catalog> {
    let catalog = catalog::Catalog::open(dir)?;
    let report = repair::repair(&catalog)?;
    if !report.is_clean() {
        bus.emit(Event::new(
            EventClass::Diagnostics,
            "ArchiveRepaired",
            subject(dir),
            at,
            json!({"archive": dir, "segmentsTrimmed": report.trimmed, "segmentsClosed": report.closed,
                   "segmentsDropped": report.dropped, "orphanFilesDeleted": report.orphans}),
        ));
    }
    Ok(catalog)
}

/// Where an archive keeps the snapshot of clip `clip` of `video`:
/// `<archive>/snapshots/<video>/<clip>.jpg` (eight digits, as segment files).
pub fn snapshot_file(archive: &Path, video: &str, clip: i64) -> std::path::PathBuf {
    archive
        .join("snapshots")
        .join(video)
        .join(format!("{clip:08}.jpg"))
}

/// The object store of `--store`, checked (its bucket answers a listing); none without the option.
pub fn open_store(store: Option<&str>) -> Result<Option<std::sync::Arc<store::ObjectStore>>> {
    let Some(url) = store else {
        return Ok(None);
    };
    let s = store::ObjectStore::from_env(url)?;
    // An unreachable store is not fatal: segments wait in the cache (the keeper reports it).
    if let Err(e) = s.check() {
        tracing::warn!("object store {s:?}: {e:#}; segments stay in the cache until it answers");
    }
    Ok(Some(std::sync::Arc::new(s)))
}

/// Reads evicted segments back from `store` for playback: the whole object, or the bytes
/// `first..=last` of it; another cluster member's segment that is not in the store yet is read
/// from its node through `peers` first.
pub fn remote_reader(
    store: Option<std::sync::Arc<store::ObjectStore>>,
    peers: Option<std::sync::Arc<PeerReader>>,
) -> Option<crate::api::playback::RemoteReader> {
    let store = store?;
    Some(std::sync::Arc::new(
        move |s: &catalog::SegmentRow, range: Option<(u64, u64)>| {
            let mut from_node = None;
            if let (false, Some(peers)) = (s.uploaded, &peers) {
                match peers.read(s, range) {
                    Ok(bytes) => return Ok(bytes),
                    // Perhaps uploaded meanwhile (and evicted there): the store may have it.
                    Err(e) => from_node = Some(e),
                }
            }
            let key = store.segment_key(s);
            let got = match range {
                Some((first, last)) => store.get_range(&key, first, last)?,
                None => store.get(&key)?,
            };
            got.ok_or_else(|| match from_node {
                Some(e) => e.context(format!("segment {} is not in the store yet", s.id)),
                None => anyhow::anyhow!("segment {} is in neither the cache nor the store", s.id),
            })
        },
    ))
}

/// Reads another cluster member's segments that are not in the object store yet from that
/// member's playback API (`GET <node>/api/videos/<video>/media/<id>.mp4`, with a byte range),
/// using this node's own `VIGIL_VIEWER_TOKEN` or `VIGIL_OPERATOR_TOKEN` (a cluster's nodes share
/// their tokens). Made, and dropped last, outside the async runtime (a blocking HTTP client).
pub struct PeerReader {
    client: reqwest::blocking::Client,
    token: Option<String>,
}

/// How long a read from another node may take.
pub const PEER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl PeerReader {
    /// A reader with this process's token, if any.
    pub fn new() -> anyhow::Result<Self> {
        let client = crate::tls::http_client_builder()?
            .timeout(PEER_READ_TIMEOUT)
            .build()?;
        let token = ["VIGIL_VIEWER_TOKEN", "VIGIL_OPERATOR_TOKEN"]
            .iter()
            .find_map(|v| store_location::process_env(v));
        Ok(Self { client, token })
    }

    /// Segment `s` (another node's), whole or bytes `first..=last`; never more than it holds.
    pub fn read(
        &self,
        s: &catalog::SegmentRow,
        range: Option<(u64, u64)>,
    ) -> anyhow::Result<Vec<u8>> {
        use std::io::Read;
        let (Some(node), Some(id)) = (&s.origin_url, s.origin_id) else {
            anyhow::bail!("segment {} names no node to read it from", s.id);
        };
        let url = format!(
            "{}/api/videos/{}/media/{id}.mp4",
            node.trim_end_matches('/'),
            s.video
        );
        let mut request = self.client.get(&url);
        if let Some((first, last)) = range {
            request = request.header(reqwest::header::RANGE, format!("bytes={first}-{last}"));
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        let status = response.status();
        if !(status == reqwest::StatusCode::OK || status == reqwest::StatusCode::PARTIAL_CONTENT) {
            anyhow::bail!("{url}: the node answered {status}");
        }
        let limit = match range {
            Some((first, last)) => last.saturating_sub(first) + 1,
            None => s.bytes.max(0) as u64,
        };
        let mut body = Vec::new();
        response.take(limit + 1).read_to_end(&mut body)?;
        if body.len() as u64 > limit {
            anyhow::bail!("{url}: the node sent more than the {limit} bytes asked");
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_subject_names_the_directory_without_a_double_slash() {
        assert_eq!(
            super::subject(std::path::Path::new("/var/lib/vigil/archive")),
            "/archive/var/lib/vigil/archive"
        );
        assert_eq!(
            super::subject(std::path::Path::new("archive")),
            "/archive/archive"
        );
    }
}
