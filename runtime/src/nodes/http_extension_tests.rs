//! Unit tests of the HttpExtension node: sampling, box mapping, and a request thread that
//! survives a panic.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::*;
use crate::topology::model::{
    Endpoint, ImageFormat, ImageProperties, ImageScale, SamplingOptions, ScaleMode,
};
use serde_json::Value;

fn at(ms: i64) -> MediaTime {
    MediaTime::from_nanos(1_700_000_000_000_000_000 + ms * 1_000_000)
}

#[test]
fn sampler_keeps_a_uniform_grid() {
    // 30 fps for 60 s at 2 samples/s: 120 samples, one every 15 frames.
    let mut s = Sampler::new(Some(2.0));
    let mut taken = Vec::new();
    for frame in 0..1800 {
        let pts = at(frame * 1000 / 30);
        if s.is_due(pts) {
            s.take(pts);
            taken.push(frame);
        }
    }
    assert_eq!(taken.len(), 120);
    assert!(taken.windows(2).all(|w| w[1] - w[0] == 15), "{taken:?}");
    // Slower than a frame every 2 s too (AVA's httpExtension topology: 0.2/s).
    let mut slow = Sampler::new(Some(0.2));
    let picked: Vec<i64> = (0..600)
        .filter(|f| {
            let pts = at(f * 1000 / 30);
            let due = slow.is_due(pts);
            if due {
                slow.take(pts);
            }
            due
        })
        .collect();
    assert_eq!(picked, vec![0, 150, 300, 450]);
    let mut all = Sampler::new(None);
    assert!(all.is_due(at(0)));
    all.take(at(0));
    assert!(all.is_due(at(1)));
}

#[test]
fn padded_boxes_are_mapped_to_the_frame() {
    let layout = ImageLayout {
        width: 100,
        height: 100,
        content_x: 0,
        content_y: 25,
        content_width: 100,
        content_height: 50,
    };
    let body = json!({"inferences": [
        {"type": "entity", "entity": {"tag": {"value": "car", "confidence": 0.9}, "box": {"l": 0.5, "t": 0.25, "w": 0.5, "h": 0.25}}},
        {"type": "entity", "entity": {"tag": {"value": "bar", "confidence": 0.9}, "box": {"l": 0.0, "t": 0.0, "w": 0.5, "h": 0.2}}},
        {"type": "classification", "classification": {"tag": {"value": "day"}}}
    ]});
    let Value::Object(map) = body else { panic!() };
    let e = inference_event("/s", map, &layout, at(0)).expect("event");
    let items = e.body["inferences"].as_array().expect("array");
    assert_eq!(items.len(), 2, "the box in the bar is dropped");
    assert_eq!(
        items[0]["entity"]["box"],
        json!({"l": 0.5, "t": 0.0, "w": 0.5, "h": 0.5})
    );
    assert_eq!(e.body["timestamp"], json!(at(0).as_90khz_ticks()));
}

#[test]
fn retries_come_every_second_however_long_the_outage() {
    assert_eq!(backoff(1), Duration::from_secs(1));
    assert_eq!(backoff(3), Duration::from_secs(1));
    assert_eq!(backoff(10), RETRY_EVERY);
}

/// An inference service that answers every POST with one detection, one connection per request.
fn answering_service() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/score", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Ok(mut writer) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = r#"{"inferences":[{"type":"entity","entity":{"tag":{"value":"truck","confidence":0.9},"box":{"l":0.1,"t":0.1,"w":0.2,"h":0.2}}}]}"#;
            let _ = write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

fn bmp_config(url: String) -> HttpExtensionConfig {
    HttpExtensionConfig {
        endpoint: Endpoint {
            url,
            credentials: None,
            tls: None,
        },
        image: ImageProperties {
            scale: Some(ImageScale {
                mode: ScaleMode::Stretch,
                width: Some(8),
                height: Some(8),
            }),
            format: ImageFormat::Bmp,
        },
        sampling: SamplingOptions {
            skip_samples_without_annotation: false,
            maximum_samples_per_second: None,
        },
    }
}

/// Waits up to 10 s for `done`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_panic_on_the_request_thread_leaves_the_node_free_for_the_next_frame() {
    let bus = EventBus::new("p", None).expect("event bus");
    let delivered = Arc::new(AtomicUsize::new(0));
    let seen = delivered.clone();
    let mut node = HttpExtensionNode::threaded(
        &bmp_config(answering_service()),
        "/livePipelines/p/processors/ext".into(),
        bus.clone(),
        Box::new(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("the first delivery fails");
            }
        }),
    )
    .expect("node");
    for i in 0..3usize {
        let pts = at(i as i64 * 1000);
        let mut layout = None;
        wait_until("the node stayed busy after a panic", || {
            layout = node.wants(pts, false, 16, 16);
            layout.is_some()
        });
        let Some(layout) = layout else { return };
        let rgb = vec![0u8; (layout.content_width * layout.content_height * 3) as usize];
        assert!(
            node.on_image(pts, &Content::Rgb(rgb), layout, &[])
                .is_none(),
            "threaded: no inline event"
        );
        wait_until("the answer was delivered", || {
            delivered.load(Ordering::SeqCst) > i
        });
    }
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        3,
        "every frame's answer was delivered"
    );
    let metrics = bus.metrics().render();
    assert!(
        metrics.contains("vigil_extension_failures_total{pipeline=\"p\",node=\"ext\"} 1"),
        "the panic counts as one failed request:\n{metrics}"
    );
}
