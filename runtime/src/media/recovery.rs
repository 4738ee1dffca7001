//! Crash recovery for files the fMP4 writer produced: cut a file back to its last complete
//! fragment (a `kill -9` or power loss can leave half a `moof`/`mdat` at the end).

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::fmp4::VIGIL_BRAND;
use super::mp4_box::read_box_header;

/// What the scan found in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Not a file Vigil wrote (its `ftyp` lacks our brand): left alone.
    NotOurs,
    /// Every fragment is complete.
    Intact {
        /// Complete fragments.
        fragments: u32,
    },
    /// An incomplete tail was cut off.
    Trimmed {
        /// Complete fragments kept.
        fragments: u32,
        /// Bytes removed.
        removed: u64,
    },
    /// Not even the init segment and one fragment are complete: nothing playable.
    Unplayable,
}

/// Scans the top-level boxes of `path` and truncates it after the last complete `mdat` that
/// follows a `moof`.
pub fn trim_incomplete_fragment(path: &Path) -> io::Result<Recovery> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut header = [0u8; 16];
    let mut offset = 0u64;
    let mut good_end = 0u64;
    let mut fragments = 0u32;
    let mut saw_moov = false;
    let mut saw_moof = false;
    let mut first = true;
    while offset < len {
        file.seek(SeekFrom::Start(offset))?;
        let n = read_up_to(&mut file, &mut header)?;
        let Some(b) = read_box_header(&header[..n], 0, offset) else {
            break;
        };
        if b.end > len || b.end <= offset {
            break;
        }
        if first {
            first = false;
            if &b.kind != b"ftyp" || !ftyp_has_brand(&mut file, b.body_start, b.end)? {
                return Ok(Recovery::NotOurs);
            }
        }
        match &b.kind {
            b"moov" => {
                saw_moov = true;
                good_end = b.end;
            }
            b"moof" => saw_moof = true,
            b"mdat" if saw_moof => {
                saw_moof = false;
                fragments += 1;
                good_end = b.end;
            }
            _ => {}
        }
        offset = b.end;
    }
    if first {
        // Not even one whole box: nothing says Vigil wrote it.
        return Ok(Recovery::NotOurs);
    }
    if !saw_moov || fragments == 0 {
        return Ok(Recovery::Unplayable);
    }
    if good_end < len {
        file.set_len(good_end)?;
        file.sync_all()?;
        return Ok(Recovery::Trimmed {
            fragments,
            removed: len - good_end,
        });
    }
    Ok(Recovery::Intact { fragments })
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn ftyp_has_brand(file: &mut std::fs::File, start: u64, end: u64) -> io::Result<bool> {
    let len = usize::try_from(end.saturating_sub(start))
        .unwrap_or(0)
        .min(256);
    let mut body = vec![0u8; len];
    file.seek(SeekFrom::Start(start))?;
    let n = read_up_to(file, &mut body)?;
    Ok(body[..n].chunks(4).skip(2).any(|c| c == VIGIL_BRAND))
}
