//! Decoding for the nodes that need pixels (motion detection, custom frame filters): FFmpeg's
//! libavcodec (loaded when the first decoder is made, see [`super::av`]), H.264 and H.265, once
//! per source. Samples arrive in ISO BMFF
//! framing; they are turned into Annex B with the parameter sets of the sample entry in front of
//! each key frame, so no unsafe extradata handling is needed. Frames come out as an 8-bit luma
//! plane (and RGB on request) scaled to the size a consumer asks for.

use anyhow::{Context, Result, anyhow, bail};

use super::av::{Codec, CodecContext, Frame, Pixel, ScaleFlags, Scaler};

use super::image::Content;
use super::mp4_box::children;
use super::sample::{VideoCodec, VideoParams, VideoSample};
use super::time::MediaTime;
use super::yuv_image::Yuv420;

/// A decoded frame, scaled.
#[derive(Clone, Debug)]
pub struct DecodedFrame {
    /// Media time of the frame.
    pub pts: MediaTime,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The decoded picture's size before scaling.
    pub source_width: u32,
    /// See `source_width`.
    pub source_height: u32,
    /// 8-bit luma, `width * height` bytes, rows packed.
    pub luma: Vec<u8>,
    /// Interleaved RGB, `width * height * 3` bytes, when asked for.
    pub rgb: Option<Vec<u8>>,
}

/// One video decoder and its scalers.
pub struct Decoder {
    decoder: CodecContext,
    params: VideoParams,
    parameter_sets: Vec<u8>,
    scalers: Scalers,
    pending: std::collections::VecDeque<MediaTime>,
    /// H.265: the highest sub-layer the SPS allows (7, above any, when no SPS says).
    top_temporal_id: u8,
}

/// How exactly a decoder must reproduce the pictures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fidelity {
    /// Bit-exact, as a player shows them (snapshots, images sent to inference services).
    Exact,
    /// For analysis that only compares frames (motion detection, frame filters): the deblocking
    /// loop filter is skipped and FFmpeg's non-conforming speed-ups are allowed. Block edges
    /// then stay a little sharper and the error grows a little along a GOP, far below what a
    /// motion threshold or a 320-pixel analysis sees; the in-loop filter is about a quarter of
    /// H.264 decoding at camera bitrates.
    Analysis,
}

impl Decoder {
    /// A bit-exact decoder for the stream described by `params`.
    pub fn new(params: &VideoParams) -> Result<Self> {
        Self::with_fidelity(params, Fidelity::Exact)
    }

    /// A decoder for the stream described by `params`, as exact as `fidelity` asks.
    pub fn with_fidelity(params: &VideoParams, fidelity: Fidelity) -> Result<Self> {
        let codec = match params.codec {
            VideoCodec::H264 => Codec::H264,
            VideoCodec::H265 => Codec::Hevc,
        };
        // One thread (the context's default): frames come out in the call that completes them.
        let decoder = CodecContext::decoder(codec, &mut |context| {
            if fidelity == Fidelity::Analysis {
                context.skip_loop_filter = ffmpeg_sys_next::AVDiscard::AVDISCARD_ALL;
                context.flags2 |= ffmpeg_sys_next::AV_CODEC_FLAG2_FAST;
            }
        })
        .context("cannot open the video decoder")?;
        let parameter_sets = parameter_sets(params)?;
        let top_temporal_id = split_annex_b(&parameter_sets)
            .filter_map(super::nal::h265_top_temporal_id)
            .max()
            .unwrap_or(7);
        Ok(Self {
            decoder,
            top_temporal_id,
            parameter_sets,
            params: params.clone(),
            scalers: Vec::new(),
            pending: Default::default(),
        })
    }

    /// True when no other picture references `sample`'s, so leaving it out of the decoder
    /// harms no other frame (see [`super::nal::is_non_reference`]).
    pub fn is_disposable(&self, sample: &VideoSample) -> bool {
        super::nal::is_non_reference(self.params.codec, &sample.data, self.top_temporal_id)
    }

    /// The stream this decoder was made for.
    pub fn params(&self) -> &VideoParams {
        &self.params
    }

