//! `vigil explain CLIP`: why a recording exists, from the explanation a FileSink wrote beside it
//! (`CLIP.json`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::nodes::clip_explanation::{ClipExplanation, describe, sidecar_path};

/// `vigil explain` options.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A recording (its `.json` beside it is read) or the `.json` itself.
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
