//! Media without a camera for the tests that drive a sink directly: synthetic samples, and a
//! small real disk (tmpfs) that fills up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use vigil::media::sample::{VideoCodec, VideoParams, VideoSample};
use vigil::media::time::{MediaDuration, MediaTime};
use vigil::nodes::gate_node::ClipCommand;
use vigil::nodes::signal_gate::EndReason;

/// Parameters of a tiny synthetic H.264 stream.
pub fn params() -> Arc<VideoParams> {
    Arc::new(VideoParams {
        codec: VideoCodec::H264,
        width: 64,
        height: 64,
        rfc6381_codec: "avc1.42C00A".into(),
        sample_entry: b"\0\0\0\x08avc1".to_vec(),
    })
}

/// A synthetic sample at `t` of `bytes` bytes (one NAL: an IDR when `key_frame`, else a
/// non-IDR slice) with stream parameters `params`.
pub fn sample(
    t: MediaTime,
    bytes: usize,
    key_frame: bool,
    params: Arc<VideoParams>,
) -> ClipCommand {
    let mut data = vec![0u8; bytes];
    data[..4].copy_from_slice(&((bytes - 4) as u32).to_be_bytes());
    data[4] = if key_frame { 0x65 } else { 0x41 };
    ClipCommand::Sample(VideoSample {
        pts: t,
        dts: t,
        key_frame,
        data: Bytes::from(data),
        params,
        discontinuity: false,
    })
}

/// The gate's first command of a clip opened at `t0` (activation 1, correlation id `c1`).
pub fn clip_start(t0: MediaTime) -> ClipCommand {
    ClipCommand::Start {
        activation: 1,
        start: t0,
        first_event: t0,
        correlation_id: "c1".into(),
        audio: None,
        snapshot: None,
    }
}

/// Feeds `handle` one 40 s clip from `t0` (30 fps, a key frame each second, 2 kB a frame:
/// about 60 kB a fragment, so a small disk is full within seconds); at 20 s the operator makes
/// room (`disk` grows to `room_kib`).
pub fn clip_onto_a_filling_disk(
    t0: MediaTime,
    disk: &SmallDisk,
    room_kib: u64,
    mut handle: impl FnMut(ClipCommand),
) {
    handle(clip_start(t0));
    for i in 0..1200i64 {
        if i == 600 {
            disk.grow(room_kib);
        }
        let t = t0 + MediaDuration::from_millis(i * 1000 / 30);
        handle(sample(t, 2000, i % 30 == 0, params()));
    }
    handle(ClipCommand::end(
        1,
        t0 + MediaDuration::from_secs(40),
        EndReason::Minimum,
    ));
}

/// A tmpfs of `kib` KiB at `dir` (a real full disk); none where this user may not mount.
pub struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts it.
    pub fn mount(dir: &Path, kib: u64) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Self(dir.to_path_buf()))
    }

    /// Makes room: the same file system, now `kib` KiB.
    pub fn grow(&self, kib: u64) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={kib}k")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
