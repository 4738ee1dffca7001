//! Reads the video track of an MP4 file (progressive or fragmented) into samples on the UTC media
//! timeline, for `vigil replay`. The whole file is read into memory: replay inputs are clips.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;

use super::fmp4::from_ntp_timestamp;
use super::mp4_box::{child, children};
use super::nal::is_random_access;
use super::sample::{VideoCodec, VideoParams, VideoSample};
use super::time::MediaTime;

const SECONDS_1904_TO_1970: i64 = 2_082_844_800;

/// The video track of an MP4 file.
pub struct Mp4Video {
    /// Stream parameters (sample entry copied from the file).
    pub params: Arc<VideoParams>,
    /// UTC time of the first sample as recorded in the file (`prft`, else `mvhd` creation time).
    pub recorded_start: Option<MediaTime>,
    timescale: u32,
    samples: Vec<SampleInfo>,
    data: Bytes,
}

#[derive(Clone, Copy, Debug)]
struct SampleInfo {
    dts: i64,
    cto: i64,
    offset: u64,
    size: u32,
}

impl Mp4Video {
    /// Opens `path` and indexes its first video track.
    pub fn open(path: &Path) -> Result<Self> {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(Bytes::from(data))
            .with_context(|| format!("{}: not a readable MP4", path.display()))
    }

    /// Indexes an MP4 file already in memory.
    pub fn from_bytes(data: Vec<u8>) -> Result<Self> {
        Self::parse(Bytes::from(data)).context("not a readable MP4")
    }

    fn parse(data: Bytes) -> Result<Self> {
        let top = children(&data);
        let moov = top
            .iter()
            .find(|(b, _)| &b.kind == b"moov")
            .map(|(_, body)| *body)
            .ok_or_else(|| anyhow!("no moov box"))?;
        let mut recorded_start = child(moov, b"mvhd").and_then(|m| {
            let secs = match m.first()? {
                1 => i64::try_from(be64(m, 4)?).ok()?,
                _ => i64::from(be32(m, 4)?),
            };
            (secs > SECONDS_1904_TO_1970).then(|| MediaTime::from_secs(secs - SECONDS_1904_TO_1970))
        });
        let (track_id, trak) = children(moov)
            .into_iter()
            .filter(|(b, _)| &b.kind == b"trak")
            .find_map(|(_, trak)| {
                let mdia = child(trak, b"mdia")?;
                let hdlr = child(mdia, b"hdlr")?;
                (hdlr.get(8..12)? == b"vide").then_some(trak)
            })
            .map(|trak| {
                (
                    child(trak, b"tkhd").and_then(track_id_of).unwrap_or(1),
                    trak,
                )
            })
            .ok_or_else(|| anyhow!("no video track"))?;
        let mdia = child(trak, b"mdia").ok_or_else(|| anyhow!("no mdia"))?;
        let mdhd = child(mdia, b"mdhd").ok_or_else(|| anyhow!("no mdhd"))?;
        let timescale = match mdhd.first() {
            Some(1) => be32(mdhd, 20),
            _ => be32(mdhd, 12),
        }
        .filter(|t| *t > 0)
        .ok_or_else(|| anyhow!("bad mdhd timescale"))?;
        let stbl = child(mdia, b"minf")
            .and_then(|m| child(m, b"stbl"))
            .ok_or_else(|| anyhow!("no stbl"))?;
        let params = Arc::new(read_sample_entry(stbl)?);
        let mut samples = read_progressive(stbl, data.len())?;
        if samples.is_empty() {
            let (frag, prft) = read_fragments(&top, track_id, data.len())?;
            samples = frag;
            recorded_start = prft.or(recorded_start);
        }
        if samples.is_empty() {
            bail!("the video track has no samples");
        }
        Ok(Self {
            params,
            recorded_start,
            timescale,
            samples,
            data,
        })
    }

