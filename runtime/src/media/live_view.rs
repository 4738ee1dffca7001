//! Live view: a pipeline's camera as a live HLS stream of fMP4 fragments (one GOP each), made
//! from the samples the pipeline already receives (no second camera session, no decoding).
//! Nothing is made until somebody watches: a playlist request wants the stream for
//! [`WATCH_FOR`]; the first fragment starts at the next key frame, and the writer and its
//! fragments are dropped once nobody asked for that long.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::fmp4::Fmp4Writer;
use super::sample::{VideoParams, VideoSample};
use super::time::MediaTime;

/// How long a playlist request keeps the stream made.
pub const WATCH_FOR: Duration = Duration::from_secs(30);
/// Fragments kept (and listed in the playlist).
pub const KEEP: usize = 6;

/// One finished fragment.
struct LiveFragment {
    seq: u64,
    start: MediaTime,
    seconds: f64,
    bytes: Arc<Vec<u8>>,
}

/// What is being made.
#[derive(Default)]
struct Stream {
    writer: Option<Fmp4Writer>,
    params: Option<Arc<VideoParams>>,
    init: Option<Arc<Vec<u8>>>,
    /// Changes with each new init segment (a camera that changed its stream).
    generation: u64,
    /// Start of the fragment being written.
    open_start: Option<MediaTime>,
    fragments: VecDeque<LiveFragment>,
    next_seq: u64,
}

/// One pipeline's live view.
pub struct LiveView {
    /// Milliseconds since [`epoch`] until which somebody wants the stream (0: nobody yet).
    wanted_until_ms: AtomicU64,
    stream: Mutex<Stream>,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

type Views = Mutex<HashMap<String, Arc<LiveView>>>;

fn views() -> std::sync::MutexGuard<'static, HashMap<String, Arc<LiveView>>> {
    static VIEWS: OnceLock<Views> = OnceLock::new();
    VIEWS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The live view of `pipeline`, if its engine ever ran in this process (the API asks with
/// this, so a request never makes one).
pub fn existing(pipeline: &str) -> Option<Arc<LiveView>> {
    views().get(pipeline).cloned()
}

/// The live view of `pipeline` (made on first use by the pipeline's live engine).
pub fn of(pipeline: &str) -> Arc<LiveView> {
    let mut map = views();
    map.entry(pipeline.to_string())
        .or_insert_with(|| {
            Arc::new(LiveView {
                wanted_until_ms: AtomicU64::new(0),
                stream: Mutex::new(Stream::default()),
            })
        })
        .clone()
}

impl LiveView {
    fn stream(&self) -> std::sync::MutexGuard<'_, Stream> {
        self.stream.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Somebody watches: the stream is made for the next [`WATCH_FOR`].
    pub fn want(&self) {
        let until = now_ms() + WATCH_FOR.as_millis() as u64;
        self.wanted_until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// A video sample from the camera (cheap while nobody watches).
    pub fn on_sample(&self, sample: &VideoSample) {
        let until = self.wanted_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return;
        }
        let mut s = self.stream();
        if now_ms() > until {
            // Nobody watched for a while: drop what was made.
            *s = Stream {
                next_seq: s.next_seq,
                generation: s.generation,
                ..Stream::default()
            };
            self.wanted_until_ms.store(0, Ordering::Release);
            return;
        }
        let changed = s.params.as_ref().is_some_and(|p| *p != sample.params);
        if changed {
            s.writer = None;
            s.fragments.clear();
            s.init = None;
        }
        if s.writer.is_none() {
            if !sample.key_frame {
                return;
            }
            let writer = Fmp4Writer::new(sample.params.clone(), sample.dts, None);
            s.init = Some(Arc::new(writer.init_segment(sample.pts)));
            s.generation += 1;
            s.params = Some(sample.params.clone());
            s.writer = Some(writer);
            s.open_start = Some(sample.pts);
        }
        let start = s.open_start.unwrap_or(sample.pts);
        let finished = s.writer.as_mut().and_then(|w| w.push(sample.clone()));
        if let Some(fragment) = finished {
            let mut bytes = Vec::with_capacity(fragment.len());
            for part in fragment.parts() {
                bytes.extend_from_slice(part);
            }
            let seq = s.next_seq;
            s.next_seq += 1;
            s.fragments.push_back(LiveFragment {
                seq,
                start,
                seconds: (sample.pts - start).as_secs_f64().max(0.001),
                bytes: Arc::new(bytes),
            });
            while s.fragments.len() > KEEP {
                s.fragments.pop_front();
            }
            s.open_start = Some(sample.pts);
        }
    }

    /// The live playlist (HLS, fMP4), `base` the URL prefix of its init segment and fragments;
    /// none until the first fragment is made.
    pub fn playlist(&self, base: &str) -> Option<String> {
        let s = self.stream();
        let first = s.fragments.front()?;
        let target = s
            .fragments
            .iter()
            .map(|f| f.seconds.ceil() as u64)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{}\n\
             #EXT-X-MAP:URI=\"{base}/init.mp4?g={}\"\n#EXT-X-PROGRAM-DATE-TIME:{}\n",
            first.seq, s.generation, first.start
        );
        for f in &s.fragments {
            out.push_str(&format!(
                "#EXTINF:{:.3},\n{base}/{}.m4s\n",
                f.seconds, f.seq
            ));
        }
        Some(out)
    }

    /// The init segment of the stream being made.
    pub fn init(&self) -> Option<Arc<Vec<u8>>> {
        self.stream().init.clone()
    }

    /// Fragment `seq`, while kept.
    pub fn fragment(&self, seq: u64) -> Option<Arc<Vec<u8>>> {
        self.stream()
            .fragments
            .iter()
            .find(|f| f.seq == seq)
            .map(|f| f.bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sample::VideoCodec;
    use crate::media::time::MediaDuration;
    use bytes::Bytes;

    fn feed(view: &LiveView, frames: std::ops::Range<i64>) {
        let params = Arc::new(VideoParams {
            codec: VideoCodec::H264,
            width: 64,
            height: 64,
            rfc6381_codec: "avc1.42C00A".into(),
            sample_entry: Vec::new(),
        });
        for i in frames {
            let t = MediaTime::from_secs(1_800_000_000) + MediaDuration::from_millis(i * 1000 / 30);
            view.on_sample(&VideoSample {
                pts: t,
                dts: t,
                key_frame: i % 30 == 0,
                data: Bytes::from(vec![0u8; 100]),
                params: params.clone(),
                discontinuity: false,
            });
        }
    }

    #[test]
    fn nothing_is_made_until_somebody_watches_then_one_fragment_per_gop() {
        let view = of("live-view-test");
        feed(&view, 0..90);
        assert!(view.playlist("/x").is_none(), "nobody watched");
        view.want();
        // Starts at the next key frame (frame 90), a fragment per second after it: seven
        // finished by frame 330, the newest six kept.
        feed(&view, 75..330);
        let playlist = view.playlist("/x").expect("playlist");
        assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:1\n"), "{playlist}");
        assert!(
            playlist.contains("#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:04.000Z"),
            "{playlist}"
        );
        assert_eq!(
            playlist.matches("#EXTINF:1.000,").count(),
            KEEP,
            "{playlist}"
        );
        assert!(playlist.contains("/x/6.m4s"), "{playlist}");
        assert!(view.init().is_some_and(|i| i.len() > 100));
        assert!(
            view.fragment(6).is_some() && view.fragment(0).is_none(),
            "the oldest dropped"
        );
    }
}
