//! Media plumbing: the UTC media timeline (and, as the media issues land, decode and fMP4 muxing).

pub mod time;
