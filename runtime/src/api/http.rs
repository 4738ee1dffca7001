//! The HTTP listener of the service: `POST /pipelines/<pipeline>/inputs/<hubInputName>` delivers
//! a trigger exactly like an MQTT message on `vigil/<pipeline>/inputs/<hubInputName>`;
//! `POST /api/methods/<methodName>` runs one of AVA's module methods (body = its payload, answer
//! `{"status", "payload"}`, the HTTP status being AVA's, 204 sent as 200 so the answer has a
//! body); `GET /api/pipelines` lists the pipelines for the web page; `GET /healthz` answers ok;
//! `GET /metrics` serves the metrics; `/api/session`, `/api/login`, `/api/logout` sign the page
//! in. Every request passes [`super::auth::guard`] first.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::bus::mqtt::InputMessage;
use crate::service::Service;
use crate::service::inputs::DeliveryError;

/// Recent events per pipeline on `GET /api/pipelines`.
const OVERVIEW_EVENTS: usize = 20;

/// Serves the API on `listener` until `shutdown`, every request checked against `policy`
/// ([`super::auth`]).
pub async fn serve<L>(
    listener: L,
    service: Arc<Service>,
    extra: Router,
    policy: Arc<super::auth::AccessPolicy>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    super::auth::ClientAddr:
        for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let sign_in = Router::new()
        .route("/api/session", get(super::auth::session))
        .route("/api/login", post(super::auth::login))
        .route("/api/logout", post(super::auth::logout))
        .with_state(policy.clone());
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(|State(service): State<Arc<Service>>| async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    service.metrics_text(),
                )
            }),
        )
        .route("/pipelines/{pipeline}/inputs/{input}", post(post_input))
        .route("/api/methods/{method}", post(post_method))
        .route(
            "/api/pipelines",
            get(|State(service): State<Arc<Service>>| async move {
                axum::Json(service.overview(OVERVIEW_EVENTS))
            }),
        )
        .route(
            "/api/pipelines/{pipeline}/snapshot.jpg",
            get(latest_snapshot),
        )
        .route("/api/pipelines/{pipeline}/live.m3u8", get(live_playlist))
        .route("/api/pipelines/{pipeline}/live/{file}", get(live_file))
        .route("/api/snapshots/{file}", get(inference_snapshot))
        .route("/api/clips", get(clips))
        .route("/api/clips/{id}/snapshot.jpg", get(clip_snapshot))
        .route("/api/clips/{id}/media.mp4", get(clip_media))
        .with_state(service)
        .merge(extra)
        .merge(sign_in)
        // Bodies are read up to the larger input limit, then checked per route (413 with the
        // limit named); beyond it axum answers 413 without reading on.
        .layer(axum::extract::DefaultBodyLimit::max(body_limit()))
        .layer(axum::middleware::from_fn_with_state(
            policy,
            super::auth::guard,
        ));
    // Each request carries its client's address, for the throttle of wrong tokens.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<super::auth::ClientAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    })
    .await
}

async fn post_method(
    State(service): State<Arc<Service>>,
    Path(method): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> impl IntoResponse {
    let limit = crate::limits::get().method_bytes;
    let too_large = |size: String| {
        let answer = crate::service::methods::Response::payload_too_large(&size);
        (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(answer.to_json()))
    };
    let body = match body {
        Ok(body) if body.len() > limit => return too_large(format!("{} bytes", body.len())),
        Ok(body) => body,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large(format!("more than {} bytes", body_limit() - 1));
        }
        Err(r) => {
            let answer = crate::service::methods::Response::error(
                r.status().as_u16(),
                "InvalidRequest",
                &r.body_text(),
                Vec::new(),
            );
            return (r.status(), axum::Json(answer.to_json()));
        }
    };
    let answer = service.call(&method, &body).await;
    let status = match answer.status {
        204 => StatusCode::OK,
        s => StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    };
    (status, axum::Json(answer.to_json()))
}

