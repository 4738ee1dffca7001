//! Media plumbing: the UTC media timeline, compressed samples, fMP4 writing, crash recovery and
//! MP4 reading for replay.

pub mod av;
pub mod decode;
pub mod fmp4;
pub mod image;
pub mod inference_snapshot;
pub mod live_view;
pub mod mp4_box;
pub mod mp4_reader;
pub mod nal;
pub mod preroll;
pub mod recovery;
pub mod sample;
pub mod snapshot;
pub mod time;
pub mod yuv_image;