    /// Number of video samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the track has no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples in decode order, the first decoded at UTC `start`.
    pub fn samples(&self, start: MediaTime) -> impl Iterator<Item = Result<VideoSample>> + '_ {
        let origin = self.samples.first().map(|s| s.dts).unwrap_or(0);
        let to_time = move |ticks: i64| {
            let nanos = i128::from(ticks - origin) * 1_000_000_000 / i128::from(self.timescale);
            start + crate::media::time::MediaDuration::from_nanos(nanos as i64)
        };
        self.samples.iter().map(move |s| {
            let begin = usize::try_from(s.offset)?;
            let end = begin + s.size as usize;
            if end > self.data.len() {
                bail!(
                    "sample at offset {} runs past the end of the file",
                    s.offset
                );
            }
            let data = self.data.slice(begin..end);
            Ok(VideoSample {
                pts: to_time(s.dts + s.cto),
                dts: to_time(s.dts),
                key_frame: is_random_access(self.params.codec, &data),
                data,
                params: self.params.clone(),
                discontinuity: false,
            })
        })
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The entry count of a full box's table (`count` at offset 4, entries of `entry` bytes from
/// offset 8), no more than the box can hold: a hostile count of four billion in a tiny box
/// made the reader loop for minutes.
fn table_len(b: &[u8], entry: usize) -> usize {
    (be32(b, 4).unwrap_or(0) as usize).min(b.len().saturating_sub(8) / entry)
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some((u64::from(be32(b, at)?) << 32) | u64::from(be32(b, at + 4)?))
}

fn track_id_of(tkhd: &[u8]) -> Option<u32> {
    match tkhd.first()? {
        1 => be32(tkhd, 20),
        _ => be32(tkhd, 12),
    }
}

fn read_sample_entry(stbl: &[u8]) -> Result<VideoParams> {
    let stsd = child(stbl, b"stsd").ok_or_else(|| anyhow!("no stsd"))?;
    let entries = children(stsd.get(8..).unwrap_or_default());
    let (entry, body) = entries.first().ok_or_else(|| anyhow!("empty stsd"))?;
    let codec = match &entry.kind {
        b"avc1" | b"avc3" => VideoCodec::H264,
        b"hvc1" | b"hev1" => VideoCodec::H265,
        other => bail!(
            "video codec {} is not H.264 or H.265",
            String::from_utf8_lossy(other)
        ),
    };
    let width = body
        .get(24..26)
        .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
        .unwrap_or(0);
    let height = body
        .get(26..28)
        .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
        .unwrap_or(0);
    let config = children(body.get(78..).unwrap_or_default());
    let rfc6381_codec = match codec {
        VideoCodec::H264 => config
            .iter()
            .find(|(b, _)| &b.kind == b"avcC")
            .and_then(|(_, c)| c.get(1..4))
            .map(|p| format!("avc1.{:02X}{:02X}{:02X}", p[0], p[1], p[2]))
            .unwrap_or_else(|| "avc1".into()),
        VideoCodec::H265 => "hvc1".into(),
    };
    // Entries follow the full-box header and the entry count (8 bytes into the stsd body).
    let (start, end) = (8 + entry.start as usize, 8 + entry.end as usize);
    let sample_entry = stsd
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| anyhow!("bad sample entry"))?;
    Ok(VideoParams {
        codec,
        width,
        height,
        rfc6381_codec,
        sample_entry,
    })
}

/// Most samples a file is read for: no table may make the reader allocate more than the file
/// could hold (a hostile count of 4 billion took memory without bound).
pub const MAX_SAMPLES: usize = 10_000_000;

fn read_progressive(stbl: &[u8], file_len: usize) -> Result<Vec<SampleInfo>> {
    let Some(stsz) = child(stbl, b"stsz") else {
        return Ok(Vec::new());
    };
    let fixed = be32(stsz, 4).unwrap_or(0);
    let count = be32(stsz, 8).unwrap_or(0) as usize;
    if count == 0 {
        return Ok(Vec::new());
    }
    if count > MAX_SAMPLES.min(file_len) {
        bail!(
            "stsz claims {count} samples, more than the file can hold (at most {MAX_SAMPLES} are read)"
        );
    }
    let sizes: Vec<u32> = (0..count)
        .map(|i| {
            if fixed != 0 {
                Some(fixed)
            } else {
                be32(stsz, 12 + 4 * i)
            }
        })
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow!("truncated stsz"))?;
    let chunk_offsets: Vec<u64> = if let Some(stco) = child(stbl, b"stco") {
        let n = table_len(stco, 4);
        (0..n)
            .filter_map(|i| be32(stco, 8 + 4 * i).map(u64::from))
            .collect()
    } else if let Some(co64) = child(stbl, b"co64") {
        let n = table_len(co64, 8);
        (0..n).filter_map(|i| be64(co64, 8 + 8 * i)).collect()
    } else {
        bail!("no chunk offsets");
    };
    let stsc = child(stbl, b"stsc").ok_or_else(|| anyhow!("no stsc"))?;
    let runs: Vec<(u32, u32)> = (0..table_len(stsc, 12))
        .filter_map(|i| Some((be32(stsc, 8 + 12 * i)?, be32(stsc, 12 + 12 * i)?)))
        .collect();
    let mut offsets = Vec::with_capacity(count);
    for (chunk_index, chunk_offset) in chunk_offsets.iter().enumerate() {
        let chunk = chunk_index as u32 + 1;
        let per_chunk = runs
            .iter()
            .rev()
            .find(|(first, _)| *first <= chunk)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        let mut at = *chunk_offset;
        for _ in 0..per_chunk {
            if offsets.len() == count {
                break;
            }
            offsets.push(at);
            at = at.saturating_add(u64::from(sizes[offsets.len() - 1]));
        }
    }
    let stts = child(stbl, b"stts").ok_or_else(|| anyhow!("no stts"))?;
    let mut dts = Vec::with_capacity(count);
    let mut t = 0i64;
    for i in 0..table_len(stts, 8) {
        if dts.len() >= count {
            break;
        }
        let (n, delta) = (
            be32(stts, 8 + 8 * i).unwrap_or(0),
            be32(stts, 12 + 8 * i).unwrap_or(0),
        );
        for _ in 0..n {
            if dts.len() >= count {
                break;
            }
            dts.push(t);
            t = t.saturating_add(i64::from(delta));
        }
    }
    let mut cto = vec![0i64; count];
    if let Some(ctts) = child(stbl, b"ctts") {
        let signed = ctts.first() == Some(&1);
        let mut i = 0usize;
        for e in 0..table_len(ctts, 8) {
            if i >= count {
                break;
            }
            let n = be32(ctts, 8 + 8 * e).unwrap_or(0);
            let raw = be32(ctts, 12 + 8 * e).unwrap_or(0);
            let off = if signed {
                i64::from(raw as i32)
            } else {
                i64::from(raw)
            };
            for _ in 0..n {
                let Some(c) = cto.get_mut(i) else { break };
                *c = off;
                i += 1;
            }
        }
    }
    if offsets.len() != count || dts.len() < count {
        bail!(
            "sample tables disagree ({count} sizes, {} offsets, {} times)",
            offsets.len(),
            dts.len()
        );
    }
    Ok((0..count)
        .map(|i| SampleInfo {
            dts: dts[i],
            cto: cto[i],
            offset: offsets[i],
            size: sizes[i],
        })
        .collect())
}

