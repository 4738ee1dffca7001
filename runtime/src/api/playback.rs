//! Playback of the video archive and the web page, on the pipeline's HTTP listener:
//!
//! * `GET /api/videos`: the videos, each with its recorded ranges and whether it is recording;
//! * `GET /api/videos/{name}/availableMedia?precision=&startTime=&endTime=`: AVA's query (§10.4);
//! * `GET /api/videos/{name}/manifest.m3u8?startTime=&endTime=`: HLS (live while recording);
//! * `GET /api/videos/{name}/media/{segment}.mp4`: a segment file, with HTTP byte ranges;
//! * `GET /api/videos/{name}/download.mp4?startTime=&endTime=`: one MP4 of the range;
//! * `GET /api/videos/{name}/events?startTime=&endTime=`: the events that made its clips;
//! * `GET /api/videos/{name}/clips/{clip}/explanation`, `.../snapshot.jpg`,
//!   `.../events/{n}.jpg`: why a clip exists, its snapshot, its events' snapshots;
//! * `GET /api/events?limit=`: the pipeline's recent events;
//! * `GET /`: the web page (assets embedded in the binary).
//!
//! Ranges: both bounds ISO 8601 UTC, at most 24 h apart; none: the most recent 4 h; a start
//! alone: 24 h from it (AVA's manifest rules).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::archive::available::{
    Precision, TimeRange, available_media, query_range, recorded_ranges,
};
use crate::archive::catalog::{Catalog, SegmentRow};
use crate::archive::export::{SegmentBytes, export_mp4, plan_export};
use crate::archive::hls::playlist;
use crate::bus::event_log::EventBus;
use crate::media::time::MediaDuration;

#[path = "archive_clips.rs"]
mod clips;

/// Reads a segment that is not in the local cache (from the object store): the whole file, or
/// bytes `first..=last` of it.
pub type RemoteReader =
    Arc<dyn Fn(&SegmentRow, Option<(u64, u64)>) -> anyhow::Result<Vec<u8>> + Send + Sync>;

/// What the playback routes need.
#[derive(Clone)]
pub struct PlaybackState {
    catalog: Option<Arc<Mutex<Catalog>>>,
    archive: PathBuf,
    bus: EventBus,
    remote: Option<RemoteReader>,
}

impl PlaybackState {
    /// Routes over the archive at `archive` (none: the pipeline has no VideoSink), events from
    /// `bus`, evicted segments read through `remote`.
    pub fn new(
        archive: Option<PathBuf>,
        bus: EventBus,
        remote: Option<RemoteReader>,
    ) -> anyhow::Result<Self> {
        let catalog = match &archive {
            Some(dir) => Some(Arc::new(Mutex::new(Catalog::open(dir)?))),
            None => None,
        };
        Ok(Self {
            catalog,
            archive: archive.unwrap_or_default(),
            bus,
            remote,
        })
    }
}

/// The routes.
pub fn routes(state: PlaybackState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/assets/hls.min.js", get(hls_js))
        .route("/api/events", get(events))
        .route("/api/videos", get(videos))
        .route("/api/videos/{name}/availableMedia", get(available))
        .route("/api/videos/{name}/manifest.m3u8", get(manifest))
        .route("/api/videos/{name}/media/{segment}", get(media))
        .route("/api/videos/{name}/download.mp4", get(download))
        .route(
            "/api/videos/{name}/clips/{clip}/explanation",
            get(clips::explanation),
        )
        .route(
            "/api/videos/{name}/clips/{clip}/snapshot.jpg",
            get(clips::clip_snapshot),
        )
        .route(
            "/api/videos/{name}/clips/{clip}/events/{file}",
            get(clips::event_snapshot),
        )
        .route("/api/videos/{name}/events", get(clips::video_events))
        .with_state(state)
}

async fn page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("web/index.html"),
    )
}

async fn hls_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_bytes!("web/hls.min.js").as_slice(),
    )
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({"error": message.to_string()}))).into_response()
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn events(State(s): State<PlaybackState>, Query(q): Query<Limit>) -> Response {
    let events: Vec<Value> = s
        .bus
        .recent(q.limit.unwrap_or(200))
        .iter()
        .map(|e| e.to_json())
        .collect();
    axum::Json(json!({"events": events})).into_response()
}

/// Runs `f` on the catalog in a blocking thread.
async fn with_catalog<T: Send + 'static>(
    s: &PlaybackState,
    f: impl FnOnce(&Catalog) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let Some(catalog) = s.catalog.clone() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "this pipeline has no VideoSink",
        ));
    };
    let joined = tokio::task::spawn_blocking(move || {
        // A panic in one request must not take the catalog from the others.
        let c = catalog.lock().unwrap_or_else(|e| e.into_inner());
        f(&c)
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::BAD_REQUEST, format!("{e:#}"))),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

fn ranges_json(ranges: &[TimeRange]) -> Value {
    Value::Array(
        ranges
            .iter()
            .map(|r| json!({"start": r.start.to_string(), "end": r.end.to_string()}))
            .collect(),
    )
}

