//! Snapshots: a JPEG of the frame a clip was decided on, with the boxes of the event that opened
//! it drawn over it. The gate hands over the compressed samples the frame needs (its GOP up to
//! it, already held for the pre-roll); one process-wide thread decodes them, only when a
//! snapshot is due, so recording never waits for a decoder and a pipeline that never decodes
//! otherwise (a door sensor's) decodes one GOP per clip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Result, anyhow, bail};

use super::decode::Decoder;
use super::sample::VideoSample;
use super::time::MediaTime;

/// Snapshots at most this wide (larger frames are scaled down, keeping the aspect ratio).
pub const MAX_WIDTH: u32 = 1280;
/// JPEG quality.
pub const QUALITY: u8 = 85;
/// Tasks that may wait for the snapshot thread; more are dropped (and reported by the caller).
pub const QUEUE: usize = 256;
/// Media the waiting tasks may hold (a clip's GOP: 0.5 MB at 1080p, up to 14 MB at 4K): the
/// queue is bounded by what it holds, so a burst of clips (a site-wide alarm) waits rather than
/// losing its pictures. A task is always taken while nothing waits, however large.
pub const QUEUE_BYTES: usize = 96 << 20;

/// A box to draw, in ten-thousandths of the frame (`l`, `t`, `w`, `h`), as AVA's inferences give
/// boxes relative to the frame.
pub type RelativeBox = [u16; 4];

/// What a snapshot is made from: the samples from a key frame up to the frame, the frame's media
/// time, and the boxes to draw.
#[derive(Clone, Debug)]
pub struct SnapshotSource {
    /// The GOP up to and including the frame.
    pub samples: Vec<VideoSample>,
    /// The frame's media time (the last sample's).
    pub frame: MediaTime,
    /// Boxes of the event the clip was decided on.
    pub boxes: Vec<RelativeBox>,
    /// The region of interest of the node that sent it, if it has one.
    pub region: Option<RelativeBox>,
}

/// One snapshot to make: from `source` to the file `path` (through a temporary name), and as its
/// pipeline's latest.
pub struct SnapshotJob {
    /// What to decode.
    pub source: Arc<SnapshotSource>,
    /// Where to write it.
    pub path: PathBuf,
    /// The pipeline whose latest snapshot it becomes.
    pub pipeline: String,
    /// Called with the outcome (on the snapshot thread).
    pub done: Box<dyn FnOnce(Result<SnapshotMade>) + Send>,
}

/// A snapshot written.
#[derive(Clone, Debug)]
pub struct SnapshotMade {
    /// The file.
    pub path: PathBuf,
    /// Its size in pixels.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// The frame's media time.
    pub frame: MediaTime,
}

/// Snapshots queued or being made.
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Bytes of media the queued tasks hold.
static HELD: Held = Held::new(QUEUE_BYTES);

/// What the queued tasks hold, against a bound.
pub struct Held {
    bytes: std::sync::atomic::AtomicUsize,
    max: usize,
}

impl Held {
    /// Nothing held yet, at most `max` bytes.
    pub const fn new(max: usize) -> Self {
        Self {
            bytes: std::sync::atomic::AtomicUsize::new(0),
            max,
        }
    }

