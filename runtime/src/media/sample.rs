//! Compressed media as it travels from a source to the sinks: never re-encoded.

use std::sync::Arc;

use bytes::Bytes;

use super::time::MediaTime;

/// Video codec of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

/// What a decoder or muxer needs to know about a video stream. A change of parameters
/// (resolution, profile) arrives as a new `Arc<VideoParams>` on the next sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoParams {
    /// Codec.
    pub codec: VideoCodec,
    /// Display width in pixels.
    pub width: u32,
    /// Display height in pixels.
    pub height: u32,
    /// RFC 6381 codec string, e.g. `avc1.4D401F`.
    pub rfc6381_codec: String,
    /// The complete ISO BMFF sample entry box (`avc1` with `avcC`, or `hvc1` with `hvcC`).
    pub sample_entry: Vec<u8>,
}

/// One access unit (a frame) of compressed video.
#[derive(Clone, Debug)]
pub struct VideoSample {
    /// Presentation time on the UTC media timeline.
    pub pts: MediaTime,
    /// Decode time (equal to `pts` for streams without B-frames).
    pub dts: MediaTime,
    /// True for a random access point (H.264 IDR, H.265 IRAP).
    pub key_frame: bool,
    /// NAL units, each prefixed with its 4-byte big-endian length (ISO BMFF framing).
    pub data: Bytes,
    /// Stream parameters in force for this sample.
    pub params: Arc<VideoParams>,
    /// True when media is missing just before this sample (reconnect, packet loss): the muxer
    /// must not stretch the previous sample over the gap.
    pub discontinuity: bool,
}

impl VideoSample {
    /// Bytes of payload.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the sample carries no payload.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// What a muxer needs to know about an audio stream (AAC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioParams {
    /// Samples per second (the track timescale).
    pub clock_rate: u32,
    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub rfc6381_codec: String,
    /// The complete ISO BMFF sample entry box (`mp4a` with `esds`).
    pub sample_entry: Vec<u8>,
}

/// One AAC frame.
#[derive(Clone, Debug)]
pub struct AudioSample {
    /// Presentation time on the UTC media timeline.
    pub pts: MediaTime,
    /// Length in samples of `params.clock_rate`.
    pub frames: u32,
    /// Raw AAC access unit.
    pub data: Bytes,
    /// Stream parameters.
    pub params: Arc<AudioParams>,
}

/// A video or audio sample, as the source emits them.
#[derive(Clone, Debug)]
pub enum MediaItem {
    /// Video access unit.
    Video(VideoSample),
    /// Audio frame.
    Audio(AudioSample),
}
