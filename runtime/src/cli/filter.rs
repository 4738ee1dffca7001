//! `vigil filter`: tools for people who write filter components. `new` makes a ready project,
//! `test` runs a module on a clip or on events offline (see [`super::filter_test`]).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// `vigil filter` options.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: FilterAction,
}

/// A `vigil filter` command.
#[derive(Debug, Subcommand)]
pub enum FilterAction {
    /// Make a ready filter project in a new folder NAME that builds with one command.
    New(FilterNewArgs),
    /// Run a module on a clip (frame filters: frames decoded and scaled as a pipeline would) or
    /// on events (event filters); print what it returns with media times, the call-time
    /// distribution and its faults; `--expect FILE` compares the output with a saved one.
    Test(FilterTestArgs),
}

/// The language of a new filter project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Language {
    /// Rust, with the vigil-guest SDK.
    Rust,
    /// Python, with componentize-py.
    Python,
    /// JavaScript, with ComponentizeJS (jco).
    Js,
}

/// Which world a new filter implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorldChoice {
    /// Called per inference event: decides what passes (a truck filter).
    Event,
    /// Called per decoded frame: finds things in pixels (a motion detector).
    Frame,
}

/// `vigil filter new` options.
#[derive(Debug, Args)]
pub struct FilterNewArgs {
    /// The project's name (a folder of that name is made; `-` and `_` allowed).
    pub name: String,
    /// Its language.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: Language,
    /// Its world.
    #[arg(long, value_enum, default_value = "event")]
    pub world: WorldChoice,
    /// Where to make it (default: the current folder).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The vigil-guest SDK the project depends on (default: the one this binary was built
    /// with, when its source is still there; else Vigil's git repository).
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

/// `vigil filter test` options.
#[derive(Debug, Args)]
pub struct FilterTestArgs {
    /// The module: a `.wasm` component or a built-in name.
    #[arg(long, value_name = "M.wasm")]
    pub module: String,
    /// An MP4 clip for a frame filter.
    #[arg(long, value_name = "CLIP.mp4")]
    pub input: Option<PathBuf>,
    /// Events for an event filter, one JSON per line: an AVA `Analytics.Inference` event as the
    /// event log holds it, or `{"at": SECONDS, "inferences": [...]}`.
    #[arg(long, value_name = "E.jsonl")]
    pub events: Option<PathBuf>,
    /// A configuration value (repeatable); a value that reads as JSON (a number, `true`, an
    /// array) is passed typed, anything else as text.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// UTC time of the clip's first frame (and of `at` 0).
    #[arg(long, value_name = "TIME", default_value = "2000-01-01T00:00:00Z")]
    pub start_time: String,
    /// Frames analysed per second of a clip (a pipeline analyses 10).
    #[arg(long, default_value_t = 10)]
    pub fps: u32,
    /// Compare the output with this file (a saved output); exit 1 at the first difference.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
}
