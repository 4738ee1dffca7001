//! FFmpeg's libraries, opened with `dlopen` the first time a node needs them, and the functions
//! vigil calls in them. Nothing in the binary names an FFmpeg symbol, so the linker (which rustc
//! runs with `--as-needed`) records no dependency on them: a service whose pipelines only record
//! never maps libavcodec and the ~90 libraries it pulls in.
//!
//! The types and constants come from `ffmpeg-sys-next`'s bindings, generated from the installed
//! headers at build time; the libraries opened are the ones those headers describe (their
//! sonames carry the major versions the bindings were made for), so structure layouts match.

use std::ffi::c_int;
use std::sync::OnceLock;

use ffmpeg_sys_next as sys;
use libloading::Library;
use sys::{
    AVCodec, AVCodecContext, AVDictionary, AVFrame, AVPacket, AVPixFmtDescriptor, SwsContext,
};

/// Why FFmpeg cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "FFmpeg's {library} cannot be loaded ({reason}); decoding (motion detection, frame filters, \
     inference and snapshots) needs it: on Debian, `apt install libavcodec59 libswscale6`"
)]
pub struct Unavailable {
    /// The library or symbol that failed.
    pub library: String,
    /// What the dynamic loader said.
    pub reason: String,
}

/// The FFmpeg functions vigil calls, as loaded. The libraries stay open for the process's life.
pub(super) struct Functions {
    pub av_log_set_level: unsafe extern "C" fn(c_int),
    pub av_frame_alloc: unsafe extern "C" fn() -> *mut AVFrame,
    pub av_frame_free: unsafe extern "C" fn(*mut *mut AVFrame),
    pub av_frame_get_buffer: unsafe extern "C" fn(*mut AVFrame, c_int) -> c_int,
    pub av_pix_fmt_desc_get: unsafe extern "C" fn(c_int) -> *const AVPixFmtDescriptor,
    pub avcodec_find_decoder: unsafe extern "C" fn(c_int) -> *const AVCodec,
    pub avcodec_find_encoder: unsafe extern "C" fn(c_int) -> *const AVCodec,
    pub avcodec_alloc_context3: unsafe extern "C" fn(*const AVCodec) -> *mut AVCodecContext,
    pub avcodec_open2:
        unsafe extern "C" fn(*mut AVCodecContext, *const AVCodec, *mut *mut AVDictionary) -> c_int,
    pub avcodec_free_context: unsafe extern "C" fn(*mut *mut AVCodecContext),
    pub avcodec_send_packet: unsafe extern "C" fn(*mut AVCodecContext, *const AVPacket) -> c_int,
    pub avcodec_receive_frame: unsafe extern "C" fn(*mut AVCodecContext, *mut AVFrame) -> c_int,
    pub avcodec_send_frame: unsafe extern "C" fn(*mut AVCodecContext, *const AVFrame) -> c_int,
    pub avcodec_receive_packet: unsafe extern "C" fn(*mut AVCodecContext, *mut AVPacket) -> c_int,
    pub av_packet_alloc: unsafe extern "C" fn() -> *mut AVPacket,
    pub av_packet_free: unsafe extern "C" fn(*mut *mut AVPacket),
    pub av_new_packet: unsafe extern "C" fn(*mut AVPacket, c_int) -> c_int,
    pub sws_get_context: unsafe extern "C" fn(
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        c_int,
        *mut sys::SwsFilter,
        *mut sys::SwsFilter,
        *const f64,
    ) -> *mut SwsContext,
    pub sws_scale: unsafe extern "C" fn(
        *mut SwsContext,
        *const *const u8,
        *const c_int,
        c_int,
        c_int,
        *const *mut u8,
        *const c_int,
    ) -> c_int,
    pub sws_free_context: unsafe extern "C" fn(*mut SwsContext),
    _libraries: Vec<Library>,
}

/// The loaded functions: the libraries are opened by the first call, in any thread.
pub(super) fn functions() -> Result<&'static Functions, Unavailable> {
    static LOADED: OnceLock<Result<Functions, Unavailable>> = OnceLock::new();
    LOADED.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// True once FFmpeg's libraries are mapped into this process.
