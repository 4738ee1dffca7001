//! The small part of FFmpeg vigil uses (decoding, PNG encoding, scaling), behind safe types, on
//! libraries loaded when first needed (see [`library`]): frames, codec contexts and scalers.
//! None of these types is `Send`; they stay on the thread that made them.

mod library;

use std::ffi::c_int;
use std::ptr::NonNull;

use anyhow::{Result, anyhow, bail};
use ffmpeg_sys_next as sys;

use library::{Functions, functions};
pub use library::{Unavailable, is_loaded};

/// A pixel format, by FFmpeg's number for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pixel(c_int);

macro_rules! pixels {
    ($($name:ident = $av:ident),* $(,)?) => {
        impl Pixel {
            $(
                #[doc = concat!("FFmpeg's `", stringify!($av), "`.")]
                pub const $name: Pixel = Pixel(sys::AVPixelFormat::$av as c_int);
            )*
        }
    };
}

pixels! {
    YUV420P = AV_PIX_FMT_YUV420P,
    YUVJ420P = AV_PIX_FMT_YUVJ420P,
    YUV422P = AV_PIX_FMT_YUV422P,
    YUVJ422P = AV_PIX_FMT_YUVJ422P,
    NV12 = AV_PIX_FMT_NV12,
    GRAY8 = AV_PIX_FMT_GRAY8,
    RGB24 = AV_PIX_FMT_RGB24,
    BGR24 = AV_PIX_FMT_BGR24,
    ARGB = AV_PIX_FMT_ARGB,
    RGBA = AV_PIX_FMT_RGBA,
    ABGR = AV_PIX_FMT_ABGR,
    BGRA = AV_PIX_FMT_BGRA,
    RGB565BE = AV_PIX_FMT_RGB565BE,
    RGB565LE = AV_PIX_FMT_RGB565LE,
    RGB555BE = AV_PIX_FMT_RGB555BE,
    RGB555LE = AV_PIX_FMT_RGB555LE,
}

/// The codecs vigil opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    Hevc,
    /// PNG (encoded for inference services).
    Png,
    /// Motion JPEG (decoded in tests, to check our JPEGs).
    Mjpeg,
}

impl Codec {
    fn id(self) -> c_int {
        (match self {
            Codec::H264 => sys::AVCodecID::AV_CODEC_ID_H264,
            Codec::Hevc => sys::AVCodecID::AV_CODEC_ID_HEVC,
            Codec::Png => sys::AVCodecID::AV_CODEC_ID_PNG,
            Codec::Mjpeg => sys::AVCodecID::AV_CODEC_ID_MJPEG,
        }) as c_int
    }
}

/// How a scaler interpolates (libswscale's flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleFlags(c_int);

impl ScaleFlags {
    /// Bilinear between the nearest source pixels.
    pub const FAST_BILINEAR: ScaleFlags = ScaleFlags(sys::SWS_FAST_BILINEAR);
    /// Bilinear with the filter widened to the scale.
    pub const BILINEAR: ScaleFlags = ScaleFlags(sys::SWS_BILINEAR);
    /// Bilinear, with exact rounding.
    pub const BILINEAR_ACCURATE: ScaleFlags = ScaleFlags(sys::SWS_BILINEAR | sys::SWS_ACCURATE_RND);

    /// The flags as a number (for keys).
    pub fn bits(self) -> u32 {
        self.0 as u32
    }
}

fn check(code: c_int, what: &str) -> Result<c_int> {
    if code < 0 {
        bail!("{what} (FFmpeg error {code})");
    }
    Ok(code)
}

/// A picture owned by this side (FFmpeg's `AVFrame`).
pub struct Frame {
    raw: NonNull<sys::AVFrame>,
    av: &'static Functions,
}

