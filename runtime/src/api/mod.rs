//! The HTTP API: trigger inputs, health and metrics (`http`), playback of the video archive and
//! the web page (`playback`).

pub mod http;
pub mod playback;

use std::path::Path;

use anyhow::{Context, Result};

/// `vigil serve`: the playback API and web page over the archive at `dir`, until SIGINT/SIGTERM.
pub fn serve_archive(dir: &Path, addr: &str, store: Option<&str>) -> Result<()> {
    if !dir.join("catalog.sqlite3").exists() {
        anyhow::bail!("{} is not an archive (no catalog.sqlite3)", dir.display());
    }
    let bus = crate::bus::event_log::EventBus::in_memory("archive");
    crate::archive::open_archive(dir, &bus, crate::nodes::rtsp_source::wall_now())?;
    // The store's blocking HTTP client is made, and dropped last, outside the runtime.
    let store = crate::archive::open_store(store)?;
    let state = playback::PlaybackState::new(
        Some(dir.to_path_buf()),
        bus,
        crate::archive::remote_reader(store.clone()),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result: Result<()> = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(
            "serving {} on http://{}",
            dir.display(),
            listener.local_addr()?
        );
        let app =
            playback::routes(state).route("/healthz", axum::routing::get(|| async { "ok\n" }));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await?;
        Ok::<(), anyhow::Error>(())
    });
    drop(runtime);
    drop(store);
    result
}
