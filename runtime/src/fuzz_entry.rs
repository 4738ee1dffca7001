//! The entry points the fuzz targets (`fuzz/`) drive with arbitrary bytes, and the test suite
//! replays their kept corpus through (`tests/fuzz_corpus.rs`): each must return, whatever the
//! input, without panicking. One function per target, named as the target.

use std::io::Write;

/// A topology document, read as a full topology and as a template.
pub fn topology(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::topology::load_topology(text, &crate::topology::LoadOptions::default());
    let template = crate::topology::LoadOptions {
        template: true,
        ..crate::topology::LoadOptions::default()
    };
    let _ = crate::topology::load_topology(text, &template);
}

/// A live-pipeline document.
pub fn live_pipeline(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::topology::live_pipeline::parse_live_pipeline(text);
    }
}

/// A trigger message (MQTT payload or HTTP body).
pub fn trigger(data: &[u8]) {
    let _ = crate::bus::trigger::parse_trigger(data);
}

/// A control method call: the first line is the method's name, the rest its payload.
pub fn control(data: &[u8]) {
    let (name, payload) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let name = String::from_utf8_lossy(name);
    let _ = crate::service::methods::Request::parse(&name, payload);
}

/// An inference service's reply.
pub fn extension_reply(data: &[u8]) {
    let _ = crate::nodes::extension_client::parse_inferences(data, "application/json");
}

/// An MP4 file: indexed, every sample read; then crash recovery on the same bytes.
pub fn mp4(data: &[u8]) {
    if let Ok(video) = crate::media::mp4_reader::Mp4Video::from_bytes(data.to_vec()) {
        for sample in video
            .samples(crate::media::time::MediaTime::from_secs(1_700_000_000))
            .take(10_000)
        {
            if sample.is_err() {
                break;
            }
        }
    }
    let path = std::env::temp_dir().join(format!("vigil-fuzz-mp4-{}", std::process::id()));
    if let Ok(mut f) = std::fs::File::create(&path)
        && f.write_all(data).is_ok()
    {
        let _ = crate::media::recovery::trim_incomplete_fragment(&path);
    }
    let _ = std::fs::remove_file(&path);
}

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name.
pub const TARGETS: [(&str, Target); 6] = [
    ("topology", topology),
    ("live_pipeline", live_pipeline),
    ("trigger", trigger),
    ("control", control),
    ("extension_reply", extension_reply),
    ("mp4", mp4),
];