impl Frame {
    fn alloc() -> Result<Self> {
        let av = functions()?;
        // SAFETY: plain allocation; null is handled.
        let raw = NonNull::new(unsafe { (av.av_frame_alloc)() })
            .ok_or_else(|| anyhow!("FFmpeg cannot allocate a frame"))?;
        Ok(Self { raw, av })
    }

    /// A `width`×`height` picture of `format`, its planes allocated (contents unset).
    pub fn new(format: Pixel, width: u32, height: u32) -> Result<Self> {
        let frame = Self::alloc()?;
        // SAFETY: the frame is ours and fresh; get_buffer reads these three fields.
        unsafe {
            let f = frame.raw.as_ptr();
            (*f).format = format.0;
            (*f).width = c_int::try_from(width)?;
            (*f).height = c_int::try_from(height)?;
            check(
                (frame.av.av_frame_get_buffer)(f, 0),
                "cannot allocate a picture",
            )?;
        }
        Ok(frame)
    }

    fn get(&self) -> &sys::AVFrame {
        // SAFETY: the pointer is valid for the frame's life and only read here.
        unsafe { self.raw.as_ref() }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.get().width.max(0) as u32
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.get().height.max(0) as u32
    }

    /// The pixel format.
    pub fn format(&self) -> Pixel {
        Pixel(self.get().format)
    }

    /// The presentation time the decoder gave it, in the packets' units.
    pub fn pts(&self) -> Option<i64> {
        Some(self.get().pts).filter(|&p| p != sys::AV_NOPTS_VALUE)
    }

    /// Bytes from one row of `plane` to the next (0 for a plane the format lacks).
    pub fn stride(&self, plane: usize) -> usize {
        self.get()
            .linesize
            .get(plane)
            .map_or(0, |&s| usize::try_from(s).unwrap_or(0))
    }

    /// Rows in `plane`: the height, or the chroma planes' subsampled height.
    fn rows(&self, plane: usize) -> usize {
        let height = self.height() as usize;
        if plane == 0 || plane == 3 {
            return height;
        }
        // SAFETY: a lookup in FFmpeg's static table; null for an unknown format.
        let descriptor = unsafe { (self.av.av_pix_fmt_desc_get)(self.get().format).as_ref() };
        let shift = descriptor.map_or(0, |d| u32::from(d.log2_chroma_h));
        (height + (1 << shift) - 1) >> shift
    }

    /// The bytes of `plane` (`stride` × rows; empty for a plane the format lacks).
    pub fn data(&self, plane: usize) -> &[u8] {
        let frame = self.get();
        let Some(&ptr) = frame.data.get(plane) else {
            return &[];
        };
        if ptr.is_null() {
            return &[];
        }
        // SAFETY: FFmpeg allocates `linesize × rows` bytes for each plane it sets.
        unsafe { std::slice::from_raw_parts(ptr, self.stride(plane) * self.rows(plane)) }
    }

    /// The bytes of `plane`, writable (a picture made by [`Frame::new`] owns its buffers).
    pub fn data_mut(&mut self, plane: usize) -> &mut [u8] {
        let len = self.stride(plane) * self.rows(plane);
        // SAFETY: as for `data`, and `&mut self` makes the access exclusive.
        let ptr = unsafe { self.raw.as_ref() }
            .data
            .get(plane)
            .copied()
            .unwrap_or(std::ptr::null_mut());
        if ptr.is_null() {
            return &mut [];
        }
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let mut raw = self.raw.as_ptr();
        // SAFETY: the frame is ours; av_frame_free unreferences its buffers and nulls the pointer.
        unsafe { (self.av.av_frame_free)(&mut raw) };
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Frame({}x{} {:?})",
            self.width(),
            self.height(),
            self.format()
        )
    }
}

/// An opened decoder or encoder (FFmpeg's `AVCodecContext`).
pub struct CodecContext {
    raw: NonNull<sys::AVCodecContext>,
    av: &'static Functions,
}

