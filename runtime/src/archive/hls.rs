//! HLS playlists of a video's UTC range: fragmented-MP4 media addressed by byte range inside the
//! segment files (each fragment, one GOP of ≤ 1 s, is an HLS segment), an `EXT-X-MAP` per file,
//! `EXT-X-PROGRAM-DATE-TIME` at each file, `EXT-X-DISCONTINUITY` between clips and at every gap
//! inside a clip (a fragment that does not start where the one before it ended: the camera was
//! away), followed by the date the media resumes at. While a clip in
//! the range is still recording the playlist is live (no `EXT-X-ENDLIST`): a fragment is listed
//! as soon as it is recorded, so playback can run one fragment behind the camera.

use std::fmt::Write;

use anyhow::Result;

use super::available::TimeRange;
use super::catalog::{Catalog, resumes_after_gap};
use crate::media::time::MediaTime;

/// A playlist and whether it is live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Playlist {
    /// The `.m3u8` text.
    pub text: String,
    /// Still growing.
    pub live: bool,
    /// Number of media segments (fragments) listed.
    pub fragments: usize,
}

/// The playlist of `video` over `range`; `media_url` gives the URL of a segment file by id.
pub fn playlist(
    catalog: &Catalog,
    video: &str,
    range: TimeRange,
    media_url: impl Fn(i64) -> String,
) -> Result<Playlist> {
    let segments = catalog.segments_between(video, range.start, range.end)?;
    let mut body = String::new();
    let mut target: f64 = 1.0;
    let mut fragments = 0;
    let mut last_clip = None;
    let mut last_end: Option<MediaTime> = None;
    let mut live = false;
    for s in &segments {
        let listed: Vec<_> = catalog
            .fragments(s.id)?
            .into_iter()
            .filter(|f| f.end > range.start && f.start < range.end)
            .collect();
        let Some(first) = listed.first() else {
            live |= s.recording;
            continue;
        };
        live |= s.recording;
        if last_clip.is_some_and(|c| c != s.clip) || resumes_after_gap(last_end, first.start) {
            body.push_str("#EXT-X-DISCONTINUITY\n");
        }
        last_clip = Some(s.clip);
        let url = media_url(s.id);
        let _ = writeln!(
            body,
            "#EXT-X-MAP:URI=\"{url}\",BYTERANGE=\"{}@0\"",
            s.init_len
        );
        let _ = writeln!(body, "#EXT-X-PROGRAM-DATE-TIME:{}", first.start);
        for (i, f) in listed.iter().enumerate() {
            if i > 0 && resumes_after_gap(last_end, f.start) {
                body.push_str("#EXT-X-DISCONTINUITY\n");
                let _ = writeln!(body, "#EXT-X-PROGRAM-DATE-TIME:{}", f.start);
            }
            last_end = Some(f.end);
            let secs = (f.end - f.start).as_nanos() as f64 / 1e9;
            target = target.max(secs);
            let _ = writeln!(body, "#EXTINF:{secs:.3},");
            let _ = writeln!(body, "#EXT-X-BYTERANGE:{}@{}", f.len, f.offset);
            body.push_str(&url);
            body.push('\n');
            fragments += 1;
        }
    }
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:7\n");
    let _ = writeln!(text, "#EXT-X-TARGETDURATION:{}", target.ceil() as u64);
    text.push_str("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    text.push_str(if live {
        "#EXT-X-PLAYLIST-TYPE:EVENT\n"
    } else {
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
    });
    text.push_str(&body);
    if !live {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    Ok(Playlist {
        text,
        live,
        fragments,
    })
}