async fn videos(State(s): State<PlaybackState>) -> Response {
    let result = with_catalog(&s, |c| {
        let all = TimeRange::ALL;
        let mut out = Vec::new();
        for v in c.videos()? {
            let segments = c.segments_between(&v.name, all.start, all.end)?;
            let recording = segments.iter().any(|s| s.recording);
            out.push(json!({
                "name": v.name, "title": v.title, "description": v.description,
                "createdAt": v.created.to_string(), "recording": recording,
                "segmentLength": format!("PT{}S", v.segment_length_ns / 1_000_000_000),
                "timeRanges": ranges_json(&recorded_ranges(c, &v.name, &segments, all)?),
            }));
        }
        Ok(json!({"videos": out}))
    })
    .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RangeQuery {
    precision: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
}

async fn available(
    State(s): State<PlaybackState>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let result = with_catalog(&s, move |c| {
        let precision = Precision::parse(q.precision.as_deref().unwrap_or("full"))?;
        let range = query_range(precision, q.start_time.as_deref(), q.end_time.as_deref())?;
        ensure_video(c, &name)?;
        let ranges = available_media(c, &name, precision, range)?;
        Ok(json!({"timeRanges": ranges_json(&ranges)}))
    })
    .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

fn ensure_video(c: &Catalog, name: &str) -> anyhow::Result<()> {
    if c.videos()?.iter().any(|v| v.name == name) {
        Ok(())
    } else {
        anyhow::bail!("no video '{name}'")
    }
}

/// A playback range: AVA's manifest rules, at most 24 h.
fn playback_range(start: Option<&str>, end: Option<&str>) -> anyhow::Result<TimeRange> {
    let parse = |t: &str| crate::bus::trigger::parse_utc(t).map_err(anyhow::Error::msg);
    let day = MediaDuration::from_secs(86_400);
    let range = match (start, end) {
        (Some(s), Some(e)) => TimeRange {
            start: parse(s)?,
            end: parse(e)?,
        },
        (Some(s), None) => {
            let start = parse(s)?;
            TimeRange {
                start,
                end: start + day,
            }
        }
        (None, None) => {
            let now = crate::nodes::rtsp_source::wall_now();
            TimeRange {
                start: now - MediaDuration::from_secs(4 * 3600),
                end: now + day,
            }
        }
        (None, Some(_)) => anyhow::bail!("endTime needs a startTime"),
    };
    if range.end <= range.start {
        anyhow::bail!("startTime must be before endTime");
    }
    if start.is_some() && end.is_some() && range.end - range.start > day {
        anyhow::bail!("a playback range spans at most 24 hours");
    }
    Ok(range)
}

async fn manifest(
    State(s): State<PlaybackState>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let video = name.clone();
    let result = with_catalog(&s, move |c| {
        ensure_video(c, &video)?;
        let range = playback_range(q.start_time.as_deref(), q.end_time.as_deref())?;
        playlist(c, &video, range, |id| format!("media/{id}.mp4"))
    })
    .await;
    match result {
        Ok(p) if p.fragments == 0 && !p.live => {
            error(StatusCode::NOT_FOUND, "nothing recorded in that range")
        }
        Ok(p) => (
            [
                (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            p.text,
        )
            .into_response(),
        Err(r) => r,
    }
}

/// What a request's `Range` asks of a body of `len` bytes.
#[derive(Debug, PartialEq)]
enum Wanted {
    /// No (usable) `Range`: the whole body.
    Whole,
    /// `bytes=a-b`: a to b inclusive, clamped to the body.
    Part(u64, u64),
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// Reads `Range: bytes=a-b` (one range; a malformed one is ignored, as RFC 9110 allows).
fn byte_range(headers: &HeaderMap, len: u64) -> Wanted {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
    else {
        return Wanted::Whole;
    };
    let Some((a, b)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let last = match len.checked_sub(1) {
        Some(last) => last,
        None => return Wanted::Unsatisfiable,
    };
    let parsed = match (a.trim(), b.trim()) {
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Wanted::Unsatisfiable,
            Ok(n) => Some((len.saturating_sub(n), last)),
            Err(_) => None,
        },
        (a, "") => a.parse().ok().map(|a| (a, last)),
        (a, b) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => Some((a, b.min(last))),
            _ => None,
        },
    };
    match parsed {
        None => Wanted::Whole,
        Some((start, _)) if start > last => Wanted::Unsatisfiable,
        Some((start, end)) => Wanted::Part(start, end),
    }
}

struct ArchiveBytes {
    dir: PathBuf,
    remote: Option<RemoteReader>,
}

impl SegmentBytes for ArchiveBytes {
    fn read(&self, s: &SegmentRow) -> anyhow::Result<Vec<u8>> {
        self.read_part(s, None)
    }
}

impl ArchiveBytes {
    /// The whole file of `s`, or bytes `first..=last` of it: from the cache, else (or when the
    /// file was evicted since the catalog was read) from the store.
    fn read_part(&self, s: &SegmentRow, range: Option<(u64, u64)>) -> anyhow::Result<Vec<u8>> {
        if s.local {
            let path = self.dir.join(&s.path);
            match read_file_part(&path, range) {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.remote.is_some() => {}
                Err(e) => return Err(e.into()),
            }
        }
        match &self.remote {
            Some(remote) => remote(s, range),
            None => anyhow::bail!("segment {} is not in the local cache", s.id),
        }
    }
}

/// `path`'s bytes `first..=last` (all of them without a range).
fn read_file_part(path: &std::path::Path, range: Option<(u64, u64)>) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let Some((first, last)) = range else {
        return std::fs::read(path);
    };
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(first))?;
    let mut bytes = Vec::new();
    file.take(last.saturating_sub(first).saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Why clip `clip` of video `name` exists (the explanation its gate gave), as JSON.
async fn media(
    State(s): State<PlaybackState>,
    Path((name, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    // `<id>.mp4` (players such as FFmpeg want a media extension); a bare id works too.
    let Ok(segment) = file.trim_end_matches(".mp4").parse::<i64>() else {
        return error(StatusCode::NOT_FOUND, format!("no segment '{file}'"));
    };
    let reader = ArchiveBytes {
        dir: s.archive.clone(),
        remote: s.remote.clone(),
    };
    // The catalog only says where the bytes are; they are read without holding it, and only
    // the range asked for (an HLS player asks for one fragment at a time).
    let row = with_catalog(&s, move |c| {
        c.segment(segment)?
            .filter(|x| x.video == name)
            .ok_or_else(|| anyhow::anyhow!("no segment {segment} in video '{name}'"))
    })
    .await;
    let seg = match row {
        Ok(seg) => seg,
        Err(r) => return r,
    };
    // Only what the catalog recorded (a file being written may have more).
    let len = seg.bytes.max(0) as u64;
    let wanted = byte_range(&headers, len);
    let span = match wanted {
        Wanted::Part(a, b) => (a, b),
        Wanted::Whole if len > 0 => (0, len - 1),
        Wanted::Whole => return ok_media(Vec::new().into_response()),
        Wanted::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return ok_media(r);
        }
    };
    let read = tokio::task::spawn_blocking(move || reader.read_part(&seg, Some(span))).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        // The cache lost it and the store does not answer.
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let response = match wanted {
        Wanted::Part(a, b) => {
            let mut r = bytes.into_response();
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        _ => bytes.into_response(),
    };
    ok_media(response)
}

/// `response` as MP4 media that takes byte ranges.
fn ok_media(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

async fn download(
    State(s): State<PlaybackState>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let reader = ArchiveBytes {
        dir: s.archive.clone(),
        remote: s.remote.clone(),
    };
    let video = name.clone();
    // What to read is taken from the catalog; the segments are read (from the cache or the
    // store) and joined without holding it.
    let planned = with_catalog(&s, move |c| {
        ensure_video(c, &video)?;
        let range = playback_range(q.start_time.as_deref(), q.end_time.as_deref())?;
        Ok((plan_export(c, &video, range)?, range))
    })
    .await;
    let result = match planned {
        Ok((plan, range)) => {
            match tokio::task::spawn_blocking(move || export_mp4(&plan, range, &reader)).await {
                Ok(Ok(bytes)) => Ok((bytes, range)),
                Ok(Err(e)) => Err(error(StatusCode::BAD_REQUEST, format!("{e:#}"))),
                Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
            }
        }
        Err(r) => Err(r),
    };
    match result {
        Ok((bytes, range)) => {
            let file = format!(
                "attachment; filename=\"{name}-{}.mp4\"",
                range.start.to_string().replace([':', '.'], "")
            );
            let mut r = bytes.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
            if let Ok(v) = HeaderValue::from_str(&file) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(r) => r,
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;

    fn wanted(range: &str, len: u64) -> Wanted {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(range).expect("value"));
        byte_range(&h, len)
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(wanted("bytes=0-9", 100), Wanted::Part(0, 9));
        assert_eq!(wanted("bytes=90-", 100), Wanted::Part(90, 99));
        assert_eq!(wanted("bytes=-10", 100), Wanted::Part(90, 99));
        assert_eq!(wanted("bytes=50-1000", 100), Wanted::Part(50, 99));
        assert_eq!(wanted("bytes=100-", 100), Wanted::Unsatisfiable);
        assert_eq!(wanted("bytes=200-300", 100), Wanted::Unsatisfiable);
        assert_eq!(wanted("bytes=-0", 100), Wanted::Unsatisfiable);
        assert_eq!(wanted("bytes=9-3", 100), Wanted::Whole);
        assert_eq!(wanted("items=0-1", 100), Wanted::Whole);
        assert_eq!(
            wanted("bytes=18446744073709551615-", 100),
            Wanted::Unsatisfiable
        );
    }
}