async fn post_input(
    State(service): State<Arc<Service>>,
    Path((pipeline, input)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> (StatusCode, String) {
    let inputs = &service.context().inputs;
    let limit = crate::bus::trigger::max_trigger_bytes();
    let size = match &body {
        Ok(body) if body.len() > limit => Some(body.len()),
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Some(body_limit()),
        _ => None,
    };
    if let Some(size) = size {
        crate::bus::trigger::report_oversized(
            &service.context().bus,
            &pipeline,
            &input,
            size,
            if body.is_err() {
                "request body, cut off at the listener's limit,"
            } else {
                "request body"
            },
        );
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a trigger body may have at most {} KiB (--max-trigger-kib); this one has {}{size} bytes\n",
                limit / 1024,
                if body.is_err() { "more than " } else { "" },
            ),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(r) => return (r.status(), format!("{}\n", r.body_text())),
    };
    let input_name = input.clone();
    let message = InputMessage {
        input,
        payload: body.to_vec(),
    };
    // Validate here so the caller learns about a malformed body at once; the pipeline still
    // gets it, to report it as it reports a malformed MQTT message.
    let malformed = crate::bus::trigger::parse_trigger(&body).err();
    let delivered = inputs.deliver(&pipeline, message.clone());
    if let Err(DeliveryError::NoPipeline(_)) = &delivered {
        let active = tokio::task::block_in_place(|| service.is_desired_active(&pipeline));
        // Not running here: in a cluster, for the member that records it (or all, to hold);
        // alone, held when it is Active (starting, or starting again after a fault).
        let answer = match service.cluster() {
            Some(cluster) => forward(cluster, &pipeline, &input_name, body.to_vec(), active).await,
            None if active && service.hold_trigger(&pipeline, message).await => (
                StatusCode::ACCEPTED,
                format!(
                    "held: '{pipeline}' is Active but not running now (starting, or starting again after a fault); delivered when it starts, within {} s\n",
                    crate::service::held_triggers::HOLD_FOR.as_secs()
                ),
            ),
            None => (
                StatusCode::NOT_FOUND,
                format!("no running pipeline '{pipeline}'\n"),
            ),
        };
        return match answer {
            // Forwarded as a local one is delivered: the caller learns it is malformed.
            (StatusCode::ACCEPTED, _) if let Some(why) = malformed => {
                (StatusCode::BAD_REQUEST, format!("{why}\n"))
            }
            answer => answer,
        };
    }
    match (delivered, malformed) {
        (Err(e @ (DeliveryError::NoPipeline(_) | DeliveryError::NoInput { .. })), _) => {
            (StatusCode::NOT_FOUND, format!("{e}\n"))
        }
        (Err(e @ DeliveryError::Busy(_)), _) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        (Ok(()), Some(why)) => (StatusCode::BAD_REQUEST, format!("{why}\n")),
        (Ok(()), None) => (StatusCode::ACCEPTED, "accepted\n".into()),
    }
}

/// In a cluster, a trigger for a pipeline another member records goes to it on NATS (202);
/// one for an `active` pipeline that no member records now goes to every member to hold
/// (202); 404 when it is not Active, 503 when the cluster does not answer.
async fn forward(
    cluster: &crate::cluster::Cluster,
    pipeline: &str,
    input: &str,
    payload: Vec<u8>,
    active: bool,
) -> (StatusCode, String) {
    use crate::cluster::subjects::{Forwarded, forward_trigger};
    match forward_trigger(cluster, pipeline, input, payload, active).await {
        Forwarded::To(node) => (
            StatusCode::ACCEPTED,
            format!("forwarded to member '{node}', which records '{pipeline}'\n"),
        ),
        Forwarded::Held => (
            StatusCode::ACCEPTED,
            format!(
                "held: no member records '{pipeline}' now (it is starting or moving); the member that starts it delivers it, within {} s\n",
                crate::service::held_triggers::HOLD_FOR.as_secs()
            ),
        ),
        Forwarded::NobodyRecords => (
            StatusCode::NOT_FOUND,
            format!("no member records '{pipeline}': it is not Active\n"),
        ),
        Forwarded::BadName => (
            StatusCode::NOT_FOUND,
            format!("no pipeline '{pipeline}' with an input '{input}' can exist\n"),
        ),
        Forwarded::Unreachable(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the cluster did not say which member records '{pipeline}': {why}\n"),
        ),
    }
}

/// The most of a request body read: the larger of the trigger and method limits, plus one so
/// that an over-limit body is seen and refused with the limit named.
fn body_limit() -> usize {
    let limits = crate::limits::get();
    limits.trigger_bytes.max(limits.method_bytes) + 1
}

/// The pipeline's latest snapshot (the frame its newest clip was decided on), as made in this
/// process; 404 before its first. `X-Frame-Time` gives the frame's media time (UTC).
async fn latest_snapshot(
    axum::extract::Path(pipeline): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match crate::media::snapshot::latest_of(&pipeline) {
        Some((frame, jpeg)) => (
            [
                (axum::http::header::CONTENT_TYPE, "image/jpeg".to_string()),
                (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
                (
                    axum::http::HeaderName::from_static("x-frame-time"),
                    frame.to_string(),
                ),
            ],
            jpeg.as_ref().clone(),
        )
            .into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": {"code": "NotFound",
                "message": format!("no snapshot of pipeline '{pipeline}' yet")}})),
        )
            .into_response(),
    }
}

