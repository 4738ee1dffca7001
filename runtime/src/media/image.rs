//! Images for inference services (HttpExtension `image` property): where the source frame lands in
//! the requested image (scale modes pad / preserveAspectRatio / stretch), and the encodings AVA
//! offers (JPEG with a quality, PNG, BMP, raw pixels). Input is packed RGB24 of the content size,
//! which [`Decoder::scale_rgb`](super::decode::Decoder::scale_rgb) produces from a decoded frame.

use std::ffi::c_int;

use anyhow::{Context, Result, anyhow, bail};

use super::av::{Codec, CodecContext, Frame, Pixel, ScaleFlags, Scaler};
use super::yuv_image::Yuv420;
use crate::topology::model::{ImageFormat, ImageScale, ScaleMode};

/// Where the frame goes in the image sent: the image size and the content rectangle inside it
/// (the rest is black padding; only `pad` mode pads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Left of the content.
    pub content_x: u32,
    /// Top of the content.
    pub content_y: u32,
    /// Width of the content.
    pub content_width: u32,
    /// Height of the content.
    pub content_height: u32,
}

impl ImageLayout {
    /// The layout for a `source_width`×`source_height` frame under `scale` (none: source size).
    pub fn new(source_width: u32, source_height: u32, scale: Option<&ImageScale>) -> Self {
        let (sw, sh) = (source_width.max(1), source_height.max(1));
        let full = |w: u32, h: u32| Self {
            width: w,
            height: h,
            content_x: 0,
            content_y: 0,
            content_width: w,
            content_height: h,
        };
        let Some(scale) = scale else {
            return full(sw, sh);
        };
        let scaled = |n: u32, num: u32, den: u32| {
            ((u64::from(n) * u64::from(num) + u64::from(den) / 2) / u64::from(den)).max(1) as u32
        };
        // The largest size with the source's aspect ratio that fits in w×h.
        let fit = |w: u32, h: u32| {
            if u64::from(w) * u64::from(sh) <= u64::from(h) * u64::from(sw) {
                (w, scaled(sh, w, sw).min(h))
            } else {
                (scaled(sw, h, sh).min(w), h)
            }
        };
        match (scale.mode, scale.width, scale.height) {
            (ScaleMode::Stretch, Some(w), Some(h)) => full(w, h),
            (ScaleMode::Pad, Some(w), Some(h)) => {
                let (cw, ch) = fit(w, h);
                Self {
                    width: w,
                    height: h,
                    content_x: (w - cw) / 2,
                    content_y: (h - ch) / 2,
                    content_width: cw,
                    content_height: ch,
                }
            }
            (_, Some(w), Some(h)) => {
                let (cw, ch) = fit(w, h);
                full(cw, ch)
            }
            (_, Some(w), None) => full(w, scaled(sh, w, sw)),
            (_, None, Some(h)) => full(scaled(sw, h, sh), h),
            (_, None, None) => full(sw, sh),
        }
    }

    /// True when the content does not fill the image.
    pub fn is_padded(&self) -> bool {
        self.content_width != self.width || self.content_height != self.height
    }

    /// Maps a box normalised to the frame into the image sent (the inverse of [`Self::unpad`]):
    /// what an upstream inference's box is in the image a server receives.
    pub fn pad(&self, l: f64, t: f64, w: f64, h: f64) -> [f64; 4] {
        let map = |start: f64, len: f64, full: u32, offset: u32, content: u32| {
            let (full, offset, content) = (f64::from(full), f64::from(offset), f64::from(content));
            ((offset + start * content) / full, len * content / full)
        };
        let (l2, w2) = map(l, w, self.width, self.content_x, self.content_width);
        let (t2, h2) = map(t, h, self.height, self.content_y, self.content_height);
        [l2, t2, w2, h2]
    }