/// Settings made on a codec context before it opens.
pub type Configure<'a> = &'a mut dyn FnMut(&mut sys::AVCodecContext);

impl CodecContext {
    /// A decoder for `codec`, opened after `configure` set its fields (one thread).
    pub fn decoder(codec: Codec, configure: Configure<'_>) -> Result<Self> {
        let av = functions()?;
        // SAFETY: a lookup in FFmpeg's registry.
        let found = unsafe { (av.avcodec_find_decoder)(codec.id()) };
        Self::open(av, found, codec, configure)
    }

    /// An encoder for `codec`, opened after `configure` set its fields.
    pub fn encoder(codec: Codec, configure: Configure<'_>) -> Result<Self> {
        let av = functions()?;
        // SAFETY: a lookup in FFmpeg's registry.
        let found = unsafe { (av.avcodec_find_encoder)(codec.id()) };
        Self::open(av, found, codec, configure)
    }

    fn open(
        av: &'static Functions,
        found: *const sys::AVCodec,
        codec: Codec,
        configure: Configure<'_>,
    ) -> Result<Self> {
        if found.is_null() {
            bail!("this FFmpeg has no {codec:?} codec");
        }
        // SAFETY: `found` is a registered codec; null is handled.
        let raw = NonNull::new(unsafe { (av.avcodec_alloc_context3)(found) })
            .ok_or_else(|| anyhow!("FFmpeg cannot allocate a {codec:?} context"))?;
        let mut context = Self { raw, av };
        // SAFETY: the context is ours and not opened yet; the caller sets plain fields.
        configure(unsafe { context.raw.as_mut() });
        // SAFETY: opening with the codec it was allocated for and no options.
        check(
            unsafe { (av.avcodec_open2)(raw.as_ptr(), found, std::ptr::null_mut()) },
            &format!("cannot open the {codec:?} codec"),
        )?;
        Ok(context)
    }

    /// Sends one packet (`None`: no more come) with its time stamp.
    pub fn send_packet(&mut self, packet: Option<(&[u8], i64)>) -> Result<()> {
        let Some((bytes, pts)) = packet else {
            // SAFETY: a null packet is FFmpeg's end-of-stream signal.
            let code =
                unsafe { (self.av.avcodec_send_packet)(self.raw.as_ptr(), std::ptr::null()) };
            return check(code, "the decoder refused the end of stream").map(drop);
        };
        let packet = Packet::with(self.av, bytes)?;
        // SAFETY: the packet is ours and filled; the decoder copies or references its buffer.
        unsafe {
            (*packet.0).pts = pts;
            check(
                (self.av.avcodec_send_packet)(self.raw.as_ptr(), packet.0),
                "the decoder rejected a packet",
            )?;
        }
        Ok(())
    }

    /// The next frame the decoder has completed, if any.
    pub fn receive_frame(&mut self) -> Result<Option<Frame>> {
        let frame = Frame::alloc()?;
        // SAFETY: both are ours; a negative answer (EAGAIN, EOF, error) leaves the frame empty.
        let code =
            unsafe { (self.av.avcodec_receive_frame)(self.raw.as_ptr(), frame.raw.as_ptr()) };
        Ok((code >= 0).then_some(frame))
    }

    /// Sends one picture to an encoder (`None`: no more come).
    pub fn send_frame(&mut self, frame: Option<&Frame>) -> Result<()> {
        let ptr = frame.map_or(std::ptr::null(), |f| f.raw.as_ptr().cast_const());
        // SAFETY: the frame, when given, is valid; the encoder references its buffers.
        let code = unsafe { (self.av.avcodec_send_frame)(self.raw.as_ptr(), ptr) };
        check(code, "the encoder rejected a picture").map(drop)
    }

