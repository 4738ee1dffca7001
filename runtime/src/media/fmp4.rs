//! Fragmented MP4 writer: an init segment (`ftyp` + `moov`), then one `prft` + `moof` + `mdat`
//! per GOP, or per second when GOPs are longer. Each fragment is written whole, so a file is
//! playable up to its last complete fragment while it is written and after a crash; the `prft`
//! box of each fragment records the UTC time of its first sample, and `mvhd` the UTC creation time.

use std::io::{IoSlice, Write};
use std::sync::Arc;

use bytes::Bytes;

use super::mp4_box::{PutBe, write_box, write_full_box};
use super::sample::{AudioParams, AudioSample, VideoParams, VideoSample};
use super::time::{MediaDuration, MediaTime};

/// Track timescale: 90 kHz, the RTP video clock.
pub const TIMESCALE: u32 = 90_000;
/// The compatible brand that marks files written by Vigil (the recovery scan trims only these).
pub const VIGIL_BRAND: &[u8; 4] = b"vgl1";
/// Longest fragment: a new one starts at a key frame, or after this much media.
pub const MAX_FRAGMENT: MediaDuration = MediaDuration::from_secs(1);

const SECONDS_1904_TO_1970: u64 = 2_082_844_800;
const SECONDS_1900_TO_1970: u64 = 2_208_988_800;

/// Builds one fMP4 file's bytes, fragment by fragment.
#[derive(Debug)]
pub struct Fmp4Writer {
    params: Arc<VideoParams>,
    audio: Option<Arc<AudioParams>>,
    pending_audio: Vec<AudioSample>,
    base: MediaTime,
    sequence: u32,
    pending: Vec<VideoSample>,
    last_duration: u32,
    samples_written: u64,
    /// Decode time (ticks) where the last written sample ends: no sample is written before it.
    written_end: Option<i64>,
}

impl Fmp4Writer {
    /// A writer whose decode time 0 is `base` (the first sample's decode time); with `audio`,
    /// the file gets a second (AAC) track.
    pub fn new(params: Arc<VideoParams>, base: MediaTime, audio: Option<Arc<AudioParams>>) -> Self {
        Self {
            params,
            audio,
            pending_audio: Vec::new(),
            base,
            sequence: 0,
            pending: Vec::new(),
            last_duration: TIMESCALE / 30,
            samples_written: 0,
            written_end: None,
        }
    }

    /// The stream parameters this file was started with.
    pub fn params(&self) -> &Arc<VideoParams> {
        &self.params
    }

    /// Samples emitted in finished fragments so far.
    pub fn samples_written(&self) -> u64 {
        self.samples_written
    }