    /// Decodes one sample; returns the frames it completed, with their media times. The frames
    /// stay on this thread (FFmpeg's types are not `Send`); scale them with [`Decoder::scale`].
    pub fn decode(&mut self, sample: &VideoSample) -> Result<Vec<(MediaTime, Frame)>> {
        let mut annex_b = Vec::with_capacity(sample.data.len() + self.parameter_sets.len());
        if sample.key_frame {
            annex_b.extend_from_slice(&self.parameter_sets);
        }
        for nal in super::nal::nal_units(&sample.data) {
            annex_b.extend_from_slice(&[0, 0, 0, 1]);
            annex_b.extend_from_slice(nal);
        }
        self.pending.push_back(sample.pts);
        self.decoder
            .send_packet(Some((&annex_b, sample.pts.as_nanos() / 1000)))
            .context("decoder rejected a packet")?;
        let out = self.receive(sample.pts);
        if self.pending.len() > 64 {
            self.pending.pop_front();
        }
        Ok(out)
    }

    /// Tells the decoder no more samples come; returns the frames it still held.
    pub fn flush(&mut self) -> Result<Vec<(MediaTime, Frame)>> {
        self.decoder
            .send_packet(None)
            .context("cannot flush the decoder")?;
        let last = self.pending.back().copied().unwrap_or_default();
        Ok(self.receive(last))
    }

    /// The frames the decoder has completed, with their media times (`fallback` for one that
    /// carries none and matches no pending sample).
    fn receive(&mut self, fallback: MediaTime) -> Vec<(MediaTime, Frame)> {
        let mut out = Vec::new();
        while let Ok(Some(frame)) = self.decoder.receive_frame() {
            let pts = frame
                .pts()
                .map(|us| MediaTime::from_nanos(us * 1000))
                .or_else(|| self.pending.front().copied())
                .unwrap_or(fallback);
            while self.pending.front().is_some_and(|p| *p <= pts) {
                self.pending.pop_front();
            }
            out.push((pts, frame));
        }
        out
    }

    /// Scales a decoded frame to `width` (height keeps the aspect ratio, rounded to even), with
    /// RGB when `rgb`. Scalers are kept per output size, so several consumers share a decode.
    pub fn scale(
        &mut self,
        frame: &Frame,
        pts: MediaTime,
        width: u32,
        rgb: bool,
    ) -> Result<DecodedFrame> {
        let (sw, sh) = (frame.width(), frame.height());
        let dw = width.clamp(16, sw.max(16)) & !1;
        let dh = ((u64::from(sh) * u64::from(dw) / u64::from(sw.max(1))) as u32).max(2) & !1;
        let luma = match box_factor(frame, dw, dh) {
            Some(k) => box_shrink(frame.data(0), frame.stride(0), sw as usize, sh as usize, k),
            None => run_scaler(
                &mut self.scalers,
                frame,
                Pixel::GRAY8,
                dw,
                dh,
                FILTER_QUALITY,
            )?,
        };
        let rgb = if rgb {
            Some(run_scaler(
                &mut self.scalers,
                frame,
                Pixel::RGB24,
                dw,
                dh,
                FILTER_QUALITY,
            )?)
        } else {
            None
        };
        Ok(DecodedFrame {
            pts,
            width: dw,
            height: dh,
            source_width: sw,
            source_height: sh,
            luma,
            rgb,
        })
    }
}

impl Decoder {
    /// Scales a decoded frame to exactly `width`×`height` packed RGB24 (for images sent to
    /// inference services; the caller keeps the aspect ratio as its scale mode says). Plain
    /// bilinear interpolation between the nearest source pixels, as OpenCV's `INTER_LINEAR`
    /// resize that detectors are usually fed with: a quarter of the cost of averaging every
    /// source pixel (1080p to 416 wide: ~0.4 ms against ~1.5 ms).
    pub fn scale_rgb(&mut self, frame: &Frame, width: u32, height: u32) -> Result<Vec<u8>> {
        run_scaler(
            &mut self.scalers,
            frame,
            Pixel::RGB24,
            width,
            height,
            ScaleFlags::FAST_BILINEAR,
        )
    }

    /// Scales a decoded frame to exactly `width`×`height` planar 4:2:0 in JPEG's full-range
    /// YCbCr (for JPEG images sent to inference services: no colour conversion on the way),
    /// with the same interpolation as [`Decoder::scale_rgb`].
    pub fn scale_yuv420(&mut self, frame: &Frame, width: u32, height: u32) -> Result<Yuv420> {
        let planes = run_scaler(
            &mut self.scalers,
            frame,
            Pixel::YUVJ420P,
            width,
            height,
            ScaleFlags::FAST_BILINEAR,
        )?;
        Yuv420::new(width, height, planes).ok_or_else(|| anyhow!("the scaler's planes do not fit"))
    }

