//! MP4 export of a video's UTC range: one fragmented MP4 file, cut on key frames (from the key
//! frame at or before the start to the last frame before the end), clips joined with the gap
//! between them kept on the timeline.

use anyhow::{Result, bail};

use super::available::TimeRange;
use super::catalog::{Catalog, SegmentRow};
use crate::media::fmp4::Fmp4Writer;
use crate::media::mp4_reader::Mp4Video;

/// Bytes of a segment file, from the cache or the object store.
pub trait SegmentBytes {
    /// The whole file of segment `s`.
    fn read(&self, s: &SegmentRow) -> Result<Vec<u8>>;
}

/// Writes the range as one MP4 file in memory.
pub fn export_mp4(
    catalog: &Catalog,
    video: &str,
    range: TimeRange,
    source: &dyn SegmentBytes,
) -> Result<Vec<u8>> {
    let segments = catalog.segments_between(video, range.start, range.end)?;
    let mut out = Vec::new();
    let mut writer: Option<Fmp4Writer> = None;
    let mut last_clip = None;
    for s in &segments {
        let bytes = source.read(s)?;
        // Only the fragments the catalog recorded (a file being written may have more).
        let bytes = bytes[..(s.bytes.max(0) as usize).min(bytes.len())].to_vec();
        let video_file = Mp4Video::from_bytes(bytes)?;
        let samples: Vec<_> = video_file.samples(s.start).collect::<Result<Vec<_>>>()?;
        // The key frame at or before the range start.
        let first = samples
            .iter()
            .rposition(|x| x.key_frame && x.pts <= range.start)
            .unwrap_or(0);
        for (i, mut sample) in samples.into_iter().enumerate().skip(first) {
            if sample.pts >= range.end {
                break;
            }
            if writer.is_none() {
                if !sample.key_frame {
                    continue;
                }
                let w = Fmp4Writer::new(sample.params.clone(), sample.dts, None);
                out.extend_from_slice(&w.init_segment(sample.pts));
                writer = Some(w);
            } else if i == first && last_clip != Some(s.clip) {
                sample.discontinuity = true;
            }
            if let Some(w) = writer.as_mut()
                && let Some(fragment) = w.push(sample)
            {
                fragment.write_to(&mut out)?;
            }
        }
        last_clip = Some(s.clip);
    }
    let Some(mut w) = writer else {
        bail!("nothing recorded in that range");
    };
    if let Some(fragment) = w.finish(None) {
        fragment.write_to(&mut out)?;
    }
    Ok(out)
}
