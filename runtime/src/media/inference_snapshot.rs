//! Snapshots of inference events: the picture a motion detector, frame filter or inference
//! service analysed, with the event's boxes drawn, as a JPEG. They are made on the snapshot
//! thread from pixels the node already holds (no decoding of their own), at most one per node
//! per [`EVERY`] of media ([`Pacer`]: a service answering every frame of a 30 fps stream must
//! not cost 30 JPEGs a second), kept in memory by the event's message id (the newest [`KEEP`],
//! at most [`KEEP_BYTES`] in all), served at `GET /api/snapshots/<messageId>.jpg`, and copied
//! beside the clips whose explanation lists the event ([`copy_to`]).

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;

use super::snapshot::{boxes_of, draw_box, submit_holding, submit_task};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;

/// Inference snapshots are at most this wide (larger pictures are shrunk by a whole factor).
pub const MAX_WIDTH: u32 = 640;
/// JPEG quality.
pub const QUALITY: u8 = 80;
/// Snapshots kept in memory, newest first out.
pub const KEEP: usize = 256;
/// Bytes of JPEG kept in memory at most.
pub const KEEP_BYTES: usize = 24 << 20;
/// Snapshots that cannot be made are reported at most once per this many seconds (with how
/// many were skipped), so an overloaded host is not also flooded with reports.
pub const REPORT_EVERY_SECS: u64 = 10;

/// A node's inference events get a snapshot at most once per this much media time.
pub const EVERY: super::time::MediaDuration = super::time::MediaDuration::from_millis(900);

/// When a node's next snapshot is due.
#[derive(Debug, Default)]
pub struct Pacer {
    last: Option<super::time::MediaTime>,
}

impl Pacer {
    /// True when the frame at `at` may get a snapshot: the first, one [`EVERY`] after the last
    /// one made, or one from before it (the media clock started again).
    pub fn due(&self, at: super::time::MediaTime) -> bool {
        self.last.is_none_or(|last| at < last || at - last >= EVERY)
    }

    /// [`Self::due`], and if so counted as made.
    pub fn take(&mut self, at: super::time::MediaTime) -> bool {
        let due = self.due(at);
        if due {
            self.last = Some(at);
        }
        due
    }
}

/// A [`Pacer`] shared between the thread that sends frames (it keeps a frame's pixels only when
/// a snapshot could be due) and the one that turns answers into events (it counts the snapshot
/// made).
#[derive(Debug, Default)]
pub struct SharedPacer(std::sync::Mutex<Pacer>);

impl SharedPacer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pacer> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`Pacer::due`].
    pub fn due(&self, at: super::time::MediaTime) -> bool {
        self.lock().due(at)
    }

    /// See [`Pacer::take`].
    pub fn take(&self, at: super::time::MediaTime) -> bool {
        self.lock().take(at)
    }
}

