//! The `vigil` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::topology::{
    LoadOptions, ParameterValue, Topology, TopologyErrors, live_pipeline::parse_live_pipeline,
    load_topology, parse_set_argument,
};

/// Event-based video recording: RTSP cameras in, MP4 clips out, gated by motion, MQTT/HTTP
/// triggers or inference results. Pipelines are Azure Video Analyzer topology JSON files.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `vigil` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check topology files; print a one-line summary per valid file, or every error, one per line.
    Validate(TopologyArgs),
    /// Run a topology until SIGINT/SIGTERM.
    Run(TopologyArgs),
}

/// The topology and its parameter values.
#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// Topology JSON file(s) (AVA 1.x, AVA cloud or LVA 2.0 format).
    #[arg(required = true, value_name = "TOPOLOGY")]
    pub topologies: Vec<PathBuf>,
    /// Set a topology parameter, e.g. --set rtspUrl=rtsp://camera/stream (repeatable; overrides
    /// values from --live-pipeline).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set_argument)]
    pub values: Vec<ParameterValue>,
    /// An AVA live-pipeline JSON document (livePipelineSet body) giving the pipeline name and
    /// parameter values.
    #[arg(long, value_name = "FILE")]
    pub live_pipeline: Option<PathBuf>,
    /// Live pipeline name (${System.PipelineName}); default: the live pipeline's, else the
    /// topology's name.
    #[arg(long, value_name = "NAME")]
    pub pipeline_name: Option<String>,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Run(args) => run(&args),
    }
}

fn load_options(args: &TopologyArgs) -> Result<LoadOptions, String> {
    let live_pipeline = match &args.live_pipeline {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            Some(parse_live_pipeline(&text).map_err(|errs| prefix_errors(path, &errs))?)
        }
    };
    Ok(LoadOptions {
        pipeline_name: args.pipeline_name.clone(),
        live_pipeline,
        values: args.values.clone(),
    })
}

/// Reads and validates one topology file; the error text has one line per problem, each prefixed
/// with the file name.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Topology, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    load_topology(&text, options).map_err(|errs| prefix_errors(path, &errs))
}

fn prefix_errors(path: &Path, errors: &TopologyErrors) -> String {
    errors
        .0
        .iter()
        .map(|e| format!("{}: {e}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn validate(args: &TopologyArgs) -> ExitCode {
    let options = match load_options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = false;
    for path in &args.topologies {
        match load_file(path, &options) {
            Ok(topology) => println!("{}: {}", path.display(), topology.summary()),
            Err(e) => {
                println!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(args: &TopologyArgs) -> ExitCode {
    let options = match load_options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for path in &args.topologies {
        match load_file(path, &options) {
            Ok(topology) => eprintln!("{}: {}", path.display(), topology.summary()),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    }
    eprintln!(
        "vigil run: the media path (RTSP ingest, gate, MP4 sinks) is not built yet; nothing to run"
    );
    ExitCode::from(2)
}
