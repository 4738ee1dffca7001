//! The `vigil` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod client;
pub mod client_commands;
pub mod cluster_args;
pub mod explain;
pub mod filter;
pub mod filter_new;
pub mod filter_test;

use client_commands::{
    ClientArgs, MethodsAction, PipelineAction, TopologyAction, client_command, pipeline_command,
    topology_command,
};

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
    Run(RunArgs),
    /// Feed a recorded MP4 file through a topology's gate and sinks as fast as the CPU allows,
    /// with external events from a JSON-lines file; outputs are those of a live run.
    Replay(ReplayArgs),
    /// Run the service: live pipelines under AVA's control API (HTTP and MQTT), kept in a data
    /// directory; or just serve a video archive (playback API and web page).
    Serve(ServeArgs),
    /// Pipeline topologies of a running service: set FILE, list, get NAME, delete NAME.
    Topology(ClientArgs<TopologyAction>),
    /// Live pipelines of a running service: set, activate, deactivate, list, get, delete.
    Pipeline(ClientArgs<PipelineAction>),
    /// Filter components: `filter new` makes a project, `filter test` runs a module offline.
    Filter(filter::FilterArgs),
    /// AVA method calls: `methods run operations.json` runs a sample app's operations file.
    Methods(ClientArgs<MethodsAction>),
    /// Why a recording exists: the events that opened and extended it, the gate timing, the
    /// pre-roll asked and given (from the explanation a FileSink wrote beside it).
    Explain(explain::ExplainArgs),
}

/// `vigil serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The data directory (AVA's ApplicationDataDirectory): topologies and live pipelines are
    /// kept here, and pipelines that were Active when the service stopped are activated again.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub data_dir: Option<PathBuf>,
    /// Declarative mode: follow this folder of topology and live-pipeline documents (one per
    /// `*.json` file, as AVA's samples ship them). Its pipelines are set and activated; when a
    /// file changes, is added or removed, only the pipelines it concerns are restarted, added
    /// or removed. A file that is broken is reported and the running version kept.
    #[arg(long, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Cluster membership (`--cluster` and the options that go with it).
    #[command(flatten)]
    pub cluster: cluster_args::ClusterArgs,
    /// The archive directory the playback API serves; VideoSinks write here instead of their
    /// `localMediaCachePath`.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// Upload completed segments to this object store: s3://BUCKET/PREFIX,
    /// azure://CONTAINER/PREFIX, gs://BUCKET/PREFIX or file:///FOLDER; credentials from the
    /// environment (AWS_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS; see the README).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Address of the HTTP listener.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    pub http: String,
    /// The service's settings shared with `vigil run`.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Most live pipelines the service holds.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_pipelines: usize,
    /// Most pipeline topologies the service holds.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max_topologies: usize,
}

