//! What the extension benchmarks share: the 1080p clip, decoded frames, thread CPU time, and a
//! loopback HTTP server answering 204.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use vigil::media::decode::Decoder;
use vigil::media::mp4_reader::Mp4Video;
use vigil::media::time::MediaTime;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A 1080p30 H.264 clip of busy synthetic video (made once).
pub fn clip() -> PathBuf {
    let path = repo().join("target/bench-clips/1080p-3s.mp4");
    if !path.exists() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=s=1920x1080:r=30:d=3,noise=alls=8:allf=t")
            .args([
                "-c:v", "libx264", "-preset", "veryfast", "-b:v", "4M", "-g", "30",
            ])
            .args(["-pix_fmt", "yuv420p"])
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success());
    }
    path
}

/// The first `count` frames of [`clip`], decoded, and the decoder (its scalers serve them).
pub fn decoded_frames(count: usize) -> (Decoder, Vec<(MediaTime, vigil::media::av::Frame)>) {
    let video = Mp4Video::open(&clip()).expect("clip opens");
    let mut decoder: Option<Decoder> = None;
    let mut frames = Vec::new();
    for sample in video.samples(MediaTime::from_nanos(0)) {
        let sample = sample.expect("sample");
        let d = decoder.get_or_insert_with(|| Decoder::new(&sample.params).expect("decoder"));
        frames.extend(d.decode(&sample).expect("decodes"));
        if frames.len() >= count {
            break;
        }
    }
    frames.truncate(count);
    (decoder.expect("a decoder"), frames)
}

/// `frame` scaled to `layout`'s content as the hub scales it for `node` (YCbCr for a JPEG).
pub fn content_for(
    decoder: &mut Decoder,
    frame: &vigil::media::av::Frame,
    layout: &vigil::media::image::ImageLayout,
    node: &dyn vigil::nodes::frame_hub::ExtensionNode,
) -> vigil::media::image::Content {
    decoder
        .scale_content(
            frame,
            layout.content_width,
            layout.content_height,
            node.wants_yuv(),
        )
        .expect("scales")
}

/// CPU seconds of the calling thread (Linux schedstat, nanoseconds).
pub fn thread_cpu() -> f64 {
    schedstat_seconds(PathBuf::from("/proc/thread-self/schedstat"))
}

/// CPU seconds of this process's threads whose name starts with `prefix`.
pub fn named_threads_cpu(prefix: &str) -> f64 {
    std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end().starts_with(prefix))
        })
        .map(|t| schedstat_seconds(t.path().join("schedstat")))
        .sum()
}

fn schedstat_seconds(path: PathBuf) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .unwrap_or(0.0)
}

/// A loopback HTTP server, on a thread of this process named `http-server`, that answers
/// every POST with 204; returns its URL.
pub fn start_http_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::Builder::new()
        .name("http-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                listener.set_nonblocking(true).expect("nonblocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().route(
                    "/score",
                    axum::routing::post(|_: axum::body::Bytes| async {
                        axum::http::StatusCode::NO_CONTENT
                    }),
                );
                axum::serve(listener, app).await.expect("serves");
            });
        })
        .expect("thread");
    format!("http://{addr}/score")
}
