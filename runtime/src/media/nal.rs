//! Key-frame detection from NAL unit headers. retina classes only H.265 IDR pictures as random
//! access points, and open-GOP encoders (x265's default) send CRA pictures instead, so every
//! IRAP type counts here (rust-stack.md §"retina against the GStreamer camera").

use super::sample::VideoCodec;

/// Iterates over the NAL units of a 4-byte-length-prefixed access unit.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len == 0 || rest.len() < 4 + len {
            return None;
        }
        let nal = &rest[4..4 + len];
        rest = &rest[4 + len..];
        Some(nal)
    })
}

/// True when the access unit starts a decodable sequence: an H.264 IDR slice, or an H.265 IRAP
/// picture (BLA, IDR or CRA: NAL types 16–23).
pub fn is_random_access(codec: VideoCodec, data: &[u8]) -> bool {
    nal_units(data).any(|nal| match codec {
        VideoCodec::H264 => nal.first().is_some_and(|b| b & 0x1f == 5),
        VideoCodec::H265 => nal
            .first()
            .is_some_and(|b| (16..=23).contains(&((b >> 1) & 0x3f))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    #[test]
    fn finds_h264_idr_and_h265_cra() {
        assert!(is_random_access(
            VideoCodec::H264,
            &au(&[&[0x67, 1], &[0x65, 2]])
        ));
        assert!(!is_random_access(VideoCodec::H264, &au(&[&[0x41, 2]])));
        // H.265 CRA = type 21: header byte (21 << 1) = 0x2a.
        assert!(is_random_access(VideoCodec::H265, &au(&[&[0x2a, 0x01, 9]])));
        // TRAIL_R = type 1.
        assert!(!is_random_access(
            VideoCodec::H265,
            &au(&[&[0x02, 0x01, 9]])
        ));
        assert!(!is_random_access(VideoCodec::H264, &[0, 0, 0, 9, 1]));
    }
}