    /// The next packet the encoder has completed, if any.
    pub fn receive_packet(&mut self) -> Result<Option<Vec<u8>>> {
        let packet = Packet::empty(self.av)?;
        // SAFETY: both are ours; on success the packet holds `size` bytes at `data`.
        unsafe {
            if (self.av.avcodec_receive_packet)(self.raw.as_ptr(), packet.0) < 0 {
                return Ok(None);
            }
            let (data, size) = ((*packet.0).data, (*packet.0).size);
            if data.is_null() || size <= 0 {
                return Ok(Some(Vec::new()));
            }
            Ok(Some(
                std::slice::from_raw_parts(data, size as usize).to_vec(),
            ))
        }
    }
}

impl Drop for CodecContext {
    fn drop(&mut self) {
        let mut raw = self.raw.as_ptr();
        // SAFETY: the context is ours; this closes and frees it.
        unsafe { (self.av.avcodec_free_context)(&mut raw) };
    }
}

/// An `AVPacket` for one call.
struct Packet(*mut sys::AVPacket, &'static Functions);

impl Packet {
    fn empty(av: &'static Functions) -> Result<Self> {
        // SAFETY: plain allocation; null is handled.
        let raw = unsafe { (av.av_packet_alloc)() };
        if raw.is_null() {
            bail!("FFmpeg cannot allocate a packet");
        }
        Ok(Self(raw, av))
    }

    fn with(av: &'static Functions, bytes: &[u8]) -> Result<Self> {
        let packet = Self::empty(av)?;
        let size = c_int::try_from(bytes.len())?;
        // SAFETY: av_new_packet allocates `size` bytes (plus padding) at `data`.
        unsafe {
            check(
                (av.av_new_packet)(packet.0, size),
                "cannot allocate a packet",
            )?;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), (*packet.0).data, bytes.len());
        }
        Ok(packet)
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        // SAFETY: the packet is ours; this unreferences its buffer and frees it.
        unsafe { (self.1.av_packet_free)(&mut self.0) };
    }
}

/// A libswscale context converting pictures of one format and size to another.
pub struct Scaler {
    raw: NonNull<sys::SwsContext>,
    av: &'static Functions,
    from: (Pixel, u32, u32),
    to: (Pixel, u32, u32),
}

impl Scaler {
    /// A scaler from `from` (format, width, height) to `to`, interpolating as `flags` say.
    pub fn new(from: (Pixel, u32, u32), to: (Pixel, u32, u32), flags: ScaleFlags) -> Result<Self> {
        let av = functions()?;
        let int = |v: u32| c_int::try_from(v);
        // SAFETY: plain values; null (an unsupported conversion) is handled.
        let raw = unsafe {
            (av.sws_get_context)(
                int(from.1)?,
                int(from.2)?,
                from.0.0,
                int(to.1)?,
                int(to.2)?,
                to.0.0,
                flags.0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| anyhow!("libswscale cannot convert {from:?} to {to:?}"))?;
        Ok(Self { raw, av, from, to })
    }

    /// `input` converted into a new picture.
    pub fn run(&mut self, input: &Frame) -> Result<Frame> {
        if (input.format(), input.width(), input.height()) != self.from {
            bail!("the scaler was made for {:?}, not {input:?}", self.from);
        }
        let output = Frame::new(self.to.0, self.to.1, self.to.2)?;
        // SAFETY: both pictures are allocated with the formats and sizes the context was made
        // for; their plane pointers and strides are read from the frames themselves.
        let rows = unsafe {
            let (i, o) = (input.raw.as_ref(), output.raw.as_ref());
            let src: [*const u8; 8] = i.data.map(|p| p.cast_const());
            (self.av.sws_scale)(
                self.raw.as_ptr(),
                src.as_ptr(),
                i.linesize.as_ptr(),
                0,
                i.height,
                o.data.as_ptr(),
                o.linesize.as_ptr(),
            )
        };
        check(rows, "scaling failed")?;
        Ok(output)
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        // SAFETY: the context is ours.
        unsafe { (self.av.sws_free_context)(self.raw.as_ptr()) };
    }
}