    /// A decoded frame scaled to `width`×`height` as `content`, for an extension's image.
    pub fn scale_content(
        &mut self,
        frame: &Frame,
        width: u32,
        height: u32,
        yuv: bool,
    ) -> Result<Content> {
        Ok(if yuv {
            Content::Yuv420(self.scale_yuv420(frame, width, height)?)
        } else {
            Content::Rgb(self.scale_rgb(frame, width, height)?)
        })
    }
}

/// The whole factor `k` by which a planar 8-bit frame's luma shrinks to exactly `dw`×`dh`, when
/// there is one (1080p, 720p, 1440p or 360p to 320×180): then each output pixel is the mean of a
/// k×k block, read straight from the decoder's plane. That is the filter motion analysis wants
/// (all of the block, no aliasing of sensor noise), at a fraction of libswscale's cost for the
/// same size (its bilinear filter widened to the scale: ~7 % of the 1080p motion path).
fn box_factor(frame: &Frame, dw: u32, dh: u32) -> Option<usize> {
    let planar_8bit = matches!(
        frame.format(),
        Pixel::YUV420P | Pixel::YUVJ420P | Pixel::YUV422P | Pixel::YUVJ422P | Pixel::NV12
    );
    let (sw, sh) = (frame.width(), frame.height());
    let k = sw / dw.max(1);
    (planar_8bit && (2..=64).contains(&k) && dw * k == sw && dh * k == sh).then_some(k as usize)
}

/// The luma plane `plane` (`height` rows `stride` apart, `width` used) shrunk by `k` in both
/// directions, each output pixel the rounded mean of its k×k block.
fn box_shrink(plane: &[u8], stride: usize, width: usize, height: usize, k: usize) -> Vec<u8> {
    let (dw, dh) = (width / k, height / k);
    let mean = BlockMean::new(k);
    let mut sums = vec![0u16; width];
    let mut out = Vec::with_capacity(dw * dh);
    for block_row in 0..dh {
        sums.fill(0);
        for r in 0..k {
            let at = (block_row * k + r) * stride;
            let Some(row) = plane.get(at..at + width) else {
                break;
            };
            // k ≤ 64 rows of at most 255 each fit a u16.
            for (sum, &p) in sums.iter_mut().zip(row) {
                *sum += u16::from(p);
            }
        }
        out.extend(
            sums.chunks_exact(k)
                .take(dw)
                .map(|block| mean.of(block.iter().map(|&v| u32::from(v)).sum())),
        );
    }
    out
}

/// The rounded mean of a k×k block from its total, by a multiplication instead of a division
/// (a division per output pixel was most of the shrink's cost): exact for every total a block
/// of 8-bit samples can have.
struct BlockMean {
    half: u64,
    reciprocal: u64,
}

impl BlockMean {
    fn new(k: usize) -> Self {
        let area = (k * k) as u64;
        Self {
            half: area / 2,
            reciprocal: (1u64 << 32).div_ceil(area),
        }
    }

    fn of(&self, total: u32) -> u8 {
        (((u64::from(total) + self.half) * self.reciprocal) >> 32) as u8
    }
}

/// The scaling of frames that frame filters analyse: bilinear with the filter widened to the
/// scale (an average of the source pixels each output pixel covers).
const FILTER_QUALITY: ScaleFlags = ScaleFlags::BILINEAR;

/// Scalers by (input format, input size, output format, output size, flags).
type ScalerKey = (Pixel, u32, u32, Pixel, u32, u32, u32);
type Scalers = Vec<(ScalerKey, Scaler)>;

