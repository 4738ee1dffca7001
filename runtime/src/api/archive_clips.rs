//! The archive's clips: why each exists (its explanation), its snapshot, its events' snapshots,
//! and the events that made the clips of a time range (the timeline's markers).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{PlaybackState, RangeQuery, error, playback_range, with_catalog};

pub(super) async fn explanation(
    State(s): State<PlaybackState>,
    Path((name, clip)): Path<(String, i64)>,
) -> Response {
    let (video, number) = (name.clone(), clip);
    match with_catalog(&s, move |c| c.explanation(&video, number)).await {
        Ok(Some(body)) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no explanation for clip {clip} of video '{name}'"),
        ),
        Err(r) => r,
    }
}

/// The snapshot of clip `clip` of video `name` (the frame it was decided on).
pub(super) async fn clip_snapshot(
    State(s): State<PlaybackState>,
    Path((name, clip)): Path<(String, i64)>,
) -> Response {
    if !is_plain_name(&name) {
        return error(StatusCode::NOT_FOUND, format!("no video '{name}'"));
    }
    let path = crate::archive::snapshot_file(&s.archive, &name, clip);
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "image/jpeg")], bytes).into_response(),
        Err(_) => error(
            StatusCode::NOT_FOUND,
            format!("no snapshot for clip {clip} of video '{name}'"),
        ),
    }
}

/// A video name from outside: one path component, never `..` or a separator.
fn is_plain_name(name: &str) -> bool {
    !(name.is_empty() || name.contains(['/', '\\']) || name == "." || name == "..")
}

/// The snapshot of event `n` (`{n}.jpg`, from 1, as the clip's explanation lists its events)
/// of clip `clip` of video `name`.
pub(super) async fn event_snapshot(
    State(s): State<PlaybackState>,
    Path((name, clip, file)): Path<(String, i64, String)>,
) -> Response {
    let n = file.strip_suffix(".jpg").unwrap_or(&file).parse::<u32>();
    let missing = || {
        error(
            StatusCode::NOT_FOUND,
            format!("no snapshot '{file}' of the events of clip {clip} of video '{name}'"),
        )
    };
    let Ok(n) = n else { return missing() };
    if !is_plain_name(&name) {
        return missing();
    }
    let path = crate::archive::snapshot_file(&s.archive, &name, clip)
        .with_file_name(format!("{clip:08}.event-{n}.jpg"));
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "image/jpeg")], bytes).into_response(),
        Err(_) => missing(),
    }
}

/// `GET /api/videos/{name}/events?startTime=&endTime=`: the events that opened and extended
/// the clips with media in the range (from their explanations, so they outlive the process),
/// oldest first: the clip, event type, node, media time, labels, role and snapshot URL.
pub(super) async fn video_events(
    State(s): State<PlaybackState>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let video = name.clone();
    let result = with_catalog(&s, move |c| {
        super::ensure_video(c, &video)?;
        let range = playback_range(q.start_time.as_deref(), q.end_time.as_deref())?;
        c.explanations_between(&video, range.start, range.end)
    })
    .await;
    let rows = match result {
        Ok(rows) => rows,
        Err(r) => return r,
    };
    let mut events = Vec::new();
    for (clip, body) in rows {
        let Ok(explanation) = serde_json::from_str::<Value>(&body) else {
            continue;
        };
        for (n, e) in explanation["events"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let snapshot = e["snapshot"]
                .as_str()
                .map(|_| format!("/api/videos/{name}/clips/{clip}/events/{}.jpg", n + 1));
            events.push(json!({
                "clip": clip,
                "eventType": e["eventType"],
                "node": e["node"],
                "time": e["mediaTime"],
                "role": e["role"],
                "labels": e.get("labels").cloned().unwrap_or_else(|| json!([])),
                "snapshot": snapshot,
            }));
        }
    }
    events.sort_by(|a, b| a["time"].as_str().cmp(&b["time"].as_str()));
    axum::Json(json!({"events": events})).into_response()
}
