//! `vigil explain CLIP`: why a recording exists, from the explanation a FileSink wrote beside it
//! (`CLIP.json`), or, for a segment of a video archive (`<archive>/videos/<video>/<clip>-<seq>.mp4`),
//! from the archive's catalog.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::nodes::clip_explanation::{ClipExplanation, describe, sidecar_path};

/// `vigil explain` options.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A recording (its `.json` beside it is read), the `.json` itself, or a segment file of a
    /// video archive.
    #[arg(value_name = "CLIP")]
    pub clip: PathBuf,
    /// Print the explanation as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints why `args.clip` exists; exit code 1 when it has no readable explanation.
pub fn explain(args: &ExplainArgs) -> ExitCode {
    match read(&args.clip) {
        Ok(e) if args.json => match serde_json::to_string_pretty(&e) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("vigil explain: {err}");
                ExitCode::FAILURE
            }
        },
        Ok(e) => {
            let mut text = String::new();
            describe(&e, &mut text);
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil explain: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the explanation of `clip` (or `clip` itself when it is one).
pub fn read(clip: &Path) -> Result<ClipExplanation> {
    let path = if clip.extension().is_some_and(|e| e == "json") {
        clip.to_path_buf()
    } else {
        sidecar_path(clip)
    };
    if !path.exists()
        && let Some(found) = from_archive(clip)?
    {
        return Ok(found);
    }
    let meta = std::fs::metadata(&path).with_context(|| {
        format!(
            "{}: no explanation (recordings made before Vigil wrote them, or by a VideoSink, have none)",
            path.display()
        )
    })?;
    if meta.len() > 16 << 20 {
        bail!(
            "{}: {} bytes, too large for an explanation",
            path.display(),
            meta.len()
        );
    }
    let text = std::fs::read(&path).with_context(|| path.display().to_string())?;
    serde_json::from_slice(&text).with_context(|| format!("{}: not an explanation", path.display()))
}

/// The explanation of an archive segment `<archive>/videos/<video>/<clip>-<seq>.mp4` from the
/// archive's catalog; none when `file` is not such a segment.
fn from_archive(file: &Path) -> Result<Option<ClipExplanation>> {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let Some(clip) = name
        .strip_suffix(".mp4")
        .and_then(|stem| stem.split_once('-'))
        .and_then(|(clip, _)| clip.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    let Some(video_dir) = file.parent() else {
        return Ok(None);
    };
    let video = video_dir
        .file_name()
        .map(|v| v.to_string_lossy().to_string())
        .unwrap_or_default();
    let Some(archive) = video_dir
        .parent()
        .filter(|v| v.file_name().is_some_and(|n| n == "videos"))
        .and_then(Path::parent)
    else {
        return Ok(None);
    };
    if !archive.join("catalog.sqlite3").exists() {
        return Ok(None);
    }
    let catalog = crate::archive::catalog::Catalog::open(archive)?;
    let Some(body) = catalog.explanation(&video, clip)? else {
        bail!(
            "{}: the archive {} has no explanation for clip {clip} of video '{video}'",
            file.display(),
            archive.display()
        );
    };
    serde_json::from_str(&body)
        .map(Some)
        .with_context(|| format!("clip {clip} of video '{video}': not an explanation"))
}