    /// Maps a box normalised to the image sent (as the service answers) to the frame: padding
    /// removed, clipped to the frame. `None` when the box lies entirely in the padding.
    pub fn unpad(&self, l: f64, t: f64, w: f64, h: f64) -> Option<[f64; 4]> {
        let map = |start: f64, len: f64, full: u32, offset: u32, content: u32| {
            let (full, offset, content) = (f64::from(full), f64::from(offset), f64::from(content));
            let a = ((start * full - offset) / content).clamp(0.0, 1.0);
            let b = (((start + len) * full - offset) / content).clamp(0.0, 1.0);
            (a, b - a)
        };
        let (l2, w2) = map(l, w, self.width, self.content_x, self.content_width);
        let (t2, h2) = map(t, h, self.height, self.content_y, self.content_height);
        (w2 > 0.0 && h2 > 0.0).then_some([l2, t2, w2, h2])
    }
}

/// An encoded image ready to POST.
#[derive(Clone, Debug)]
pub struct EncodedImage {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Where the frame is inside it.
    pub layout: ImageLayout,
    /// For raw images: the pixel format name.
    pub pixel_format: Option<String>,
}

/// A frame's content as the decoder scaled it for an extension.
#[derive(Clone, Debug)]
pub enum Content {
    /// Packed RGB24.
    Rgb(Vec<u8>),
    /// Planar 4:2:0 full-range YCbCr: what a JPEG is made of.
    Yuv420(Yuv420),
}

impl Content {
    /// Bytes held.
    pub fn len(&self) -> usize {
        match self {
            Content::Rgb(rgb) => rgb.len(),
            Content::Yuv420(yuv) => yuv.byte_len(),
        }
    }

    /// True when it holds no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The content as packed RGB24, taken when it is that, converted from YCbCr otherwise.
    pub fn into_rgb(self) -> Vec<u8> {
        match self {
            Content::Rgb(rgb) => rgb,
            Content::Yuv420(yuv) => yuv.to_rgb(),
        }
    }

    /// The content as packed RGB24 (converted from YCbCr when it is that).
    pub fn rgb(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Content::Rgb(rgb) => std::borrow::Cow::Borrowed(rgb),
            Content::Yuv420(yuv) => std::borrow::Cow::Owned(yuv.to_rgb()),
        }
    }
}

/// True when `format` is best made from [`Content::Yuv420`] (a JPEG).
pub fn wants_yuv(format: &ImageFormat) -> bool {
    matches!(format, ImageFormat::Jpeg { .. })
}

/// Puts `content` (of the layout's content size) on a black canvas of the image size and
/// encodes it as `format`.
pub fn encode_image(
    content: &Content,
    layout: ImageLayout,
    format: &ImageFormat,
) -> Result<EncodedImage> {
    if let (Content::Yuv420(yuv), ImageFormat::Jpeg { quality }) = (content, format) {
        if (yuv.width(), yuv.height()) != (layout.content_width, layout.content_height) {
            bail!(
                "content is {}×{}, expected {}×{}",
                yuv.width(),
                yuv.height(),
                layout.content_width,
                layout.content_height
            );
        }
        let canvas = if layout.is_padded() {
            std::borrow::Cow::Owned(yuv.on_canvas(
                layout.width,
                layout.height,
                layout.content_x,
                layout.content_y,
            )?)
        } else {
            std::borrow::Cow::Borrowed(yuv)
        };
        return Ok(EncodedImage {
            bytes: canvas.jpeg(*quality)?,
            content_type: "image/jpeg",
            layout,
            pixel_format: None,
        });
    }
    let rgb = content.rgb();
    let canvas = pad(&rgb, &layout)?;
    let (w, h) = (layout.width, layout.height);
    let (bytes, content_type, pixel_format) = match format {
        ImageFormat::Jpeg { quality } => (jpeg(&canvas, w, h, *quality)?, "image/jpeg", None),
        ImageFormat::Png => (png(&canvas, w, h)?, "image/png", None),
        ImageFormat::Bmp => (bmp(&canvas, w, h), "image/bmp", None),
        // The canvas is the image: no copy.
        ImageFormat::Raw { pixel_format } if pixel_format.eq_ignore_ascii_case("rgb24") => (
            canvas.into_owned(),
            "image/x-raw",
            Some(pixel_format.clone()),
        ),
        ImageFormat::Raw { pixel_format } => (
            raw(&canvas, w, h, pixel_format)?,
            "image/x-raw",
            Some(pixel_format.clone()),
        ),
    };
    Ok(EncodedImage {
        bytes,
        content_type,
        layout,
        pixel_format,
    })
}