/// Settings of the service that `run` and `serve` share.
#[derive(Clone, Debug, Args)]
pub struct ServiceArgs {
    /// Append events (AVA envelope, one JSON object per line) to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub event_log: Option<PathBuf>,
    /// MQTT broker for triggers, method calls and event output, HOST[:PORT] (default port
    /// 1883). Without it, triggers and methods come over HTTP only.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub mqtt: Option<String>,
    /// User name for the MQTT broker; the password comes from VIGIL_MQTT_PASSWORD (never the
    /// command line, which other users can read).
    #[arg(long, value_name = "NAME", requires = "mqtt")]
    pub mqtt_user: Option<String>,
    /// MQTT client id: the broker keeps this client's session (its subscriptions, and the
    /// QoS 1 triggers and method calls that arrive while Vigil is disconnected or restarting)
    /// under it. Default `vigil-<host name>-<pipeline name>`; two Vigil processes on one broker
    /// need different ids.
    #[arg(long, value_name = "ID", requires = "mqtt")]
    pub mqtt_client_id: Option<String>,
    /// Announce each live pipeline to Home Assistant over MQTT discovery (recording, motion and
    /// label sensors, a snapshot camera, an activate switch), under HA's discovery prefix
    /// (default `homeassistant`).
    #[arg(long, value_name = "PREFIX", requires = "mqtt", num_args = 0..=1, default_missing_value = "homeassistant")]
    pub ha_discovery: Option<String>,
    /// Pause between two reads of an RTSP session over TCP, in milliseconds: the media read in
    /// one go travels downstream as one burst. Longer saves CPU (wake-ups are what recording
    /// costs), shorter lowers latency; 0 reads every packet as it arrives. Default: 500, or 40
    /// when the topology has a VideoSink (its live playback shows the added latency). UDP
    /// sessions are always read as packets arrive.
    #[arg(long, value_name = "MS")]
    pub read_interval_ms: Option<u64>,
    /// Longest time between two fsyncs of a file a FileSink is writing, in milliseconds: what
    /// a power cut can lose (a crash or kill of vigil loses nothing complete). 0 syncs every
    /// fragment (at most 1 s). Default: 5000. Files are always synced when they close.
    /// VideoSinks sync every fragment before recording it in the catalog.
    #[arg(long, value_name = "MS")]
    pub sync_interval_ms: Option<u64>,
    /// How long a pipeline that stops waits for its VideoSinks' segments to reach the object
    /// store, in seconds (they stay in the cache and are uploaded later if it runs out).
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub upload_wait_s: u64,
    /// Tokens for the HTTP listener: lines `operator TOKEN` (control methods, triggers) and
    /// `viewer TOKEN` (playback, events, metrics); also VIGIL_OPERATOR_TOKEN and
    /// VIGIL_VIEWER_TOKEN. Without any, nothing is asked and the listener must be on loopback.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// A host name requests may name in `Host` besides IP addresses and localhost (DNS
    /// rebinding defence); repeatable.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Serve HTTPS with the certificate chain in FILE (PEM, end-entity first); read again when
    /// it or the key changes. Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Trust the CA certificates in FILE (PEM) besides the system's, for every connection
    /// Vigil makes: HttpExtension and GrpcExtension endpoints, the object store, an `mqtts://` broker.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Largest trigger body (MQTT payload or HTTP body), in KiB (default 64).
    #[arg(long, value_name = "KIB")]
    pub max_trigger_kib: Option<usize>,
    /// Largest method payload (MQTT or HTTP), in KiB (default 2048).
    #[arg(long, value_name = "KIB")]
    pub max_method_kib: Option<usize>,
    /// Largest inference reply read, in KiB (default 1024).
    #[arg(long, value_name = "KIB")]
    pub max_reply_kib: Option<usize>,
}

impl ServiceArgs {
    /// The MQTT user name and its password (`VIGIL_MQTT_PASSWORD`, empty when unset).
    pub fn mqtt_credentials(&self) -> Option<(String, String)> {
        let user = self.mqtt_user.clone()?;
        Some((
            user,
            std::env::var("VIGIL_MQTT_PASSWORD").unwrap_or_default(),
        ))
    }

    /// Applies the process-wide settings (the CAs Vigil's own TLS connections trust, the input
    /// limits) and returns who may call the HTTP listener: the tokens and allowed host names.
    pub fn start_up(&self) -> anyhow::Result<crate::api::auth::AccessPolicy> {
        if let Some(path) = &self.ca_file {
            crate::tls::trust_ca_file(path)?;
        }
        crate::limits::set(crate::limits::InputLimits::with_kib(
            self.max_trigger_kib,
            self.max_method_kib,
            self.max_reply_kib,
        )?)?;
        Ok(crate::api::auth::AccessPolicy {
            tokens: crate::api::auth::Tokens::load(self.tokens.as_deref())?,
            allowed_hosts: self.allowed_hosts.clone(),
            secure_cookie: self.tls_cert.is_some(),
            throttle: Default::default(),
            events: None,
        })
    }

