//! Minimal ISO BMFF box plumbing shared by the fMP4 writer, the recovery scan and the reader.

/// Appends a box of type `kind` whose body is written by `body`.
pub fn write_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a full box (version and 24-bit flags before the body).
pub fn write_full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    write_box(out, kind, |out| {
        out.push(version);
        out.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(out);
    });
}

/// Appends big-endian integers.
pub trait PutBe {
    /// Appends a u16.
    fn u16(&mut self, v: u16);
    /// Appends a u32.
    fn u32(&mut self, v: u32);
    /// Appends a u64.
    fn u64(&mut self, v: u64);
}

impl PutBe for Vec<u8> {
    fn u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
}

/// A box found while walking a buffer: its type and the byte ranges of the whole box and its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxRef {
    /// Four-character type.
    pub kind: [u8; 4],
    /// Offset of the box header.
    pub start: u64,
    /// Offset of the body (after the header).
    pub body_start: u64,
    /// Offset just past the box.
    pub end: u64,
}

/// Reads a box header at `offset` in `buf` (offsets relative to `base`); `None` when the header
/// is incomplete or the size is invalid. A box may extend past the buffer (check `end`).
pub fn read_box_header(buf: &[u8], offset: usize, base: u64) -> Option<BoxRef> {
    let h = buf.get(offset..offset + 8)?;
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
    let kind = [h[4], h[5], h[6], h[7]];
    let (size, header) = match size32 {
        1 => {
            let l = buf.get(offset + 8..offset + 16)?;
            let mut b = [0u8; 8];
            b.copy_from_slice(l);
            (u64::from_be_bytes(b), 16)
        }
        0 => ((buf.len() - offset) as u64, 8),
        s => (s, 8),
    };
    if size < header {
        return None;
    }
    // Checked: a 64-bit size near the top wrapped `end` round below `body_start` (found by
    // fuzzing the MP4 reader).
    let start = base.checked_add(offset as u64)?;
    Some(BoxRef {
        kind,
        start,
        body_start: start.checked_add(header)?,
        end: start.checked_add(size)?,
    })
}

/// The direct children of a box body held entirely in `buf`.
pub fn children(buf: &[u8]) -> Vec<(BoxRef, &[u8])> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    while let Some(b) = read_box_header(buf, offset, 0) {
        let (Ok(body_start), Ok(end)) = (usize::try_from(b.body_start), usize::try_from(b.end))
        else {
            break;
        };
        if end > buf.len() {
            break;
        }
        out.push((b, &buf[body_start..end]));
        offset = end;
    }
    out
}

/// The first child of type `kind`.
pub fn child<'a>(buf: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(buf)
        .into_iter()
        .find(|(b, _)| &b.kind == kind)
        .map(|(_, body)| body)
}

#[cfg(test)]
mod hostile_tests {
    /// A 64-bit box size near the top no longer wraps `end` below `body_start` (a fuzzer's
    /// find: the slice `[body_start..end]` panicked).
    #[test]
    fn a_huge_size_is_no_box() {
        // A 16-byte box, then one whose 64-bit size would end past u64::MAX.
        let mut buf = vec![0, 0, 0, 16, b'f', b'r', b'e', b'e'];
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&[0, 0, 0, 1, b'f', b'r', b'e', b'e']);
        buf.extend_from_slice(&(u64::MAX - 4).to_be_bytes());
        buf.extend_from_slice(&[0; 32]);
        assert!(super::read_box_header(&buf, 16, 0).is_none());
        assert_eq!(super::children(&buf).len(), 1);
    }
}