fn pad<'a>(content: &'a [u8], layout: &ImageLayout) -> Result<std::borrow::Cow<'a, [u8]>> {
    let (cw, ch) = (
        layout.content_width as usize,
        layout.content_height as usize,
    );
    if content.len() != cw * ch * 3 {
        bail!(
            "content is {} bytes, expected {}×{}×3",
            content.len(),
            cw,
            ch
        );
    }
    if !layout.is_padded() {
        return Ok(std::borrow::Cow::Borrowed(content));
    }
    let (w, x0, y0) = (
        layout.width as usize,
        layout.content_x as usize,
        layout.content_y as usize,
    );
    let mut canvas = vec![0u8; w * layout.height as usize * 3];
    for (y, row) in content.chunks_exact(cw * 3).enumerate() {
        let at = ((y0 + y) * w + x0) * 3;
        canvas[at..at + cw * 3].copy_from_slice(row);
    }
    Ok(std::borrow::Cow::Owned(canvas))
}

/// Packed RGB24 `w`×`h` as a JPEG of `quality` (1–100), chroma subsampled 4:2:0 at every
/// quality, as libjpeg's `cjpeg` and FFmpeg's MJPEG encoder make them (`jpeg-encoder` alone
/// switches to 4:4:4 from quality 90 on, which doubles the planes it transforms for colour
/// detail that detectors and people reviewing a snapshot do not use).
pub fn jpeg(rgb: &[u8], w: u32, h: u32, quality: u8) -> Result<Vec<u8>> {
    let (w16, h16) = (
        u16::try_from(w).map_err(|_| anyhow!("JPEG images are at most 65535 pixels wide"))?,
        u16::try_from(h).map_err(|_| anyhow!("JPEG images are at most 65535 pixels high"))?,
    );
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .encode(rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
        .context("JPEG encoding failed")?;
    // The guess above is several times the usual JPEG, and snapshots are kept (each pipeline's
    // latest, the inference snapshots): keep only what the picture needs.
    out.shrink_to_fit();
    Ok(out)
}

/// 24-bit BMP, bottom-up rows padded to 4 bytes, BGR.
fn bmp(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    let row = (w as usize * 3).div_ceil(4) * 4;
    let size = 54 + row * h as usize;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&(w as i32).to_le_bytes());
    out.extend_from_slice(&(h as i32).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // BI_RGB
    out.extend_from_slice(&((row * h as usize) as u32).to_le_bytes());
    out.extend_from_slice(&2835u32.to_le_bytes()); // 72 dpi
    out.extend_from_slice(&2835u32.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    for src in rgb.chunks_exact(w as usize * 3).rev() {
        for px in src.chunks_exact(3) {
            out.extend_from_slice(&[px[2], px[1], px[0]]);
        }
        out.resize(out.len() + row - w as usize * 3, 0);
    }
    out
}

fn rgb_frame(rgb: &[u8], w: u32, h: u32) -> Result<Frame> {
    let mut frame = Frame::new(Pixel::RGB24, w, h)?;
    let stride = frame.stride(0);
    let row = w as usize * 3;
    let data = frame.data_mut(0);
    for (y, src) in rgb.chunks_exact(row).enumerate() {
        data[y * stride..y * stride + row].copy_from_slice(src);
    }
    Ok(frame)
}

fn png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let (width, height) = (c_int::try_from(w)?, c_int::try_from(h)?);
    let mut encoder = CodecContext::encoder(Codec::Png, &mut |context| {
        context.width = width;
        context.height = height;
        context.pix_fmt = ffmpeg_sys_next::AVPixelFormat::AV_PIX_FMT_RGB24;
        context.time_base = ffmpeg_sys_next::AVRational { num: 1, den: 1 };
    })
    .context("cannot open the PNG encoder")?;
    let frame = rgb_frame(rgb, w, h)?;
    encoder
        .send_frame(Some(&frame))
        .context("PNG encoding failed")?;
    encoder.send_frame(None).context("PNG encoding failed")?;
    encoder
        .receive_packet()?
        .ok_or_else(|| anyhow!("PNG encoding produced nothing"))
}

/// AVA's raw pixel formats and FFmpeg's names for them, with bytes per pixel (packed formats).
const RAW_FORMATS: &[(&str, Pixel, usize)] = &[
    ("yuv420p", Pixel::YUV420P, 1),
    ("rgb565be", Pixel::RGB565BE, 2),
    ("rgb565le", Pixel::RGB565LE, 2),
    ("rgb555be", Pixel::RGB555BE, 2),
    ("rgb555le", Pixel::RGB555LE, 2),
    ("rgb24", Pixel::RGB24, 3),
    ("bgr24", Pixel::BGR24, 3),
    ("argb", Pixel::ARGB, 4),
    ("rgba", Pixel::RGBA, 4),
    ("abgr", Pixel::ABGR, 4),
    ("bgra", Pixel::BGRA, 4),
];

/// Bytes from one row to the next of a raw image `width` pixels wide (rows are packed; for
/// yuv420p, the luma plane's); `None` for a name that is not a raw pixel format.
pub fn raw_row_bytes(pixel_format: &str, width: u32) -> Option<u32> {
    RAW_FORMATS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(pixel_format))
        .map(|(_, _, bpp)| width * *bpp as u32)
}

