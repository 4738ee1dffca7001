//! Planar 4:2:0 pictures in JPEG's own colour space (full-range BT.601 YCbCr), as the decoder's
//! scaler gives them: a JPEG is encoded from them with no colour conversion at all (the RGB
//! path converted the decoder's YUV to RGB and the encoder converted it back), and RGB is made
//! from them only where something needs it (a snapshot, a raw or PNG image).

use anyhow::{Context, Result, anyhow};

/// A `width`×`height` picture: a luma plane, then Cb and Cr planes of half the size (rounded up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Yuv420 {
    width: u32,
    height: u32,
    planes: Vec<u8>,
}

impl Yuv420 {
    /// The picture whose planes are packed in `planes` (Y, Cb, Cr, rows without padding); `None`
    /// when the length does not fit the size.
    pub fn new(width: u32, height: u32, planes: Vec<u8>) -> Option<Self> {
        (width > 0 && height > 0 && planes.len() == planes_len(width, height)).then_some(Self {
            width,
            height,
            planes,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes held by the three planes.
    pub fn byte_len(&self) -> usize {
        self.planes.len()
    }

    /// Luma, Cb and Cr planes.
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let luma = self.width as usize * self.height as usize;
        let chroma = chroma_len(self.width, self.height);
        let (y, rest) = self.planes.split_at(luma);
        let (cb, cr) = rest.split_at(chroma);
        (y, cb, cr)
    }

    /// Packed RGB24 (JFIF's conversion, chroma repeated over each 2×2 block).
    pub fn to_rgb(&self) -> Vec<u8> {
        let (w, h) = (self.width as usize, self.height as usize);
        let cw = w.div_ceil(2);
        let (luma, cb, cr) = self.planes();
        let mut out = Vec::with_capacity(w * h * 3);
        for row in 0..h {
            for col in 0..w {
                let y = i32::from(luma[row * w + col]) << 16;
                let at = (row / 2) * cw + col / 2;
                let (u, v) = (i32::from(cb[at]) - 128, i32::from(cr[at]) - 128);
                // 1.402, 0.344136, 0.714136, 1.772 in 16.16 fixed point, rounded.
                let r = (y + 91_881 * v + 32_768) >> 16;
                let g = (y - 22_554 * u - 46_802 * v + 32_768) >> 16;
                let b = (y + 116_130 * u + 32_768) >> 16;
                out.extend([r, g, b].map(|c| c.clamp(0, 255) as u8));
            }
        }
        out
    }

    /// This picture at (`x`, `y`) on a black `width`×`height` canvas (chroma placed at half the
    /// offsets, rounded down).
    pub fn on_canvas(&self, width: u32, height: u32, x: u32, y: u32) -> Result<Self> {
        if x + self.width > width || y + self.height > height {
            return Err(anyhow!(
                "a {}×{} picture at ({x}, {y}) does not fit a {width}×{height} canvas",
                self.width,
                self.height
            ));
        }
        let mut canvas = vec![0u8; planes_len(width, height)];
        let luma_len = width as usize * height as usize;
        let chroma = chroma_len(width, height);
        canvas[luma_len..].fill(128);
        let (dst_y, dst_c) = canvas.split_at_mut(luma_len);
        let (dst_cb, dst_cr) = dst_c.split_at_mut(chroma);
        let (src_y, src_cb, src_cr) = self.planes();
        paste(dst_y, width, src_y, self.width, x, y);
        let (cw, sw) = (width.div_ceil(2), self.width.div_ceil(2));
        paste(dst_cb, cw, src_cb, sw, x / 2, y / 2);
        paste(dst_cr, cw, src_cr, sw, x / 2, y / 2);
        Ok(Self {
            width,
            height,
            planes: canvas,
        })
    }

    /// A baseline JPEG of `quality` (1–100), 4:2:0.
    pub fn jpeg(&self, quality: u8) -> Result<Vec<u8>> {
        let too_big = || anyhow!("JPEG images are at most 65535 pixels on a side");
        let rows = JpegRows {
            picture: self,
            width: u16::try_from(self.width).map_err(|_| too_big())?,
            height: u16::try_from(self.height).map_err(|_| too_big())?,
        };
        let mut out = Vec::with_capacity(self.planes.len() / 6);
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
        encoder.encode_image(rows).context("JPEG encoding failed")?;
        Ok(out)
    }
}

fn chroma_len(width: u32, height: u32) -> usize {
    width.div_ceil(2) as usize * height.div_ceil(2) as usize
}

fn planes_len(width: u32, height: u32) -> usize {
    width as usize * height as usize + 2 * chroma_len(width, height)
}

/// Copies the plane `src` (`src_width` wide) into `dst` (`dst_width` wide) at (`x`, `y`).
fn paste(dst: &mut [u8], dst_width: u32, src: &[u8], src_width: u32, x: u32, y: u32) {
    let (dw, sw) = (dst_width as usize, src_width as usize);
    for (row, line) in src.chunks_exact(sw).enumerate() {
        let at = (y as usize + row) * dw + x as usize;
        if let Some(target) = dst.get_mut(at..at + sw) {
            target.copy_from_slice(line);
        }
    }
}

/// The encoder's view: rows of full-resolution Y, Cb, Cr (it subsamples the chroma again, so
/// repeating each chroma sample gives back exactly the planes' values).
struct JpegRows<'a> {
    picture: &'a Yuv420,
    width: u16,
    height: u16,
}

impl jpeg_encoder::ImageBuffer for JpegRows<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let w = usize::from(self.width);
        let cw = w.div_ceil(2);
        let (luma, cb, cr) = self.picture.planes();
        let row = usize::from(y);
        buffers[0].extend_from_slice(&luma[row * w..(row + 1) * w]);
        let chroma_row = (row / 2) * cw;
        for (plane, buffer) in [(cb, 1), (cr, 2)] {
            let line = &plane[chroma_row..chroma_row + cw];
            buffers[buffer].extend(line.iter().flat_map(|&c| [c, c]).take(w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4×2 picture: luma 0..8, one chroma pair per 2×2 block.
    fn small() -> Yuv420 {
        let mut planes: Vec<u8> = (0..8).map(|v| v * 30).collect();
        planes.extend([128, 200, 128, 60]);
        Yuv420::new(4, 2, planes).expect("fits")
    }

    #[test]
    fn the_planes_must_fit_the_size() {
        assert!(Yuv420::new(4, 2, vec![0; 11]).is_none());
        assert!(Yuv420::new(0, 2, Vec::new()).is_none());
        // Odd sizes round the chroma up: 3×3 has 9 + 2 × 4 bytes.
        assert!(Yuv420::new(3, 3, vec![0; 17]).is_some());
    }

    #[test]
    fn grey_stays_grey_and_chroma_tints_its_block() {
        let rgb = small().to_rgb();
        // Left block: Cb = Cr = 128, grey: R = G = B = Y.
        assert_eq!(&rgb[0..3], &[0, 0, 0]);
        assert_eq!(&rgb[3..6], &[30, 30, 30]);
        // Right block: Cb 200 (blue up), Cr 60 (red down).
        let (r, g, b) = (rgb[6], rgb[7], rgb[8]);
        assert!(b > g && g > r, "{r} {g} {b}");
    }

    #[test]
    fn the_canvas_is_black_around_the_picture() {
        let c = small().on_canvas(6, 4, 2, 1).expect("fits");
        let (y, cb, cr) = c.planes();
        assert_eq!(&y[0..6], &[0; 6]);
        assert_eq!(&y[6..12], &[0, 0, 0, 30, 60, 90]);
        assert_eq!(&y[12..18], &[0, 0, 120, 150, 180, 210]);
        // Chroma at (1, 0) in a 3×2 plane.
        assert_eq!(cb, &[128, 128, 200, 128, 128, 128]);
        assert_eq!(cr, &[128, 128, 60, 128, 128, 128]);
        assert!(small().on_canvas(4, 2, 1, 0).is_err());
    }

    #[test]
    fn a_jpeg_decodes_to_the_picture() {
        // 32×16: the left half dark grey, the right half saturated blue.
        let (w, h) = (32u32, 16u32);
        let mut planes = Vec::new();
        for _ in 0..h {
            for x in 0..w {
                planes.push(if x < w / 2 { 60 } else { 41 });
            }
        }
        for value in [240u8, 110] {
            for _ in 0..h / 2 {
                for x in 0..w / 2 {
                    planes.push(if x < w / 4 { 128 } else { value });
                }
            }
        }
        let picture = Yuv420::new(w, h, planes).expect("fits");
        let bytes = picture.jpeg(90).expect("encodes");
        assert_eq!(&bytes[..2], &[0xff, 0xd8]);
        let decoded = decode_jpeg(&bytes);
        assert_eq!((decoded.width(), decoded.height()), (w, h));
        let worst = |a: &[u8], b: &[u8]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.abs_diff(*y))
                .max()
                .unwrap_or(0)
        };
        let (y0, cb0, cr0) = picture.planes();
        let (y1, cb1, cr1) = decoded.planes();
        assert!(worst(y0, y1) <= 6, "luma {} off", worst(y0, y1));
        assert!(worst(cb0, cb1) <= 6, "Cb {} off", worst(cb0, cb1));
        assert!(worst(cr0, cr1) <= 6, "Cr {} off", worst(cr0, cr1));
    }

    /// FFmpeg's MJPEG decoder's planes (yuvj420p), packed.
    fn decode_jpeg(bytes: &[u8]) -> Yuv420 {
        use crate::media::av::{Codec, CodecContext, Pixel};
        let mut decoder = CodecContext::decoder(Codec::Mjpeg, &mut |_| {}).expect("opens");
        decoder.send_packet(Some((bytes, 0))).expect("takes");
        decoder.send_packet(None).expect("eof");
        let frame = decoder.receive_frame().expect("receives").expect("a frame");
        assert_eq!(frame.format(), Pixel::YUVJ420P);
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let mut planes = Vec::new();
        for (plane, (pw, ph)) in [
            (w, h),
            (w.div_ceil(2), h.div_ceil(2)),
            (w.div_ceil(2), h.div_ceil(2)),
        ]
        .into_iter()
        .enumerate()
        {
            let (data, stride) = (frame.data(plane), frame.stride(plane));
            for row in 0..ph {
                planes.extend_from_slice(&data[row * stride..row * stride + pw]);
            }
        }
        Yuv420::new(w as u32, h as u32, planes).expect("fits")
    }
}
