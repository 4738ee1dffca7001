//! `cargo bench --bench grpc_extension`: what a GrpcExtension costs Vigil per sampled frame once
//! the frame is decoded (decoding is shared with every other node): scale 1080p into 416×416
//! (padded), raw rgb24, sent through shared memory and embedded in the message, against the
//! HttpExtension's JPEG (quality 90) POST, all in one run. The server is the gRPC stand-in
//! (scripts/peers/grpc-infer-server.py, another process: its CPU is not counted); Vigil's CPU is
//! the calling thread's plus the node's session thread's. Also reports the time from a frame
//! handed to the node to its answer (the stand-in's red-box detector included).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use vigil::bus::event_log::EventBus;
use vigil::media::decode::Decoder;
use vigil::media::time::MediaTime;
use vigil::nodes::grpc_extension::GrpcExtensionNode;
use vigil::nodes::http_extension::HttpExtensionNode;
use vigil::topology::model::{
    DataTransfer, Endpoint, GrpcExtensionConfig, HttpExtensionConfig, ImageFormat, ImageProperties,
    ImageScale, SamplingOptions, ScaleMode,
};

mod common;

use common::{named_threads_cpu, repo, start_http_server, thread_cpu};

const FRAMES: usize = 60;
const ROUNDS: usize = 5;

