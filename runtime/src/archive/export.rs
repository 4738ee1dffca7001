//! MP4 export of a video's UTC range: one fragmented MP4 file, cut on key frames (from the key
//! frame at or before the start to the last frame before the end), clips joined with the gap
//! between them kept on the timeline, and so are the gaps inside a clip (the frame before one is
//! not stretched over it).

use anyhow::{Result, bail};

use super::available::TimeRange;
use super::catalog::{CONTINUOUS_WITHIN, Catalog, FragmentRow, SegmentRow, resumes_after_gap};
use crate::media::fmp4::Fmp4Writer;
use crate::media::mp4_reader::Mp4Video;
use crate::media::time::MediaTime;

/// Bytes of a segment file, from the cache or the object store.
pub trait SegmentBytes {
    /// The whole file of segment `s`.
    fn read(&self, s: &SegmentRow) -> Result<Vec<u8>>;
}

/// What an export reads: the segments of the range, each with its fragments.
pub type ExportPlan = Vec<(SegmentRow, Vec<FragmentRow>)>;

/// The segments (and their fragments) of `video` overlapping `range`, read from the catalog.
pub fn plan_export(catalog: &Catalog, video: &str, range: TimeRange) -> Result<ExportPlan> {
    catalog
        .segments_between(video, range.start, range.end)?
        .into_iter()
        .map(|s| {
            let fragments = catalog.fragments(s.id)?;
            Ok((s, fragments))
        })
        .collect()
}

/// Writes the range of `plan` as one MP4 file in memory, reading the segments from `source`
/// (no catalog needed: it can run without holding one).
pub fn export_mp4(
    plan: &ExportPlan,
    range: TimeRange,
    source: &dyn SegmentBytes,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer: Option<Fmp4Writer> = None;
    let mut last_clip = None;
    let mut last_end: Option<MediaTime> = None;
    for (s, fragments) in plan {
        // Where media resumes after a gap inside the clip, by the catalog's fragments.
        let mut resumes = Vec::new();
        for f in fragments {
            if last_clip == Some(s.clip) && resumes_after_gap(last_end, f.start) {
                resumes.push(f.start);
            }
            last_end = Some(f.end);
        }
        let mut resumes = resumes.into_iter().peekable();
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
            let mut after_gap = false;
            while resumes
                .peek()
                .is_some_and(|r| sample.pts + CONTINUOUS_WITHIN >= *r)
            {
                resumes.next();
                after_gap = true;
            }
            if writer.is_none() {
                if !sample.key_frame {
                    continue;
                }
                let w = Fmp4Writer::new(sample.params.clone(), sample.dts, None);
                out.extend_from_slice(&w.init_segment(sample.pts));
                writer = Some(w);
            } else if (i == first && last_clip != Some(s.clip)) || after_gap {
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