/// True for the pixel formats `ImageFormatRaw` accepts.
pub fn is_raw_pixel_format(name: &str) -> bool {
    RAW_FORMATS
        .iter()
        .any(|(n, _, _)| n.eq_ignore_ascii_case(name))
}

/// Raw pixels, rows packed with no padding; yuv420p as three planes (Y, then U, then V, chroma
/// planes of ⌈w/2⌉×⌈h/2⌉).
fn raw(rgb: &[u8], w: u32, h: u32, pixel_format: &str) -> Result<Vec<u8>> {
    let (_, pixel, bpp) = RAW_FORMATS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(pixel_format))
        .ok_or_else(|| anyhow!("unknown raw pixel format '{pixel_format}'"))?;
    if *pixel == Pixel::RGB24 {
        return Ok(rgb.to_vec());
    }
    if let Some(bytes) = reorder(rgb, *pixel) {
        return Ok(bytes);
    }
    let input = rgb_frame(rgb, w, h)?;
    let out = Scaler::new(
        (Pixel::RGB24, w, h),
        (*pixel, w, h),
        ScaleFlags::BILINEAR_ACCURATE,
    )
    .context("cannot create a pixel converter")?
    .run(&input)
    .context("pixel conversion failed")?;
    let mut bytes = Vec::new();
    let planes = if *pixel == Pixel::YUV420P { 3 } else { 1 };
    for plane in 0..planes {
        let (pw, ph) = if plane == 0 {
            (w as usize, h as usize)
        } else {
            ((w as usize).div_ceil(2), (h as usize).div_ceil(2))
        };
        let row = pw * bpp;
        let stride = out.stride(plane);
        let data = out.data(plane);
        for y in 0..ph {
            bytes.extend_from_slice(&data[y * stride..y * stride + row]);
        }
    }
    Ok(bytes)
}