/// The gRPC stand-in, started; its URL.
fn start_grpc_server() -> (std::process::Child, String) {
    let mut child = Command::new("/usr/bin/python3")
        .arg(repo().join("scripts/peers/grpc-infer-server.py"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("grpc-infer-server.py starts (scripts/setup-media.sh installs python3-grpcio)");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    out.read_line(&mut line).expect("ready line");
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    let port = line
        .split_whitespace()
        .nth(1)
        .expect("ready PORT")
        .to_string();
    (child, format!("tcp://127.0.0.1:{port}"))
}

fn image() -> ImageProperties {
    image_as("rgb24")
}

fn image_as(pixel_format: &str) -> ImageProperties {
    ImageProperties {
        scale: Some(ImageScale {
            mode: ScaleMode::Pad,
            width: Some(416),
            height: Some(416),
        }),
        format: ImageFormat::Raw {
            pixel_format: pixel_format.into(),
        },
    }
}

fn sampling() -> SamplingOptions {
    SamplingOptions {
        skip_samples_without_annotation: false,
        maximum_samples_per_second: None,
    }
}

/// What one path cost per frame.
struct Cost {
    cpu_ms: f64,
    session_ms: f64,
    wall_ms: f64,
}

/// Runs every frame ROUNDS times through `wants` and `on_image`, as the frame hub does.
fn run(
    frames: &[(MediaTime, vigil::media::av::Frame)],
    decoder: &mut Decoder,
    node: &mut dyn vigil::nodes::frame_hub::ExtensionNode,
    session_thread: Option<&str>,
) -> Cost {
    let session_cpu = || session_thread.map_or(0.0, named_threads_cpu);
    let (start_cpu, start_session) = (thread_cpu(), session_cpu());
    let start = Instant::now();
    for round in 0..ROUNDS {
        for (i, (_, frame)) in frames.iter().enumerate() {
            let pts = MediaTime::from_nanos(((round * frames.len() + i) as i64 + 1) * 33_333_333);
            let layout = node
                .wants(pts, false, frame.width(), frame.height())
                .expect("every frame is due");
            let content = common::content_for(decoder, frame, &layout, node);
            node.on_image(pts, &content, layout, &[]);
        }
    }
    let n = (ROUNDS * frames.len()) as f64;
    let session = session_cpu() - start_session;
    Cost {
        cpu_ms: (thread_cpu() - start_cpu + session) / n * 1e3,
        session_ms: session / n * 1e3,
        wall_ms: start.elapsed().as_secs_f64() / n * 1e3,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("grpc_extension: run with `cargo bench --bench grpc_extension`");
        return;
    }
    let (mut decoder, frames) = common::decoded_frames(FRAMES);
    let (mut server, url) = start_grpc_server();
    let bus = EventBus::in_memory("bench");
    let grpc_as = |transfer: DataTransfer, pixel_format: &str| GrpcExtensionConfig {
        endpoint: Endpoint {
            url: url.clone(),
            credentials: None,
            tls: None,
        },
        image: image_as(pixel_format),
        sampling: sampling(),
        data_transfer: transfer,
        extension_configuration: None,
    };
    let grpc = |transfer: DataTransfer| grpc_as(transfer, "rgb24");
    let mut shm = GrpcExtensionNode::inline(
        &grpc(DataTransfer::SharedMemory { bytes: 16 << 20 }),
        "/bench/shm".into(),
        bus.clone(),
    )
    .expect("node");
    let mut bgr = GrpcExtensionNode::inline(
        &grpc_as(DataTransfer::SharedMemory { bytes: 16 << 20 }, "bgr24"),
        "/bench/bgr".into(),
        bus.clone(),
    )
    .expect("node");
    let mut embedded = GrpcExtensionNode::inline(
        &grpc(DataTransfer::Embedded),
        "/bench/emb".into(),
        bus.clone(),
    )
    .expect("node");
    let mut http = HttpExtensionNode::inline(
        &HttpExtensionConfig {
            endpoint: Endpoint {
                url: start_http_server(),
                credentials: None,
                tls: None,
            },
            image: ImageProperties {
                format: ImageFormat::Jpeg { quality: 90 },
                ..image()
            },
            sampling: sampling(),
        },
        "/bench/http".into(),
        bus.clone(),
    )
    .expect("node");
    // What scaling alone costs (every path scales the same way).
    let scale_start = thread_cpu();
    for (_, frame) in frames.iter().cycle().take(frames.len() * ROUNDS) {
        let rgb = decoder.scale_rgb(frame, 416, 234).expect("scales");
        std::hint::black_box(rgb.len());
    }
    let scale_ms = (thread_cpu() - scale_start) / (frames.len() * ROUNDS) as f64 * 1e3;
    // Warm-up: sessions opened, scalers made.
    run(&frames[..2], &mut decoder, &mut shm, Some("grpc shm"));
    run(&frames[..2], &mut decoder, &mut embedded, Some("grpc emb"));
    run(&frames[..2], &mut decoder, &mut bgr, Some("grpc bgr"));
    run(&frames[..2], &mut decoder, &mut http, None);
    let shm_cost = run(&frames, &mut decoder, &mut shm, Some("grpc shm"));
    let embedded_cost = run(&frames, &mut decoder, &mut embedded, Some("grpc emb"));
    let bgr_cost = run(&frames, &mut decoder, &mut bgr, Some("grpc bgr"));
    let http_cost = run(&frames, &mut decoder, &mut http, None);
    let failures: Vec<String> = bus
        .remembered()
        .iter()
        .filter(|e| e.kind.ends_with("Error") || e.kind == "DataDropped")
        .map(|e| format!("{} {}", e.kind, e.body))
        .collect();
    assert!(failures.is_empty(), "every frame answered: {failures:?}");
    println!(
        "1080p -> 416x416, {} frames x {ROUNDS}, each waiting for its answer (Vigil's CPU: the calling thread and the session thread):",
        frames.len()
    );
    for (name, c) in [
        ("gRPC, shared memory, raw rgb24", &shm_cost),
        ("gRPC, embedded, raw rgb24", &embedded_cost),
        ("gRPC, shared memory, raw bgr24", &bgr_cost),
        ("HTTP, JPEG q90 POST", &http_cost),
    ] {
        println!(
            "  {name:32} {:.2} ms CPU per frame ({:.2} ms on the session thread) = {:4.0} frames/s per core; frame -> answer {:.2} ms",
            c.cpu_ms,
            c.session_ms,
            1e3 / c.cpu_ms,
            c.wall_ms
        );
    }
    println!("  of which scaling 1080p to 416x234 rgb24: {scale_ms:.2} ms");
    println!(
        "  shared memory's rate per core: {:.2}x the HTTP/JPEG path's, {:.2}x embedded's (target >= 3x HTTP)",
        http_cost.cpu_ms / shm_cost.cpu_ms,
        embedded_cost.cpu_ms / shm_cost.cpu_ms
    );
    drop((shm, embedded, bgr));
    let _ = server.kill();
    let _ = server.wait();
}