type Fragments = (Vec<SampleInfo>, Option<MediaTime>);

fn read_fragments(
    top: &[(super::mp4_box::BoxRef, &[u8])],
    track_id: u32,
    file_len: usize,
) -> Result<Fragments> {
    // A sample takes at least a byte of the file.
    let cap = MAX_SAMPLES.min(file_len);
    let mut out = Vec::new();
    let mut first_prft = None;
    let mut next_dts = 0i64;
    for (b, body) in top {
        if &b.kind == b"prft" && first_prft.is_none() {
            first_prft = be64(body, 8).map(from_ntp_timestamp);
        }
        if &b.kind != b"moof" {
            continue;
        }
        for (_, traf) in children(body)
            .into_iter()
            .filter(|(t, _)| &t.kind == b"traf")
        {
            let Some(tfhd) = child(traf, b"tfhd") else {
                continue;
            };
            let flags = be32(tfhd, 0).unwrap_or(0) & 0xff_ffff;
            if be32(tfhd, 4) != Some(track_id) {
                continue;
            }
            let mut at = 8;
            let mut base = b.start;
            if flags & 0x1 != 0 {
                base = be64(tfhd, at).unwrap_or(b.start);
                at += 8;
            }
            if flags & 0x2 != 0 {
                at += 4;
            }
            let mut default_duration = 0;
            if flags & 0x8 != 0 {
                default_duration = be32(tfhd, at).unwrap_or(0);
                at += 4;
            }
            let default_size = if flags & 0x10 != 0 {
                be32(tfhd, at).unwrap_or(0)
            } else {
                0
            };
            if let Some(tfdt) = child(traf, b"tfdt") {
                next_dts = match tfdt.first() {
                    Some(1) => be64(tfdt, 4).map(|v| v as i64),
                    _ => be32(tfdt, 4).map(i64::from),
                }
                .unwrap_or(next_dts);
            }
            for (_, trun) in children(traf)
                .into_iter()
                .filter(|(t, _)| &t.kind == b"trun")
            {
                let tflags = be32(trun, 0).unwrap_or(0) & 0xff_ffff;
                let signed = trun.first() == Some(&1);
                let n = be32(trun, 4).unwrap_or(0) as usize;
                let mut p = 8;
                let mut offset = base;
                if tflags & 0x1 != 0 {
                    offset = (base as i64)
                        .saturating_add(i64::from(be32(trun, p).unwrap_or(0) as i32))
                        as u64;
                    p += 4;
                }
                if tflags & 0x4 != 0 {
                    p += 4;
                }
                for _ in 0..n {
                    if out.len() >= cap {
                        bail!("the fragments claim more samples than the file can hold");
                    }
                    let mut field = |bit: u32| {
                        if tflags & bit != 0 {
                            let v = be32(trun, p);
                            p += 4;
                            v
                        } else {
                            None
                        }
                    };
                    let duration = field(0x100).unwrap_or(default_duration);
                    let size = field(0x200).unwrap_or(default_size);
                    let _flags = field(0x400);
                    let cto = field(0x800)
                        .map(|v| {
                            if signed {
                                i64::from(v as i32)
                            } else {
                                i64::from(v)
                            }
                        })
                        .unwrap_or(0);
                    out.push(SampleInfo {
                        dts: next_dts,
                        cto,
                        offset,
                        size,
                    });
                    offset = offset.saturating_add(u64::from(size));
                    next_dts = next_dts.saturating_add(i64::from(duration));
                }
            }
        }
    }
    Ok((out, first_prft))
}