    /// The HTTPS listener's certificate and key files, when it serves HTTPS.
    pub fn tls(&self) -> Option<crate::tls::server::CertificateFiles> {
        Some(crate::tls::server::CertificateFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }

    /// The live pipelines' settings, with the archive override `archive`.
    pub fn live_options(&self, archive: Option<PathBuf>) -> crate::pipeline::live::LiveOptions {
        crate::pipeline::live::LiveOptions {
            read_interval: self.read_interval_ms.map(std::time::Duration::from_millis),
            sync_interval: self.sync_interval_ms.map(std::time::Duration::from_millis),
            archive,
            upload_wait: std::time::Duration::from_secs(self.upload_wait_s),
        }
    }
}

/// `vigil run` options.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// The topology and its parameters.
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Address of the HTTP listener (trigger inputs, methods, playback, health).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    pub http: String,
    /// The service's settings.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Where the VideoSinks keep and upload their media.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `vigil replay` options.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The topology and its parameters.
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// The recorded video (MP4, progressive or fragmented; H.264 or H.265).
    #[arg(long, value_name = "FILE.mp4")]
    pub input: PathBuf,
    /// External events, one per line: {"at": <seconds from the first sample>, "input":
    /// "<hubInputName>", "body": {...}}.
    #[arg(long, value_name = "FILE.jsonl")]
    pub events: Option<PathBuf>,
    /// Where the VideoSinks keep and upload their media.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// UTC time of the file's first sample (default: the time recorded in the file, else
    /// 1970-01-01T00:00:00Z).
    #[arg(long, value_name = "ISO8601")]
    pub start_time: Option<String>,
    /// Append events to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub event_log: Option<PathBuf>,
    /// Trust the CA certificates in FILE (PEM) besides the system's, for an `https://` store.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// The VideoSinks' archive directory and object store (run and replay).
#[derive(Clone, Debug, Args)]
pub struct StorageArgs {
    /// Archive directory of the VideoSinks (segments and catalog), instead of the first
    /// VideoSink's `localMediaCachePath`.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// Upload completed segments to this object store: s3://BUCKET/PREFIX,
    /// azure://CONTAINER/PREFIX, gs://BUCKET/PREFIX or file:///FOLDER; credentials from the
    /// environment (AWS_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS; see the README).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

/// The topology and its parameter values.
#[derive(Clone, Debug, Args)]
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
    let code = command(Cli::parse());
    // The snapshots of the clips recorded are written (and announced) before the process ends.
    crate::media::snapshot::wait_idle(std::time::Duration::from_secs(10));
    // Every event emitted is in the log before the process ends.
    crate::bus::log_writer::flush_all(std::time::Duration::from_secs(10));
    code
}

fn command(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(args) => validate(&args),
        Command::Run(args) => run(&args),
        Command::Replay(args) => replay(&args),
        Command::Serve(args) => serve(&args),
        Command::Explain(args) => explain::explain(&args),
        Command::Filter(args) => match &args.action {
            filter::FilterAction::New(a) => filter_new::filter_new(a),
            filter::FilterAction::Test(a) => filter_test::filter_test(a),
        },
        Command::Topology(args) => client_command(&args.server, args.ca_file.as_deref(), |c| {
            topology_command(c, &args)
        }),
        Command::Pipeline(args) => client_command(&args.server, args.ca_file.as_deref(), |c| {
            pipeline_command(c, &args)
        }),
        Command::Methods(args) => client_command(&args.server, args.ca_file.as_deref(), |c| {
            match &args.action {
                MethodsAction::Run { file } => match client::run_operations(c, file, args.json)? {
                    0 => Ok(()),
                    n => anyhow::bail!("{n} operation(s) answered with an error"),
                },
            }
        }),
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
        template: false,
    })
}

/// Reads and validates one topology file; the error text has one line per problem, each prefixed
/// with the file name.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Topology, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let topology = load_topology(&text, options).map_err(|errs| prefix_errors(path, &errs))?;
    // What running it would refuse is reported now, every problem at once.
    let refused = crate::pipeline::plan::runtime_errors(&topology);
    if !refused.is_empty() {
        return Err(prefix_errors(path, &TopologyErrors(refused)));
    }
    Ok(topology)
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

fn load_single(args: &TopologyArgs) -> Result<Topology, String> {
    let options = load_options(args)?;
    let [path] = args.topologies.as_slice() else {
        return Err("give exactly one topology".into());
    };
    load_file(path, &options)
}

fn run(args: &RunArgs) -> ExitCode {
    let access = match args.service.start_up() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vigil run: {e:#}");
            return ExitCode::from(2);
        }
    };
    let startup = match single_startup(&args.topology) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    init_tracing();
    let config = crate::service::process::ProcessConfig {
        http: args.http.clone(),
        mqtt: args.service.mqtt.clone(),
        mqtt_credentials: args.service.mqtt_credentials(),
        mqtt_client_id: args.service.mqtt_client_id.clone(),
        home_assistant: args.service.ha_discovery.clone(),
        event_log: args.service.event_log.clone(),
        store: args.storage.store.clone(),
        options: args.service.live_options(args.storage.archive.clone()),
        data_dir: None,
        cluster: None,
        playback_archive: args.storage.archive.clone(),
        limits: crate::service::Limits::default(),
        access,
        tls: args.service.tls(),
    };
    match crate::service::process::run_process(config, startup) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil run: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `vigil run`'s one topology and live pipeline, checked as `validate` checks them.