    /// Takes `bytes` if they fit (or nothing is held); false otherwise.
    pub fn admit(&self, bytes: usize) -> bool {
        use std::sync::atomic::Ordering;
        let mut now = self.bytes.load(Ordering::Acquire);
        loop {
            if now > 0 && now.saturating_add(bytes) > self.max {
                return false;
            }
            match self.bytes.compare_exchange_weak(
                now,
                now + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
    }

    /// Gives `bytes` back.
    pub fn release(&self, bytes: usize) {
        self.bytes
            .fetch_sub(bytes, std::sync::atomic::Ordering::AcqRel);
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Why a task was not queued, for the event that reports it.
pub fn queue_full() -> String {
    format!(
        "the snapshot queue is full ({} waiting, {:.1} MiB of media held; at most {QUEUE} or {} MiB); this one is skipped",
        IN_FLIGHT.load(std::sync::atomic::Ordering::Acquire),
        HELD.bytes() as f64 / f64::from(1 << 20),
        QUEUE_BYTES >> 20
    )
}

/// Waits until every queued snapshot is made (or `timeout` passed): a process about to exit
/// (the end of a replay) writes the snapshots of the clips it recorded.
pub fn wait_idle(timeout: std::time::Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while IN_FLIGHT.load(std::sync::atomic::Ordering::Acquire) > 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Work for the snapshot thread.
pub type Task = Box<dyn FnOnce() + Send>;

/// True in `vigil replay`: a full queue waits instead of dropping, so a replay makes the same
/// snapshots however fast it runs.
static WAIT_WHEN_FULL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes a full snapshot queue wait for room instead of dropping (replay).
pub fn wait_when_full() {
    WAIT_WHEN_FULL.store(true, std::sync::atomic::Ordering::Release);
}

/// Queues `task` for the snapshot thread (tasks run one at a time, in the order queued); false
/// when the queue is full (the task is dropped).
pub fn submit_task(task: Task) -> bool {
    submit_holding(task, 0)
}

/// [`submit_task`] for a task that holds `bytes` of media until it has run.
pub fn submit_holding(task: Task, bytes: usize) -> bool {
    let waits = WAIT_WHEN_FULL.load(std::sync::atomic::Ordering::Acquire);
    while !HELD.admit(bytes) {
        if !waits {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let task: Task = Box::new(move || {
        task();
        HELD.release(bytes);
    });
    if submit_counted(task) {
        true
    } else {
        HELD.release(bytes);
        false
    }
}

fn submit_counted(task: Task) -> bool {
    static QUEUE_TX: OnceLock<Option<SyncSender<Task>>> = OnceLock::new();
    let tx = QUEUE_TX.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Task>(QUEUE);
        std::thread::Builder::new()
            .name("snapshots".into())
            .spawn(move || {
                for task in rx {
                    // A panic in one task must not end the thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
                    let left = IN_FLIGHT
                        .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
                        .saturating_sub(1);
                    // A burst of snapshots (clips opening together) decodes one GOP after the
                    // other, megabytes each: give them back as soon as the burst is done.
                    if left == 0 {
                        crate::service::memory::trim_after_burst();
                    }
                }
            })
            .ok()
            .map(|_| tx)
    });
    let Some(tx) = tx else { return false };
    IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    let sent = if WAIT_WHEN_FULL.load(std::sync::atomic::Ordering::Acquire) {
        tx.send(task).is_ok()
    } else {
        match tx.try_send(task) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    };
    if !sent {
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
    sent
}

/// Queues `job` for the snapshot thread; false when the queue is full (the job is dropped).
pub fn submit(job: SnapshotJob) -> bool {
    let bytes = job.source.samples.iter().map(|s| s.data.len()).sum();
    submit_holding(
        Box::new(move || {
            let outcome = make(&job.source, &job.path);
            if let Ok((bytes, made)) = &outcome {
                remember_latest(&job.pipeline, made.frame, bytes.clone());
            }
            (job.done)(outcome.map(|(_, made)| made));
        }),
        bytes,
    )
}

type Latest = Mutex<HashMap<String, (MediaTime, Arc<Vec<u8>>)>>;

fn latest() -> &'static Latest {
    static LATEST: OnceLock<Latest> = OnceLock::new();
    LATEST.get_or_init(Default::default)
}

fn remember_latest(pipeline: &str, frame: MediaTime, jpeg: Arc<Vec<u8>>) {
    let mut map = latest().lock().unwrap_or_else(|e| e.into_inner());
    let newer = map.get(pipeline).is_none_or(|(t, _)| frame >= *t);
    if newer {
        map.insert(pipeline.to_string(), (frame, jpeg));
    }
}

/// The latest snapshot of `pipeline` in this process (its frame's media time and the JPEG).
pub fn latest_of(pipeline: &str) -> Option<(MediaTime, Arc<Vec<u8>>)> {
    let map = latest().lock().unwrap_or_else(|e| e.into_inner());
    map.get(pipeline).cloned()
}

/// The snapshot file of a recording: `<file>.jpg`.
pub fn snapshot_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".jpg");
    PathBuf::from(name)
}

/// Decodes `source`, draws its boxes, encodes the JPEG and writes it to `path`.
pub fn make(source: &SnapshotSource, path: &Path) -> Result<(Arc<Vec<u8>>, SnapshotMade)> {
    let (jpeg, width, height) = render(source)?;
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    std::fs::write(&tmp, &jpeg)?;
    std::fs::rename(&tmp, path)?;
    let made = SnapshotMade {
        path: path.to_path_buf(),
        width,
        height,
        frame: source.frame,
    };
    Ok((Arc::new(jpeg), made))
}

/// The JPEG of `source`'s frame with its boxes: (bytes, width, height).
pub fn render(source: &SnapshotSource) -> Result<(Vec<u8>, u32, u32)> {
    let first = source
        .samples
        .first()
        .ok_or_else(|| anyhow!("no media held for the frame"))?;
    if !first.key_frame {
        bail!("the samples do not start at a key frame");
    }
    let mut decoder = Decoder::new(&first.params)?;
    let mut picked = None;
    let mut keep = |frames: Vec<(MediaTime, crate::media::av::Frame)>| {
        for (pts, frame) in frames {
            if pts <= source.frame {
                picked = Some(frame);
            }
        }
    };
    for s in &source.samples {
        keep(decoder.decode(s)?);
    }
    keep(decoder.flush()?);
    let frame = picked.ok_or_else(|| anyhow!("the decoder gave no frame"))?;
    let (fw, fh) = (frame.width(), frame.height());
    let (w, h) = if fw > MAX_WIDTH {
        let h = (u64::from(fh) * u64::from(MAX_WIDTH) / u64::from(fw)) as u32;
        (MAX_WIDTH, h.max(2) & !1)
    } else {
        (fw, fh)
    };
    let mut rgb = decoder.scale_rgb(&frame, w, h)?;
    if let Some(region) = source.region {
        draw_region(&mut rgb, w, h, region);
    }
    for b in &source.boxes {
        draw_box(&mut rgb, w, h, *b);
    }
    Ok((super::image::jpeg(&rgb, w, h, QUALITY)?, w, h))
}

/// The outline colour of boxes (amber).
pub const BOX_COLOUR: [u8; 3] = [255, 176, 0];

/// Draws the outline of `b` (relative) on packed RGB24 `w`×`h`, three pixels wide, inside the
/// frame.
pub fn draw_box(rgb: &mut [u8], w: u32, h: u32, b: RelativeBox) {
    outline(rgb, (w, h), b, (3, BOX_COLOUR), |_| true);
}

/// The outline colour of a region of interest (cyan).
pub const REGION_COLOUR: [u8; 3] = [0, 200, 255];

/// Draws the outline of region `r` (relative) on packed RGB24 `w`×`h`: two pixels wide, dashed
/// (8 on, 8 off), inside the frame.
pub fn draw_region(rgb: &mut [u8], w: u32, h: u32, r: RelativeBox) {
    outline(rgb, (w, h), r, (2, REGION_COLOUR), |along| along % 16 < 8);
}

/// Paints the outline of `b` (relative) `thick` pixels wide in `colour`, where `on` says so of
/// the distance along the edge from its corner.
fn outline(
    rgb: &mut [u8],
    (w, h): (u32, u32),
    b: RelativeBox,
    (thick, colour): (u32, [u8; 3]),
    on: impl Fn(u32) -> bool,
) {
    if w == 0 || h == 0 {
        return;
    }
    let scale = |v: u16, size: u32| (u64::from(v.min(10_000)) * u64::from(size) / 10_000) as u32;
    let x0 = scale(b[0], w).min(w - 1);
    let y0 = scale(b[1], h).min(h - 1);
    let x1 = scale(b[0].saturating_add(b[2]), w).clamp(x0, w - 1);
    let y1 = scale(b[1].saturating_add(b[3]), h).clamp(y0, h - 1);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let vertical = x < x0 + thick || x + thick > x1;
            let horizontal = y < y0 + thick || y + thick > y1;
            if (vertical && on(y - y0)) || (horizontal && on(x - x0)) {
                let at = (y as usize * w as usize + x as usize) * 3;
                if let Some(px) = rgb.get_mut(at..at + 3) {
                    px.copy_from_slice(&colour);
                }
            }
        }
    }
}

/// The boxes of an event body's inferences (entities and motion), relative to the frame.
pub fn boxes_of(body: &serde_json::Value) -> Vec<RelativeBox> {
    let Some(list) = body.get("inferences").and_then(serde_json::Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|i| {
            i["entity"]["box"]
                .as_object()
                .or(i["motion"]["box"].as_object())
        })
        .filter_map(|b| {
            let v = |k: &str| b.get(k).and_then(serde_json::Value::as_f64);
            let rel = |x: f64| (x.clamp(0.0, 1.0) * 10_000.0).round() as u16;
            Some([rel(v("l")?), rel(v("t")?), rel(v("w")?), rel(v("h")?)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_is_outlined_where_it_says_and_nowhere_else() {
        let (w, h) = (100u32, 50u32);
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        // l 0.2, t 0.2, w 0.5, h 0.4: x 20..70, y 10..30.
        draw_box(&mut rgb, w, h, [2000, 2000, 5000, 4000]);
        let px = |rgb: &[u8], x: u32, y: u32| {
            let at = ((y * w + x) * 3) as usize;
            [rgb[at], rgb[at + 1], rgb[at + 2]]
        };
        assert_eq!(px(&rgb, 20, 20), BOX_COLOUR, "left edge");
        assert_eq!(px(&rgb, 70, 20), BOX_COLOUR, "right edge");
        assert_eq!(px(&rgb, 40, 10), BOX_COLOUR, "top edge");
        assert_eq!(px(&rgb, 40, 30), BOX_COLOUR, "bottom edge");
        assert_eq!(px(&rgb, 40, 20), [0, 0, 0], "inside");
        assert_eq!(px(&rgb, 10, 20), [0, 0, 0], "outside");
        // A box past the frame's edge is cut to it.
        draw_box(&mut rgb, w, h, [9000, 9000, 5000, 5000]);
        assert_eq!(px(&rgb, 99, 49), BOX_COLOUR);
    }

    #[test]
    fn the_queue_holds_at_most_its_bytes_but_always_one_task() {
        let held = Held::new(100);
        assert!(held.admit(60));
        assert!(held.admit(40));
        assert!(!held.admit(1), "full");
        held.release(60);
        assert!(held.admit(50));
        assert!(!held.admit(11));
        held.release(40);
        held.release(50);
        assert_eq!(held.bytes(), 0);
        assert!(
            held.admit(500),
            "a task larger than the bound while nothing waits"
        );
        assert!(!held.admit(1));
    }

    #[test]
    fn a_region_is_outlined_dashed_in_its_own_colour() {
        let (w, h) = (100u32, 100u32);
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        // l 0.1, t 0.1, w 0.5, h 0.5: x 10..60, y 10..60.
        draw_region(&mut rgb, w, h, [1000, 1000, 5000, 5000]);
        let px = |x: u32, y: u32| {
            let at = ((y * w + x) * 3) as usize;
            [rgb[at], rgb[at + 1], rgb[at + 2]]
        };
        assert_eq!(px(10, 12), REGION_COLOUR, "left edge, a dash");
        assert_eq!(px(10, 20), [0, 0, 0], "left edge, a gap");
        assert_eq!(px(12, 10), REGION_COLOUR, "top edge");
        assert_eq!(px(60, 12), REGION_COLOUR, "right edge");
        assert_eq!(px(30, 30), [0, 0, 0], "inside");
    }

    #[test]
    fn boxes_come_from_entities_and_motion() {
        let body = serde_json::json!({"inferences": [
            {"type": "entity", "entity": {"tag": {"value": "truck"}, "box": {"l": 0.1, "t": 0.2, "w": 0.3, "h": 0.4}}},
            {"type": "motion", "motion": {"box": {"l": 0.5, "t": 0.5, "w": 0.7, "h": 0.1}}},
            {"type": "classification", "classification": {"tag": {"value": "day"}}}
        ]});
        assert_eq!(
            boxes_of(&body),
            vec![[1000, 2000, 3000, 4000], [5000, 5000, 7000, 1000]]
        );
    }
}
