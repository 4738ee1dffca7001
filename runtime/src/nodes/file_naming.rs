//! FileSink file names: the pattern rendered with the clip's UTC start, `.mp4` appended, a
//! `-1`, `-2`… suffix when the name is taken, and recognising this sink's own files on disk.

use std::path::{Path, PathBuf};

use crate::media::time::MediaTime;
use crate::topology::params::render_runtime_variables;
use crate::topology::props::DEFERRED_VARIABLE_MARK;

/// The file name pattern of one FileSink.
#[derive(Clone, Debug)]
pub struct FileNaming {
    base: PathBuf,
    pattern: String,
}

impl FileNaming {
    /// Naming for `pattern` (per-clip variables still in place) below `base`.
    pub fn new(base: &Path, pattern: &str) -> Self {
        Self {
            base: base.to_path_buf(),
            pattern: crate::topology::params::deferred_form(pattern),
        }
    }

    /// The base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// A free path for a clip starting at `start`: `<base>/<pattern>.mp4`, or with `-N` added.
    pub fn path_for(&self, start: MediaTime) -> PathBuf {
        let name = render_runtime_variables(&self.pattern, start);
        let first = self.base.join(format!("{name}.mp4"));
        if !first.exists() {
            return first;
        }
        (1u32..)
            .map(|n| self.base.join(format!("{name}-{n}.mp4")))
            .find(|p| !p.exists())
            .unwrap_or(first)
    }

    /// The folder the files go to (the base, or a sub-folder the pattern names).
    pub fn folder(&self) -> PathBuf {
        match Path::new(&self.pattern).parent() {
            Some(p) if !p.as_os_str().is_empty() => self.base.join(p),
            _ => self.base.clone(),
        }
    }

    /// True when `file_name` (no folder) is one this pattern produces.
    pub fn is_ours(&self, file_name: &str) -> bool {
        let Some(stem) = file_name.strip_suffix(".mp4") else {
            return false;
        };
        let pattern = Path::new(&self.pattern)
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        matches_pattern(&pattern, stem)
            || stem.rsplit_once('-').is_some_and(|(head, n)| {
                n.parse::<u32>().is_ok() && matches_pattern(&pattern, head)
            })
    }
}

/// Matches `text` against a pattern whose per-clip variables stand for their rendered forms.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    let date = format!("{DEFERRED_VARIABLE_MARK}DateTime}}");
    let precise = format!("{DEFERRED_VARIABLE_MARK}PreciseDateTime}}");
    let Some((i, var, width)) = [(date.as_str(), 16usize), (precise.as_str(), 20usize)]
        .iter()
        .filter_map(|(v, w)| pattern.find(v).map(|i| (i, *v, *w)))
        .min_by_key(|(i, _, _)| *i)
    else {
        return pattern == text;
    };
    let (lit, rest) = (&pattern[..i], &pattern[i + var.len()..]);
    let Some(after_lit) = text.strip_prefix(lit) else {
        return false;
    };
    if after_lit.len() < width || !after_lit.is_char_boundary(width) {
        return false;
    }
    let (stamp, tail) = after_lit.split_at(width);
    let stamp_ok = stamp
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, 'T' | 'Z' | '.'));
    stamp_ok && matches_pattern(rest, tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_recognises_files() {
        let dir = std::env::temp_dir().join(format!("vigil-naming-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let naming = FileNaming::new(&dir, "door-p1-${System.Runtime.DateTime}");
        let t = MediaTime::from_secs(1_582_392_720); // 2020-02-22T17:32:00Z
        let p = naming.path_for(t);
        assert_eq!(
            p.file_name().and_then(|n| n.to_str()),
            Some("door-p1-20200222T173200Z.mp4")
        );
        let _ = std::fs::write(&p, b"x");
        let p2 = naming.path_for(t);
        assert_eq!(
            p2.file_name().and_then(|n| n.to_str()),
            Some("door-p1-20200222T173200Z-1.mp4")
        );
        assert!(naming.is_ours("door-p1-20200222T173200Z.mp4"));
        assert!(naming.is_ours("door-p1-20200222T173200Z-3.mp4"));
        assert!(!naming.is_ours("door-p2-20200222T173200Z.mp4"));
        assert!(!naming.is_ours("door-p1-20200222T173200Z.mkv"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