/// The packed 24- and 32-bit formats are RGB24's bytes in another order (alpha opaque): a
/// byte shuffle, ten times cheaper than a pixel converter made for each image.
fn reorder(rgb: &[u8], pixel: Pixel) -> Option<Vec<u8>> {
    let pixels = rgb.len() / 3;
    // One loop per format, each byte's source fixed, so that the compiler can vectorise it.
    let out = match pixel {
        Pixel::BGR24 => {
            let mut out = vec![0u8; pixels * 3];
            for (s, d) in rgb.chunks_exact(3).zip(out.chunks_exact_mut(3)) {
                d.copy_from_slice(&[s[2], s[1], s[0]]);
            }
            out
        }
        Pixel::RGBA | Pixel::BGRA | Pixel::ARGB | Pixel::ABGR => {
            let mut out = vec![0u8; pixels * 4];
            let pairs = rgb.chunks_exact(3).zip(out.chunks_exact_mut(4));
            match pixel {
                Pixel::RGBA => pairs.for_each(|(s, d)| d.copy_from_slice(&[s[0], s[1], s[2], 255])),
                Pixel::BGRA => pairs.for_each(|(s, d)| d.copy_from_slice(&[s[2], s[1], s[0], 255])),
                Pixel::ARGB => pairs.for_each(|(s, d)| d.copy_from_slice(&[255, s[0], s[1], s[2]])),
                _ => pairs.for_each(|(s, d)| d.copy_from_slice(&[255, s[2], s[1], s[0]])),
            }
            out
        }
        _ => return None,
    };
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_holds_no_more_memory_than_its_bytes() {
        // A flat grey 640x360 picture: a few KB of JPEG against the 86 KB first reserved.
        let rgb = vec![128u8; 640 * 360 * 3];
        let out = jpeg(&rgb, 640, 360, 85).expect("encodes");
        assert!(out.starts_with(&[0xff, 0xd8]), "a JPEG");
        assert!(out.len() < 640 * 360 * 3 / 8, "{} bytes", out.len());
        assert_eq!(out.capacity(), out.len());
    }

    #[test]
    fn packed_formats_reorder_the_rgb_bytes_as_the_converter_did() {
        // Two pixels: red-ish and blue-ish.
        let rgb = [200u8, 10, 20, 30, 40, 250];
        let layout = ImageLayout::new(2, 1, None);
        let raw = |name: &str| {
            encode_image(
                &Content::Rgb(rgb.to_vec()),
                layout,
                &ImageFormat::Raw {
                    pixel_format: name.into(),
                },
            )
            .expect("encodes")
            .bytes
        };
        assert_eq!(raw("bgr24"), [20, 10, 200, 250, 40, 30]);
        assert_eq!(raw("rgba"), [200, 10, 20, 255, 30, 40, 250, 255]);
        assert_eq!(raw("bgra"), [20, 10, 200, 255, 250, 40, 30, 255]);
        assert_eq!(raw("argb"), [255, 200, 10, 20, 255, 30, 40, 250]);
        assert_eq!(raw("abgr"), [255, 20, 10, 200, 255, 250, 40, 30]);
        // What FFmpeg's converter gives for the same pixels (the path these replace).
        for (name, pixel) in [
            ("bgr24", Pixel::BGR24),
            ("rgba", Pixel::RGBA),
            ("bgra", Pixel::BGRA),
            ("argb", Pixel::ARGB),
            ("abgr", Pixel::ABGR),
        ] {
            let input = rgb_frame(&rgb, 2, 1).expect("frame");
            let out = Scaler::new(
                (Pixel::RGB24, 2, 1),
                (pixel, 2, 1),
                ScaleFlags::BILINEAR_ACCURATE,
            )
            .expect("converter")
            .run(&input)
            .expect("converts");
            let n = if name == "bgr24" { 6 } else { 8 };
            assert_eq!(&out.data(0)[..n], &raw(name)[..], "{name}");
        }
    }

    fn scale(mode: ScaleMode, width: Option<u32>, height: Option<u32>) -> ImageScale {
        ImageScale {
            mode,
            width,
            height,
        }
    }

    #[test]
    fn pad_centres_the_frame_with_bars() {
        let l = ImageLayout::new(
            1920,
            1080,
            Some(&scale(ScaleMode::Pad, Some(416), Some(416))),
        );
        assert_eq!(
            (l.width, l.height, l.content_x, l.content_y),
            (416, 416, 0, 91)
        );
        assert_eq!((l.content_width, l.content_height), (416, 234));
        assert!(l.is_padded());
    }

    #[test]
    fn preserve_aspect_ratio_fits_the_tighter_side_or_derives_the_other() {
        let both = ImageLayout::new(
            1920,
            1080,
            Some(&scale(ScaleMode::PreserveAspectRatio, Some(416), Some(416))),
        );
        assert_eq!((both.width, both.height), (416, 234));
        assert!(!both.is_padded());
        let h = ImageLayout::new(
            640,
            360,
            Some(&scale(ScaleMode::PreserveAspectRatio, None, Some(180))),
        );
        assert_eq!((h.width, h.height), (320, 180));
        let stretch = ImageLayout::new(
            640,
            360,
            Some(&scale(ScaleMode::Stretch, Some(300), Some(300))),
        );
        assert_eq!(
            (stretch.width, stretch.height, stretch.content_y),
            (300, 300, 0)
        );
        assert_eq!(ImageLayout::new(640, 360, None).width, 640);
    }

    #[test]
    fn boxes_lose_the_padding() {
        // AVA's example: 0.2 padding on each side; (0.2, 0, 0.6, 1) is the whole frame.
        let l = ImageLayout {
            width: 100,
            height: 100,
            content_x: 20,
            content_y: 0,
            content_width: 60,
            content_height: 100,
        };
        let b = l.unpad(0.2, 0.0, 0.6, 1.0).expect("inside");
        for (got, want) in b.iter().zip([0.0, 0.0, 1.0, 1.0]) {
            assert!((got - want).abs() < 1e-9, "{b:?}");
        }
        let half = l.unpad(0.5, 0.5, 0.3, 0.5).expect("inside");
        assert!(
            (half[0] - 0.5).abs() < 1e-9 && (half[2] - 0.5).abs() < 1e-9,
            "{half:?}"
        );
        assert_eq!(l.unpad(0.0, 0.0, 0.1, 0.1), None, "a box in the bar");
    }

    #[test]
    fn bmp_is_bottom_up_bgr_with_padded_rows() {
        // 2×2: red, green / blue, white.
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        let b = bmp(&rgb, 2, 2);
        assert_eq!(&b[..2], b"BM");
        assert_eq!(b.len(), 54 + 8 * 2);
        // First stored row is the bottom one: blue, white, 2 bytes of padding.
        assert_eq!(&b[54..62], &[255, 0, 0, 255, 255, 255, 0, 0]);
        assert_eq!(&b[62..68], &[0, 0, 255, 0, 255, 0]);
    }

    #[test]
    fn every_format_encodes_a_padded_frame() {
        let layout = ImageLayout::new(64, 32, Some(&scale(ScaleMode::Pad, Some(64), Some(64))));
        let content = vec![200u8; 64 * 32 * 3];
        for format in [
            ImageFormat::Jpeg { quality: 90 },
            ImageFormat::Png,
            ImageFormat::Bmp,
            ImageFormat::Raw {
                pixel_format: "yuv420p".into(),
            },
            ImageFormat::Raw {
                pixel_format: "bgra".into(),
            },
        ] {
            let image =
                encode_image(&Content::Rgb(content.clone()), layout, &format).expect("encodes");
            match format {
                ImageFormat::Jpeg { .. } => assert_eq!(&image.bytes[..2], &[0xff, 0xd8]),
                ImageFormat::Png => assert_eq!(&image.bytes[1..4], b"PNG"),
                ImageFormat::Bmp => assert_eq!(image.bytes.len(), 54 + 64 * 3 * 64),
                ImageFormat::Raw { ref pixel_format } if pixel_format == "yuv420p" => {
                    assert_eq!(image.bytes.len(), 64 * 64 * 3 / 2);
                    assert!(image.bytes[0] < 20, "top bar is black luma");
                }
                ImageFormat::Raw { .. } => {
                    assert_eq!(image.bytes.len(), 64 * 64 * 4);
                    let mid = (32 * 64 + 32) * 4;
                    assert_eq!(&image.bytes[mid..mid + 3], &[200, 200, 200]);
                }
            }
        }
    }
}