fn single_startup(args: &TopologyArgs) -> Result<crate::service::process::Startup, String> {
    let options = load_options(args)?;
    let [path] = args.topologies.as_slice() else {
        return Err("give exactly one topology".into());
    };
    let topology = load_file(path, &options)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let document: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut parameters: Vec<(String, String)> = Vec::new();
    let given = options
        .live_pipeline
        .iter()
        .flat_map(|l| l.values.iter())
        .chain(options.values.iter());
    for v in given {
        parameters.retain(|(n, _)| n != &v.name);
        parameters.push((v.name.clone(), v.value.clone()));
    }
    Ok(crate::service::process::Startup::Single {
        topology: document,
        topology_name: topology.name.clone(),
        pipeline: topology.pipeline_name.clone(),
        parameters,
    })
}

fn replay(args: &ReplayArgs) -> ExitCode {
    let topology = match load_single(&args.topology) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &args.ca_file
        && let Err(e) = crate::tls::trust_ca_file(path)
    {
        eprintln!("vigil replay: {e}");
        return ExitCode::from(2);
    }
    init_tracing();
    match run_replay(&topology, args) {
        Ok(report) => {
            eprintln!(
                "vigil replay: {} samples, {} events",
                report.samples, report.events
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil replay: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_replay(
    topology: &Topology,
    args: &ReplayArgs,
) -> anyhow::Result<crate::pipeline::replay::ReplayReport> {
    use crate::pipeline::{plan::PipelinePlan, replay};
    let mut plan = PipelinePlan::from_topology(topology)?;
    plan.override_archive(args.storage.archive.as_deref());
    let video = crate::media::mp4_reader::Mp4Video::open(&args.input)?;
    let start = match &args.start_time {
        Some(t) => crate::bus::trigger::parse_utc(t).map_err(anyhow::Error::msg)?,
        None => video.recorded_start.unwrap_or_default(),
    };
    let events = match &args.events {
        Some(p) => replay::read_events(p)?,
        None => Vec::new(),
    };
    let bus =
        crate::bus::event_log::EventBus::new(&topology.pipeline_name, args.event_log.as_deref())?;
    let store = crate::archive::open_store(args.storage.store.as_deref())?;
    // A replay makes every snapshot, however fast it runs.
    crate::media::snapshot::wait_when_full();
    let report = replay::replay(&plan, &video, start, &events, &bus)?;
    // The clips' snapshots are written before the keeper's pass (which may delete their clips).
    crate::media::snapshot::wait_idle(std::time::Duration::from_secs(10));
    // What the replay recorded goes to the store, and the cache is brought within its budget.
    if let Some(dir) = &plan.archive {
        crate::archive::keeper::Keeper::new(dir, store, plan.archive_budget, bus.clone())?
            .run_once();
    }
    Ok(report)
}

fn serve(args: &ServeArgs) -> ExitCode {
    if let Some(dir) = &args.config
        && !dir.is_dir()
    {
        eprintln!("vigil serve: --config {}: not a directory", dir.display());
        return ExitCode::from(2);
    }
    let access = match args.service.start_up() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vigil serve: {e:#}");
            return ExitCode::from(2);
        }
    };
    let cluster = match args.cluster.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vigil serve: {e}");
            return ExitCode::from(2);
        }
    };
    if args.data_dir.is_none() && args.config.is_none() && cluster.is_none() {
        match &args.archive {
            None => {
                eprintln!(
                    "vigil serve: give --data-dir DIR (the service's documents), --config DIR (a folder of documents to follow) or --archive DIR (an archive to play back)"
                );
                return ExitCode::from(2);
            }
            Some(dir) if !dir.join("catalog.sqlite3").exists() => {
                eprintln!(
                    "vigil serve: {} is not an archive (no catalog.sqlite3)",
                    dir.display()
                );
                return ExitCode::from(1);
            }
            Some(_) => {}
        }
    }
    init_tracing();
    let config = crate::service::process::ProcessConfig {
        http: args.http.clone(),
        mqtt: args.service.mqtt.clone(),
        mqtt_credentials: args.service.mqtt_credentials(),
        mqtt_client_id: args.service.mqtt_client_id.clone(),
        home_assistant: args.service.ha_discovery.clone(),
        event_log: args.service.event_log.clone(),
        store: args.store.clone(),
        options: args.service.live_options(args.archive.clone()),
        data_dir: args.data_dir.clone(),
        cluster,
        playback_archive: args.archive.clone(),
        limits: crate::service::Limits {
            pipelines: args.max_pipelines,
            topologies: args.max_topologies,
        },
        access,
        tls: args.service.tls(),
    };
    let startup = match &args.config {
        Some(dir) => crate::service::process::Startup::Follow(dir.clone()),
        None => crate::service::process::Startup::Restore,
    };
    match crate::service::process::run_process(config, startup) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil serve: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default: info).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
