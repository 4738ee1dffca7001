//! Key-frame and reference detection from NAL unit headers. retina classes only H.265 IDR pictures as random
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

/// True when no later picture can use this access unit's picture as a reference, so a decoder
/// may skip it without harm to the others: every H.264 slice has `nal_ref_idc` 0 (a
/// non-reference P or B picture), or every H.265 slice is a sub-layer non-reference type (even
/// types 0–14: TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, reserved) in the stream's top sub-layer
/// `top_temporal_id` (lower sub-layers' non-reference pictures may still be referenced by
/// higher ones). False when the unit holds no slice.
pub fn is_non_reference(codec: VideoCodec, data: &[u8], top_temporal_id: u8) -> bool {
    let mut slices = 0;
    for nal in nal_units(data) {
        let disposable = match codec {
            VideoCodec::H264 => {
                let Some(&header) = nal.first() else { continue };
                if !(1..=5).contains(&(header & 0x1f)) {
                    continue;
                }
                header & 0x60 == 0
            }
            VideoCodec::H265 => {
                let (Some(&h0), Some(&h1)) = (nal.first(), nal.get(1)) else {
                    continue;
                };
                let kind = (h0 >> 1) & 0x3f;
                if kind > 31 {
                    continue;
                }
                let temporal_id = (h1 & 7).saturating_sub(1);
                kind <= 14 && kind % 2 == 0 && temporal_id >= top_temporal_id
            }
        };
        if !disposable {
            return false;
        }
        slices += 1;
    }
    slices > 0
}

/// The highest TemporalId an H.265 stream may use, from its SPS NAL unit
/// (`sps_max_sub_layers_minus1`); `None` when `nal` is not an SPS.
pub fn h265_top_temporal_id(nal: &[u8]) -> Option<u8> {
    let (&h0, &byte) = (nal.first()?, nal.get(2)?);
    ((h0 >> 1) & 0x3f == 33).then_some((byte >> 1) & 7)
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

    #[test]
    fn non_reference_pictures_are_told_apart() {
        // H.264: a B slice with nal_ref_idc 0 (0x01), a P slice with nal_ref_idc 2 (0x41).
        assert!(is_non_reference(VideoCodec::H264, &au(&[&[0x01, 9]]), 0));
        assert!(!is_non_reference(VideoCodec::H264, &au(&[&[0x41, 9]]), 0));
        assert!(!is_non_reference(VideoCodec::H264, &au(&[&[0x65, 9]]), 0));
        // An SEI alone is no picture; an SEI before a non-reference slice does not matter.
        assert!(!is_non_reference(VideoCodec::H264, &au(&[&[0x06, 9]]), 0));
        assert!(is_non_reference(
            VideoCodec::H264,
            &au(&[&[0x06, 9], &[0x01, 9]]),
            0
        ));
        // One reference slice among non-reference ones keeps the picture.
        assert!(!is_non_reference(
            VideoCodec::H264,
            &au(&[&[0x01, 9], &[0x21, 9]]),
            0
        ));
        // H.265: TRAIL_N (0) at TemporalId 0 of a one-layer stream; TRAIL_R (1) is referenced.
        assert!(is_non_reference(
            VideoCodec::H265,
            &au(&[&[0x00, 0x01, 9]]),
            0
        ));
        assert!(!is_non_reference(
            VideoCodec::H265,
            &au(&[&[0x02, 0x01, 9]]),
            0
        ));
        // TRAIL_N in sub-layer 0 of a two-layer stream may be referenced by sub-layer 1.
        assert!(!is_non_reference(
            VideoCodec::H265,
            &au(&[&[0x00, 0x01, 9]]),
            1
        ));
        assert!(is_non_reference(
            VideoCodec::H265,
            &au(&[&[0x00, 0x02, 9]]),
            1
        ));
        // CRA (21) never.
        assert!(!is_non_reference(
            VideoCodec::H265,
            &au(&[&[0x2a, 0x01, 9]]),
            0
        ));
    }

    #[test]
    fn reads_the_top_sub_layer_of_an_h265_sps() {
        // SPS header 0x42 0x01; vps id 0, max_sub_layers_minus1 = 2: 0b0000_010_1.
        assert_eq!(h265_top_temporal_id(&[0x42, 0x01, 0x05]), Some(2));
        assert_eq!(h265_top_temporal_id(&[0x40, 0x01, 0x05]), None);
        assert_eq!(h265_top_temporal_id(&[0x42, 0x01]), None);
    }
}
