//! HTTP listener: `POST /pipelines/<pipeline>/inputs/<hubInputName>` delivers a trigger, exactly
//! like an MQTT message on `vigil/<pipeline>/inputs/<hubInputName>`; `GET /healthz` answers ok;
//! `GET /metrics` serves the pipeline's counters as Prometheus text.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::sync::{mpsc, watch};

use crate::bus::metrics::Metrics;
use crate::bus::mqtt::InputMessage;

#[derive(Clone)]
struct AppState {
    pipeline: String,
    inputs: Vec<String>,
    tx: mpsc::Sender<InputMessage>,
    metrics: Metrics,
}

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    pipeline: String,
    inputs: Vec<String>,
    tx: mpsc::Sender<InputMessage>,
    metrics: Metrics,
    extra: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let state = AppState {
        pipeline,
        inputs,
        tx,
        metrics,
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    state.metrics.render(),
                )
            }),
        )
        .route("/pipelines/{pipeline}/inputs/{input}", post(post_input))
        .with_state(state)
        .merge(extra);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await
}

async fn post_input(
    State(state): State<AppState>,
    Path((pipeline, input)): Path<(String, String)>,
    body: Bytes,
) -> (StatusCode, String) {
    if pipeline != state.pipeline {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "no pipeline '{pipeline}' (this one is '{}')\n",
                state.pipeline
            ),
        );
    }
    if !state.inputs.contains(&input) {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "pipeline '{pipeline}' has no input '{input}' (inputs: {})\n",
                state.inputs.join(", ")
            ),
        );
    }
    // Validate here so the caller learns about a malformed body at once.
    if let Err(e) = crate::bus::trigger::parse_trigger(&body) {
        let _ = state
            .tx
            .send(InputMessage {
                input,
                payload: body.to_vec(),
            })
            .await;
        return (StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    match state
        .tx
        .send(InputMessage {
            input,
            payload: body.to_vec(),
        })
        .await
    {
        Ok(()) => (StatusCode::ACCEPTED, "accepted\n".into()),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "pipeline stopping\n".into(),
        ),
    }
}