pub fn is_loaded() -> bool {
    LOADED_FLAG.load(std::sync::atomic::Ordering::Acquire)
}

static LOADED_FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn open(name: &str) -> Result<Library, Unavailable> {
    // SAFETY: FFmpeg's libraries run no initialiser that depends on the caller's state.
    unsafe { Library::new(name) }.map_err(|e| Unavailable {
        library: name.to_string(),
        reason: e.to_string(),
    })
}

/// One function of `library`, as the type the binding gives it.
///
/// # Safety
/// `T` must be the function's C signature.
unsafe fn symbol<T: Copy>(library: &Library, name: &str) -> Result<T, Unavailable> {
    let mut c_name = name.as_bytes().to_vec();
    c_name.push(0);
    // SAFETY: the caller names the signature; the library outlives the pointer (kept forever).
    unsafe { library.get::<T>(&c_name) }
        .map(|s| *s)
        .map_err(|e| Unavailable {
            library: name.to_string(),
            reason: e.to_string(),
        })
}

fn load() -> Result<Functions, Unavailable> {
    let avutil = open(&format!("libavutil.so.{}", sys::LIBAVUTIL_VERSION_MAJOR))?;
    let swscale = open(&format!("libswscale.so.{}", sys::LIBSWSCALE_VERSION_MAJOR))?;
    let avcodec = open(&format!("libavcodec.so.{}", sys::LIBAVCODEC_VERSION_MAJOR))?;
    // SAFETY: each signature below is the C declaration of FFmpeg's headers for these majors
    // (enums passed as `int`, which is how C passes them).
    let functions = unsafe {
        Functions {
            av_log_set_level: symbol(&avutil, "av_log_set_level")?,
            av_frame_alloc: symbol(&avutil, "av_frame_alloc")?,
            av_frame_free: symbol(&avutil, "av_frame_free")?,
            av_frame_get_buffer: symbol(&avutil, "av_frame_get_buffer")?,
            av_pix_fmt_desc_get: symbol(&avutil, "av_pix_fmt_desc_get")?,
            avcodec_find_decoder: symbol(&avcodec, "avcodec_find_decoder")?,
            avcodec_find_encoder: symbol(&avcodec, "avcodec_find_encoder")?,
            avcodec_alloc_context3: symbol(&avcodec, "avcodec_alloc_context3")?,
            avcodec_open2: symbol(&avcodec, "avcodec_open2")?,
            avcodec_free_context: symbol(&avcodec, "avcodec_free_context")?,
            avcodec_send_packet: symbol(&avcodec, "avcodec_send_packet")?,
            avcodec_receive_frame: symbol(&avcodec, "avcodec_receive_frame")?,
            avcodec_send_frame: symbol(&avcodec, "avcodec_send_frame")?,
            avcodec_receive_packet: symbol(&avcodec, "avcodec_receive_packet")?,
            av_packet_alloc: symbol(&avcodec, "av_packet_alloc")?,
            av_packet_free: symbol(&avcodec, "av_packet_free")?,
            av_new_packet: symbol(&avcodec, "av_new_packet")?,
            sws_get_context: symbol(&swscale, "sws_getContext")?,
            sws_scale: symbol(&swscale, "sws_scale")?,
            sws_free_context: symbol(&swscale, "sws_freeContext")?,
            _libraries: vec![avcodec, swscale, avutil],
        }
    };
    // SAFETY: a plain setter of a global int.
    unsafe { (functions.av_log_set_level)(sys::AV_LOG_ERROR) };
    LOADED_FLAG.store(true, std::sync::atomic::Ordering::Release);
    Ok(functions)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_library_is_named_with_the_loaders_reason() {
        let Err(e) = super::open("libvigil-absent.so.7") else {
            panic!("a library that does not exist opened");
        };
        assert_eq!(e.library, "libvigil-absent.so.7");
        let text = e.to_string();
        assert!(text.contains("libvigil-absent.so.7"), "{text}");
        assert!(text.contains("cannot open shared object file"), "{text}");
    }

    #[test]
    fn the_installed_ffmpeg_loads_and_says_so() {
        super::functions().expect("FFmpeg loads");
        assert!(super::is_loaded());
    }
}