    /// `ftyp` + `moov` for this stream, created at UTC `created`.
    pub fn init_segment(&self, created: MediaTime) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        write_box(&mut out, b"ftyp", |b| {
            b.extend_from_slice(b"isom");
            b.u32(0x200);
            for brand in [b"isom", b"iso6", b"mp41", VIGIL_BRAND] {
                b.extend_from_slice(brand);
            }
        });
        let secs = u64::try_from(created.as_nanos() / 1_000_000_000).unwrap_or(0);
        let mp4_time = (secs + SECONDS_1904_TO_1970) as u32;
        let p = &self.params;
        write_box(&mut out, b"moov", |b| {
            write_full_box(b, b"mvhd", 0, 0, |b| {
                b.u32(mp4_time);
                b.u32(mp4_time);
                b.u32(1000);
                b.u32(0);
                b.u32(0x0001_0000);
                b.u16(0x0100);
                b.extend_from_slice(&[0; 10]);
                put_matrix(b);
                b.extend_from_slice(&[0; 24]);
                b.u32(3);
            });
            write_box(b, b"trak", |b| {
                write_full_box(b, b"tkhd", 0, 3, |b| {
                    b.u32(mp4_time);
                    b.u32(mp4_time);
                    b.u32(1);
                    b.u32(0);
                    b.u32(0);
                    b.extend_from_slice(&[0; 8]);
                    b.u16(0);
                    b.u16(0);
                    b.u16(0);
                    b.u16(0);
                    put_matrix(b);
                    b.u32(p.width << 16);
                    b.u32(p.height << 16);
                });
                write_box(b, b"mdia", |b| {
                    write_full_box(b, b"mdhd", 0, 0, |b| {
                        b.u32(mp4_time);
                        b.u32(mp4_time);
                        b.u32(TIMESCALE);
                        b.u32(0);
                        b.u16(0x55c4); // "und"
                        b.u16(0);
                    });
                    write_full_box(b, b"hdlr", 0, 0, |b| {
                        b.u32(0);
                        b.extend_from_slice(b"vide");
                        b.extend_from_slice(&[0; 12]);
                        b.extend_from_slice(b"Vigil video\0");
                    });
                    write_box(b, b"minf", |b| {
                        write_full_box(b, b"vmhd", 0, 1, |b| b.extend_from_slice(&[0; 8]));
                        write_data_and_sample_table(b, &p.sample_entry);
                    });
                });
            });
            if let Some(a) = &self.audio {
                write_audio_trak(b, a, mp4_time);
            }
            write_box(b, b"mvex", |b| {
                let tracks = if self.audio.is_some() { 2 } else { 1 };
                for track in 1..=tracks {
                    write_full_box(b, b"trex", 0, 0, |b| {
                        b.u32(track);
                        b.u32(1);
                        b.u32(0);
                        b.u32(0);
                        b.u32(0);
                    });
                }
            });
        });
        out
    }

    /// Adds a sample (in decode order). Returns a finished fragment when this sample begins the
    /// next one: at a key frame, after [`MAX_FRAGMENT`] of media, or after a discontinuity.
    pub fn push(&mut self, sample: VideoSample) -> Option<Fragment> {
        let boundary = match self.pending.first() {
            None => false,
            Some(first) => {
                sample.key_frame || sample.discontinuity || sample.dts - first.dts >= MAX_FRAGMENT
            }
        };
        let fragment = if boundary {
            let next = (!sample.discontinuity).then_some(sample.dts);
            self.flush(next)
        } else {
            None
        };
        self.pending.push(sample);
        fragment
    }

    /// Adds an audio frame; it goes out with the video fragment it falls in. Frames before the
    /// file's start, or when the file has no audio track, are ignored.
    pub fn push_audio(&mut self, sample: AudioSample) {
        if self
            .audio
            .as_ref()
            .is_some_and(|a| a.clock_rate == sample.params.clock_rate)
            && sample.pts >= self.base
        {
            self.pending_audio.push(sample);
        }
    }

    /// Ends the file: returns the last fragment. Its last sample lasts until `end` when given
    /// (and later than the sample) and no more than two frame intervals away, else as long as
    /// the sample before it: a clip that ends while the camera is away does not show its last
    /// frame until the clip's end.
    pub fn finish(&mut self, end: Option<MediaTime>) -> Option<Fragment> {
        let last = self.pending.last().map(|s| s.dts);
        let frame = MediaDuration::from_nanos(
            i64::from(self.last_duration) * 1_000_000_000 / i64::from(TIMESCALE),
        );
        let end = end.filter(|e| last.is_some_and(|l| *e <= l + frame + frame));
        self.flush(end)
    }

    /// `t` in ticks of the track, rounded to the nearest: a time read back from ticks (replay
    /// reads them as whole nanoseconds, a little less) comes back to the same tick.
    fn ticks(&self, t: MediaTime) -> i64 {
        let nanos = i128::from((t - self.base).as_nanos());
        (nanos * i128::from(TIMESCALE) + 500_000_000).div_euclid(1_000_000_000) as i64
    }

    fn flush(&mut self, next_dts: Option<MediaTime>) -> Option<Fragment> {
        if self.pending.is_empty() {
            return None;
        }
        let samples = std::mem::take(&mut self.pending);
        // Decode times as the samples give them, but strictly increasing and never before what
        // is already written: a timestamp out of order (a camera's glitch) moves that sample up
        // to just after its predecessor, so the timeline never drifts by more than the glitch.
        // (Giving it the previous duration instead let one outlier grow the drift frame by
        // frame, seconds per fragment.)
        let mut times: Vec<i64> = samples.iter().map(|s| self.ticks(s.dts)).collect();
        let mut floor = self.written_end.unwrap_or(0);
        for t in times.iter_mut() {
            if *t < floor {
                *t = floor;
            }
            floor = t.saturating_add(1);
        }
        let mut durations = Vec::with_capacity(samples.len());
        for (i, t) in times.iter().enumerate() {
            let d = match times.get(i + 1) {
                Some(next) => next - t,
                None => next_dts
                    .map(|n| self.ticks(n).max(t + 1) - t)
                    .filter(|d| *d < i64::from(u32::MAX))
                    .unwrap_or(i64::from(self.last_duration)),
            };
            let d = u32::try_from(d.clamp(1, i64::from(u32::MAX))).unwrap_or(1);
            // A typical frame duration for a last sample with nothing after it: the true one.
            let true_delta = samples
                .get(i + 1)
                .map(|n| self.ticks(n.dts) - self.ticks(samples[i].dts));
            if let Some(delta) = true_delta.filter(|d| *d > 0 && *d < i64::from(TIMESCALE)) {
                self.last_duration = delta as u32;
            }
            durations.push(d);
        }
        if let (Some(last), Some(d)) = (times.last(), durations.last()) {
            self.written_end = Some(last.saturating_add(i64::from(*d)));
        }
        self.sequence += 1;
        self.samples_written += samples.len() as u64;
        let first = &samples[0];
        let base_decode = times[0].max(0) as u64;
        let mut out = Vec::with_capacity(512 + 16 * samples.len());
        // prft: UTC (NTP format) of the fragment's first sample, and its decode time.
        write_full_box(&mut out, b"prft", 1, 0, |b| {
            b.u32(1);
            b.u64(ntp_timestamp(first.dts));
            b.u64(base_decode);
        });
        // Audio up to the end of this fragment travels with it.
        let fragment_end = next_dts.or_else(|| samples.last().map(|s| s.dts));
        let split = self
            .pending_audio
            .iter()
            .position(|a| fragment_end.is_some_and(|e| a.pts >= e) && next_dts.is_some())
            .unwrap_or(self.pending_audio.len());
        let audio: Vec<AudioSample> = self.pending_audio.drain(..split).collect();
        let audio_rate = self.audio.as_ref().map(|a| a.clock_rate).unwrap_or(48_000);
        let audio_ticks = |t: MediaTime| -> u64 {
            let nanos = i128::from((t - self.base).as_nanos()).max(0);
            (nanos * i128::from(audio_rate) / 1_000_000_000) as u64
        };
        let moof_start = out.len();
        let mut data_offset_at = 0;
        let mut audio_offset_at = None;
        write_box(&mut out, b"moof", |b| {
            write_full_box(b, b"mfhd", 0, 0, |b| b.u32(self.sequence));
            write_box(b, b"traf", |b| {
                write_full_box(b, b"tfhd", 0, 0x02_0000, |b| b.u32(1));
                write_full_box(b, b"tfdt", 1, 0, |b| b.u64(base_decode));
                write_full_box(b, b"trun", 1, 0x0000_0f01, |b| {
                    b.u32(samples.len() as u32);
                    data_offset_at = b.len();
                    b.u32(0);
                    for (s, d) in samples.iter().zip(&durations) {
                        b.u32(*d);
                        b.u32(s.len() as u32);
                        b.u32(if s.key_frame {
                            0x0200_0000
                        } else {
                            0x0101_0000
                        });
                        let cto = self.ticks(s.pts) - self.ticks(s.dts);
                        b.u32(cto.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32 as u32);
                    }
                });
            });
            if let Some(first_audio) = audio.first() {
                write_box(b, b"traf", |b| {
                    write_full_box(b, b"tfhd", 0, 0x02_0000, |b| b.u32(2));
                    write_full_box(b, b"tfdt", 1, 0, |b| b.u64(audio_ticks(first_audio.pts)));
                    write_full_box(b, b"trun", 0, 0x0000_0301, |b| {
                        b.u32(audio.len() as u32);
                        audio_offset_at = Some(b.len());
                        b.u32(0);
                        for a in &audio {
                            b.u32(a.frames);
                            b.u32(a.data.len() as u32);
                        }
                    });
                });
            }
        });
        let moof_len = out.len() - moof_start;
        let video_bytes: usize = samples.iter().map(|s| s.len()).sum();
        let audio_bytes: usize = audio.iter().map(|a| a.data.len()).sum();
        let data_offset = (moof_len + 8) as u32;
        out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
        if let Some(at) = audio_offset_at {
            let offset = data_offset + video_bytes as u32;
            out[at..at + 4].copy_from_slice(&offset.to_be_bytes());
        }
        out.u32((video_bytes + audio_bytes + 8) as u32);
        out.extend_from_slice(b"mdat");
        let payload = samples
            .into_iter()
            .map(|s| s.data)
            .chain(audio.into_iter().map(|a| a.data))
            .collect();
        Some(Fragment { head: out, payload })
    }
}