fn run_scaler(
    scalers: &mut Scalers,
    frame: &Frame,
    to: Pixel,
    dw: u32,
    dh: u32,
    flags: ScaleFlags,
) -> Result<Vec<u8>> {
    let key = (
        frame.format(),
        frame.width(),
        frame.height(),
        to,
        dw,
        dh,
        flags.bits(),
    );
    let index = match scalers.iter().position(|(k, _)| *k == key) {
        Some(i) => i,
        None => {
            let ctx = Scaler::new((key.0, key.1, key.2), (to, dw, dh), flags)
                .context("cannot create a scaler")?;
            if scalers.len() >= 8 {
                scalers.remove(0);
            }
            scalers.push((key, ctx));
            scalers.len() - 1
        }
    };
    let ctx = &mut scalers[index].1;
    let out = ctx.run(frame).context("scaling failed")?;
    let (w, h) = (dw as usize, dh as usize);
    // (bytes per row, rows) of each plane.
    let planes: &[(usize, usize)] = match to {
        Pixel::RGB24 => &[(w * 3, h)],
        Pixel::YUVJ420P => &[
            (w, h),
            (w.div_ceil(2), h.div_ceil(2)),
            (w.div_ceil(2), h.div_ceil(2)),
        ],
        _ => &[(w, h)],
    };
    let mut packed = Vec::with_capacity(planes.iter().map(|(r, n)| r * n).sum());
    for (plane, &(row, rows)) in planes.iter().enumerate() {
        let (stride, data) = (out.stride(plane), out.data(plane));
        for y in 0..rows {
            packed.extend_from_slice(&data[y * stride..y * stride + row]);
        }
    }
    Ok(packed)
}

/// The NAL units of an Annex B buffer made by [`parameter_sets`] (4-byte start codes; a NAL
/// unit never holds `00 00 01`, emulation prevention sees to that).
fn split_annex_b(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let body = rest.strip_prefix(&[0, 0, 0, 1])?;
        let end = body
            .windows(4)
            .position(|w| w == [0, 0, 0, 1])
            .unwrap_or(body.len());
        rest = &body[end..];
        Some(&body[..end])
    })
}

/// The parameter sets of a sample entry (avcC or hvcC), in Annex B.
fn parameter_sets(params: &VideoParams) -> Result<Vec<u8>> {
    let entry = params.sample_entry.get(8 + 78..).unwrap_or_default();
    let boxes = children(entry);
    let mut out = Vec::new();
    let mut push = |nal: &[u8]| {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    };
    let be16 = |b: &[u8], at: usize| {
        b.get(at..at + 2)
            .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
    };
    if let Some((_, c)) = boxes.iter().find(|(b, _)| &b.kind == b"avcC") {
        let mut at = 5;
        for _ in 0..2 {
            let count = usize::from(*c.get(at).unwrap_or(&0) & if at == 5 { 0x1f } else { 0xff });
            at += 1;
            for _ in 0..count {
                let len = be16(c, at).ok_or_else(|| anyhow!("truncated avcC"))?;
                push(
                    c.get(at + 2..at + 2 + len)
                        .ok_or_else(|| anyhow!("truncated avcC"))?,
                );
                at += 2 + len;
            }
        }
    } else if let Some((_, c)) = boxes.iter().find(|(b, _)| &b.kind == b"hvcC") {
        let arrays = usize::from(*c.get(22).unwrap_or(&0));
        let mut at = 23;
        for _ in 0..arrays {
            let count = be16(c, at + 1).ok_or_else(|| anyhow!("truncated hvcC"))?;
            at += 3;
            for _ in 0..count {
                let len = be16(c, at).ok_or_else(|| anyhow!("truncated hvcC"))?;
                push(
                    c.get(at + 2..at + 2 + len)
                        .ok_or_else(|| anyhow!("truncated hvcC"))?,
                );
                at += 2 + len;
            }
        }
    } else {
        bail!("the sample entry has no avcC or hvcC box");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::box_shrink;

    #[test]
    fn each_output_pixel_is_the_rounded_mean_of_its_block() {
        // 4×4 used of rows 6 apart (2 bytes of padding each, 99, never read).
        let plane: Vec<u8> = [
            [0, 2, 10, 10, 99, 99],
            [4, 6, 10, 11, 99, 99],
            [255, 255, 1, 2, 99, 99],
            [255, 254, 3, 4, 99, 99],
        ]
        .concat();
        assert_eq!(box_shrink(&plane, 6, 4, 4, 2), vec![3, 10, 255, 3]);
        // The 16 values sum to 1082: (1082 + 8) / 16.
        assert_eq!(box_shrink(&plane, 6, 4, 4, 4), vec![68]);
    }

    #[test]
    fn the_multiplied_mean_is_the_divided_one_for_every_total() {
        for k in 2..=64usize {
            let area = (k * k) as u32;
            let mean = super::BlockMean::new(k);
            for total in 0..=255 * area {
                assert_eq!(
                    u32::from(mean.of(total)),
                    (total + area / 2) / area,
                    "k {k} total {total}"
                );
            }
        }
    }
}