/// The snapshot of an inference event (`<messageId>.jpg`) while this process keeps it (see
/// [`crate::media::inference_snapshot`]); 404 when it has none or no longer keeps it.
async fn inference_snapshot(
    axum::extract::Path(file): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let id = file.strip_suffix(".jpg").unwrap_or(&file);
    match crate::media::inference_snapshot::get(id) {
        Some(jpeg) => (
            [
                (axum::http::header::CONTENT_TYPE, "image/jpeg"),
                (axum::http::header::CACHE_CONTROL, "max-age=3600, immutable"),
            ],
            jpeg.as_ref().clone(),
        )
            .into_response(),
        None => no_clip(format!("no snapshot of event '{id}' is kept")),
    }
}

/// `GET /api/clips?pipeline=&label=&limit=`: the review list (see [`crate::service::review`]).
async fn clips(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::Json<serde_json::Value> {
    let pick = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let limit = pick("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .min(crate::service::review::KEEP);
    axum::Json(crate::service::review::index().list(pick("pipeline"), pick("label"), limit))
}

fn no_clip(what: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": {"code": "NotFound", "message": what}})),
    )
        .into_response()
}

/// The snapshot of clip `id` of the review list.
async fn clip_snapshot(
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(file) = crate::service::review::index()
        .clip(id)
        .and_then(|c| c.file().cloned())
    else {
        return no_clip(format!("no clip {id} recorded to a file"));
    };
    match tokio::fs::read(crate::media::snapshot::snapshot_path(&file)).await {
        Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "image/jpeg")], bytes).into_response(),
        Err(_) => no_clip(format!("clip {id} has no snapshot")),
    }
}

/// The recording of clip `id` of the review list (`?download=1`: as an attachment).
async fn clip_media(
    axum::extract::Path(id): axum::extract::Path<u64>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(file) = crate::service::review::index()
        .clip(id)
        .and_then(|c| c.file().cloned())
    else {
        return no_clip(format!("no clip {id} recorded to a file"));
    };
    let bytes = match tokio::fs::read(&file).await {
        Ok(b) => b,
        Err(_) => return no_clip(format!("clip {id}'s file is gone")),
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().replace(['"', '\\'], "_"))
        .unwrap_or_default();
    let disposition = if q.get("download").is_some_and(|v| v == "1") {
        format!("attachment; filename=\"{name}\"")
    } else {
        "inline".to_string()
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, "video/mp4".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}

/// A pipeline's live view as HLS (see [`crate::media::live_view`]): asking for the playlist
/// keeps the stream made; the first answer waits up to 5 s for the first fragment (the next key
/// frame). 404 for a pipeline that never ran here; 503 when no fragment came in time.
async fn live_playlist(
    axum::extract::Path(pipeline): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(view) = crate::media::live_view::existing(&pipeline) else {
        return no_clip(format!("pipeline '{pipeline}' is not running here"));
    };
    view.want();
    let base = format!("/api/pipelines/{pipeline}/live");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(text) = view.playlist(&base) {
            return (
                [
                    (
                        axum::http::header::CONTENT_TYPE,
                        "application/vnd.apple.mpegurl",
                    ),
                    (axum::http::header::CACHE_CONTROL, "no-store"),
                ],
                text,
            )
                .into_response();
        }
        if tokio::time::Instant::now() >= deadline {
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                axum::Json(serde_json::json!({"error": {"code": "NotReady",
                    "message": format!("no live fragment of '{pipeline}' yet (is its camera sending?)")}})),
            )
                .into_response();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The live view's init segment (`init.mp4`) or a fragment (`<seq>.m4s`).
async fn live_file(
    axum::extract::Path((pipeline, file)): axum::extract::Path<(String, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(view) = crate::media::live_view::existing(&pipeline) else {
        return no_clip(format!("pipeline '{pipeline}' is not running here"));
    };
    let bytes = if file == "init.mp4" {
        view.init()
    } else {
        file.strip_suffix(".m4s")
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|seq| view.fragment(seq))
    };
    match bytes {
        Some(b) => (
            [
                (axum::http::header::CONTENT_TYPE, "video/mp4"),
                (axum::http::header::CACHE_CONTROL, "no-store"),
            ],
            b.as_ref().clone(),
        )
            .into_response(),
        None => no_clip(format!("no live '{file}' of '{pipeline}' (any more)")),
    }
}