/// The pixels of a whole frame (at any size: the boxes are relative to it), kept as the node
/// had them: RGB is made on the snapshot thread, and only for a snapshot that is made.
pub struct Picture {
    /// The frame's content, `width`×`height`.
    pub pixels: super::image::Content,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

struct Kept {
    id: String,
    jpeg: Arc<Vec<u8>>,
}

#[derive(Default)]
struct Store {
    kept: VecDeque<Kept>,
    bytes: usize,
    pending: HashSet<String>,
}

fn store() -> std::sync::MutexGuard<'static, Store> {
    static STORE: OnceLock<Mutex<Store>> = OnceLock::new();
    STORE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Queues the snapshot of `event` (its inferences' boxes drawn on `picture`); a snapshot that
/// cannot be made is reported on `bus` (`SnapshotFailed`, rate-limited).
pub fn request(event: &Event, picture: Picture, bus: &EventBus) {
    let id = event.message_id.clone();
    let boxes = boxes_of(&event.body);
    store().pending.insert(id.clone());
    let failed = {
        let (bus, subject, time, id) = (bus.clone(), event.subject.clone(), event.time, id.clone());
        move |detail: String| {
            store().pending.remove(&id);
            report_failure(&bus, subject, time, &id, detail);
        }
    };
    let on_error = failed.clone();
    let task_id = id.clone();
    let bytes = picture.pixels.len();
    let queued = submit_holding(
        Box::new(move || match render(picture, &boxes) {
            Ok(jpeg) => keep(task_id, jpeg),
            Err(e) => on_error(format!("{e:#}")),
        }),
        bytes,
    );
    if !queued {
        failed(super::snapshot::queue_full());
    }
}

fn report_failure(
    bus: &EventBus,
    subject: String,
    time: super::time::MediaTime,
    id: &str,
    detail: String,
) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SKIPPED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let last = LAST.load(Ordering::Acquire);
    if last != 0 && now < last + REPORT_EVERY_SECS {
        SKIPPED.fetch_add(1, Ordering::AcqRel);
        return;
    }
    LAST.store(now.max(1), Ordering::Release);
    let unreported = SKIPPED.swap(0, Ordering::AcqRel);
    bus.emit(
        Event::new(
            EventClass::Diagnostics,
            "SnapshotFailed",
            subject,
            time,
            json!({"inferenceEvent": id, "detail": detail, "alsoFailedSinceLastReport": unreported}),
        )
        .correlated(Some(id.to_string())),
    );
}

fn keep(id: String, jpeg: Vec<u8>) {
    let mut s = store();
    s.pending.remove(&id);
    s.bytes += jpeg.len();
    s.kept.push_back(Kept {
        id,
        jpeg: Arc::new(jpeg),
    });
    while s.kept.len() > KEEP || s.bytes > KEEP_BYTES {
        match s.kept.pop_front() {
            Some(old) => s.bytes -= old.jpeg.len(),
            None => break,
        }
    }
}

/// The snapshot of the inference event `id`, while it is kept.
pub fn get(id: &str) -> Option<Arc<Vec<u8>>> {
    store()
        .kept
        .iter()
        .rev()
        .find(|k| k.id == id)
        .map(|k| k.jpeg.clone())
}

/// True when the snapshot of event `id` is kept or still being made.
pub fn is_known(id: &str) -> bool {
    let s = store();
    s.pending.contains(id) || s.kept.iter().any(|k| k.id == id)
}

/// Writes the snapshots of events (`(id, file)`) to their files (through a temporary name),
/// after the snapshots queued before it are made; those no longer kept are skipped.
pub fn copy_to(items: Vec<(String, PathBuf)>) {
    if items.is_empty() {
        return;
    }
    let write = |items: &[(String, PathBuf)]| {
        for (id, path) in items {
            if let Some(jpeg) = get(id) {
                let mut tmp = path.as_os_str().to_owned();
                tmp.push(".tmp");
                let tmp = PathBuf::from(tmp);
                if std::fs::write(&tmp, jpeg.as_slice()).is_ok() {
                    let _ = std::fs::rename(&tmp, path);
                }
            }
        }
    };
    let pending = {
        let s = store();
        items.iter().any(|(id, _)| s.pending.contains(id))
    };
    if !pending {
        write(&items);
        return;
    }
    let queued_items = items.clone();
    if !submit_task(Box::new(move || write(&queued_items))) {
        // The queue is full: what is already made is written now.
        write(&items);
    }
}

/// The JPEG of `picture`, shrunk to at most [`MAX_WIDTH`], with `boxes` outlined.
pub fn render(picture: Picture, boxes: &[super::snapshot::RelativeBox]) -> anyhow::Result<Vec<u8>> {
    let Picture {
        pixels,
        width,
        height,
    } = picture;
    let rgb = pixels.into_rgb();
    let expected = width as usize * height as usize * 3;
    if width == 0 || height == 0 || rgb.len() != expected {
        anyhow::bail!(
            "a picture of {width}x{height} needs {expected} bytes of RGB, not {}",
            rgb.len()
        );
    }
    let (mut rgb, w, h) = shrink(rgb, width, height, MAX_WIDTH);
    for b in boxes {
        draw_box(&mut rgb, w, h, *b);
    }
    super::image::jpeg(&rgb, w, h, QUALITY)
}

/// `rgb` (`w`×`h`) shrunk by the smallest whole factor that makes it at most `max_width` wide,
/// each pixel the average of the block it covers.
pub fn shrink(rgb: Vec<u8>, w: u32, h: u32, max_width: u32) -> (Vec<u8>, u32, u32) {
    let factor = w.div_ceil(max_width.max(1));
    if factor <= 1 {
        return (rgb, w, h);
    }
    let (nw, nh) = ((w / factor).max(1), (h / factor).max(1));
    let mut out = vec![0u8; nw as usize * nh as usize * 3];
    let f = factor as usize;
    let count = (f * f) as u32;
    for y in 0..nh as usize {
        for x in 0..nw as usize {
            let mut sum = [0u32; 3];
            for dy in 0..f {
                let row = (y * f + dy) * w as usize;
                for dx in 0..f {
                    let at = (row + x * f + dx) * 3;
                    if let Some(px) = rgb.get(at..at + 3) {
                        for c in 0..3 {
                            sum[c] += u32::from(px[c]);
                        }
                    }
                }
            }
            let at = (y * nw as usize + x) * 3;
            for c in 0..3 {
                out[at + c] = (sum[c] / count) as u8;
            }
        }
    }
    (out, nw, nh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_averages_whole_blocks_to_at_most_the_width() {
        // 4x2, two colours in 2x2 blocks: shrunk to 2 wide it is one pixel of each.
        let mut rgb = Vec::new();
        for _ in 0..2 {
            rgb.extend([10, 20, 30, 30, 40, 50, 200, 0, 0, 100, 0, 0]);
        }
        let (out, w, h) = shrink(rgb.clone(), 4, 2, 2);
        assert_eq!((w, h), (2, 1));
        assert_eq!(out, vec![20, 30, 40, 150, 0, 0]);
        let (same, w, h) = shrink(rgb.clone(), 4, 2, 640);
        assert_eq!((same, w, h), (rgb, 4, 2));
        // 1920 wide: a factor of 3, 640 wide.
        let (_, w, h) = shrink(vec![0; 1920 * 1080 * 3], 1920, 1080, MAX_WIDTH);
        assert_eq!((w, h), (640, 360));
    }

    #[test]
    fn a_node_gets_a_snapshot_at_most_once_per_interval() {
        use crate::media::time::MediaTime;
        let mut pacer = Pacer::default();
        let at = |ms: i64| MediaTime::from_nanos(ms * 1_000_000);
        let taken: Vec<i64> = (0..60)
            .map(|n| n * 33)
            .filter(|&ms| pacer.take(at(ms)))
            .collect();
        assert_eq!(taken, [0, 924, 1848]);
        assert!(pacer.take(at(10)), "the clock started again");
    }

    #[test]
    fn a_picture_of_the_wrong_size_is_refused_with_its_sizes() {
        let picture = Picture {
            pixels: super::super::image::Content::Rgb(vec![0; 10]),
            width: 4,
            height: 4,
        };
        let err = render(picture, &[]).expect_err("refused");
        assert!(format!("{err}").contains("4x4 needs 48 bytes"), "{err}");
    }

    #[test]
    fn kept_snapshots_are_found_by_id_and_the_oldest_go_first() {
        keep("unit-a".into(), vec![1; 10]);
        assert!(is_known("unit-a"));
        assert_eq!(get("unit-a").as_deref(), Some(&vec![1; 10]));
        for n in 0..KEEP {
            keep(format!("unit-fill-{n}"), vec![2; 1]);
        }
        assert!(get("unit-a").is_none(), "pushed out by {KEEP} newer");
        assert!(!is_known("unit-a"));
    }
}