/// A finished fragment: its boxes up to the mdat header, then the samples' bytes as they came
/// from the camera. It is written with one vectored write, never copied into one buffer.
#[derive(Debug)]
pub struct Fragment {
    head: Vec<u8>,
    payload: Vec<Bytes>,
}

impl Fragment {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.payload.iter().map(Bytes::len).sum::<usize>()
    }

    /// Whether it has no bytes (never, for a fragment the writer made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its bytes, in order, in pieces.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.head.as_slice()).chain(self.payload.iter().map(|b| b.as_ref()))
    }

    /// Writes all of it, with as few (vectored) writes as the writer takes.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = self.parts().map(IoSlice::new).collect();
        let mut rest = slices.as_mut_slice();
        while !rest.is_empty() {
            match w.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn write_audio_trak(b: &mut Vec<u8>, a: &AudioParams, mp4_time: u32) {
    write_box(b, b"trak", |b| {
        write_full_box(b, b"tkhd", 0, 3, |b| {
            b.u32(mp4_time);
            b.u32(mp4_time);
            b.u32(2);
            b.u32(0);
            b.u32(0);
            b.extend_from_slice(&[0; 8]);
            b.u16(0);
            b.u16(1);
            b.u16(0x0100);
            b.u16(0);
            put_matrix(b);
            b.u32(0);
            b.u32(0);
        });
        write_box(b, b"mdia", |b| {
            write_full_box(b, b"mdhd", 0, 0, |b| {
                b.u32(mp4_time);
                b.u32(mp4_time);
                b.u32(a.clock_rate);
                b.u32(0);
                b.u16(0x55c4);
                b.u16(0);
            });
            write_full_box(b, b"hdlr", 0, 0, |b| {
                b.u32(0);
                b.extend_from_slice(b"soun");
                b.extend_from_slice(&[0; 12]);
                b.extend_from_slice(b"Vigil audio\0");
            });
            write_box(b, b"minf", |b| {
                write_full_box(b, b"smhd", 0, 0, |b| b.u32(0));
                write_data_and_sample_table(b, &a.sample_entry);
            });
        });
    });
}

/// `dinf` (self-contained data) and an empty `stbl` around `sample_entry`: the part of a
/// fragmented file's `minf` that video and audio tracks share (samples live in fragments).
fn write_data_and_sample_table(b: &mut Vec<u8>, sample_entry: &[u8]) {
    write_box(b, b"dinf", |b| {
        write_full_box(b, b"dref", 0, 0, |b| {
            b.u32(1);
            write_full_box(b, b"url ", 0, 1, |_| {});
        });
    });
    write_box(b, b"stbl", |b| {
        write_full_box(b, b"stsd", 0, 0, |b| {
            b.u32(1);
            b.extend_from_slice(sample_entry);
        });
        write_full_box(b, b"stts", 0, 0, |b| b.u32(0));
        write_full_box(b, b"stsc", 0, 0, |b| b.u32(0));
        write_full_box(b, b"stsz", 0, 0, |b| {
            b.u32(0);
            b.u32(0);
        });
        write_full_box(b, b"stco", 0, 0, |b| b.u32(0));
    });
}

fn put_matrix(b: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        b.u32(v);
    }
}

/// A UTC instant as a 64-bit NTP timestamp (seconds since 1900 and a 32-bit fraction).
pub fn ntp_timestamp(t: MediaTime) -> u64 {
    let nanos = t.as_nanos();
    let secs = nanos.div_euclid(1_000_000_000) as u64 + SECONDS_1900_TO_1970;
    let frac = ((nanos.rem_euclid(1_000_000_000) as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The UTC instant of a 64-bit NTP timestamp.
pub fn from_ntp_timestamp(ntp: u64) -> MediaTime {
    let secs = (ntp >> 32) as i64 - SECONDS_1900_TO_1970 as i64;
    let frac = ((ntp & 0xffff_ffff) * 1_000_000_000 + (1 << 31)) >> 32;
    MediaTime::from_nanos(secs * 1_000_000_000 + frac as i64)
}
