//! From a validated topology to what the runners wire: the camera, the gates with their event
//! inputs and sinks, and the message inputs and outputs.

use anyhow::{Result, bail};

use crate::bus::event::node_subject;
use crate::media::time::MediaDuration;
use crate::nodes::signal_gate::GateTiming;
use crate::topology::model::{
    FileSinkConfig, GrpcExtensionConfig, HttpExtensionConfig, MotionDetectionConfig, NodeConfig,
    RtspSourceConfig, VideoSinkConfig,
};
use crate::topology::node_type::NodeType;
use crate::topology::{ErrorKind, Node, Topology, TopologyError};
use crate::wasm::module::{ModuleSource, World};

/// A media sink behind a gate.
#[derive(Clone, Debug)]
pub enum SinkPlan {
    /// One MP4 file per activation.
    File {
        /// Node name.
        name: String,
        /// Settings.
        config: FileSinkConfig,
        /// Event subject.
        subject: String,
        /// Longest time between two fsyncs of an open file.
        sync_interval: std::time::Duration,
    },
    /// Clips appended to a named video in the archive.
    Video {
        /// Node name.
        name: String,
        /// Settings.
        config: VideoSinkConfig,
        /// Event subject.
        subject: String,
    },
}

/// A signal gate and what it feeds.
#[derive(Clone, Debug)]
pub struct GatePlan {
    /// Node name.
    pub name: String,
    /// Timing.
    pub timing: GateTiming,
    /// Nodes whose events open this gate.
    pub event_inputs: Vec<String>,
    /// Sinks behind it.
    pub sinks: Vec<SinkPlan>,
    /// Continuous recording (a VideoSink reading the RtspSource directly, AVA's CVR): the gate
    /// opens itself at each key frame, so it never closes; clips are cut every hour.
    pub continuous: bool,
}

impl GatePlan {
    /// The gate node this plan describes, in pipeline `pipeline`.
    pub fn node(&self, pipeline: &str) -> crate::nodes::gate_node::GateNode {
        use crate::nodes::gate_node::GateNode;
        let gate = if self.continuous {
            GateNode::continuous(self.timing, EVENT_LATENCY_SLACK)
        } else {
            GateNode::new(self.timing, EVENT_LATENCY_SLACK)
        };
        gate.named(pipeline, &self.name)
    }
}

/// The timing of a continuous-recording gate: clips of at most an hour, no gap between them.
pub const CONTINUOUS_TIMING: GateTiming = GateTiming {
    evaluation_window: MediaDuration::ZERO,
    signal_offset: MediaDuration::ZERO,
    minimum_activation: MediaDuration::from_secs(3600),
    maximum_activation: MediaDuration::from_secs(3600),
};

/// An IotHubMessageSource: trigger messages in.
#[derive(Clone, Debug)]
pub struct MessageInput {
    /// Node name.
    pub node: String,
    /// `hubInputName`.
    pub input_name: String,
}

/// What a processor runs.
#[derive(Clone, Debug)]
pub enum ProcessorKind {
    /// MotionDetectionProcessor.
    Motion(MotionDetectionConfig),
    /// `#Vigil.WasmProcessor` with a frame-filter component.
    FrameFilter {
        /// The component.
        module: ModuleSource,
        /// Its configuration.
        settings: crate::wasm::convert::FilterConfig,
    },
    /// HttpExtension: sampled frames to an inference service.
    HttpExtension(HttpExtensionConfig),
    /// GrpcExtension: sampled frames to a gRPC inference server.
    GrpcExtension(GrpcExtensionConfig),
    /// `#Vigil.WasmProcessor` with an event-filter component.
    EventFilter {
        /// The component.
        module: ModuleSource,
        /// Its configuration.
        settings: crate::wasm::convert::FilterConfig,
    },
}

/// A processor that produces events.
#[derive(Clone, Debug)]
pub struct ProcessorPlan {
    /// Node name.
    pub name: String,
    /// Event subject.
    pub subject: String,
    /// What it runs.
    pub kind: ProcessorKind,
    /// Nodes it reads.
    pub inputs: Vec<String>,
}

impl ProcessorPlan {
    /// True for processors that need decoded frames.
    pub fn needs_frames(&self) -> bool {
        !matches!(self.kind, ProcessorKind::EventFilter { .. })
    }
}

/// An IotHubMessageSink: events out on `vigil/<pipeline>/outputs/<hubOutputName>`.
#[derive(Clone, Debug)]
pub struct MessageOutput {
    /// Node name.
    pub node: String,
    /// `hubOutputName`.
    pub output_name: String,
    /// Nodes whose events it publishes.
    pub inputs: Vec<String>,
}

/// Everything a runner needs.
#[derive(Clone, Debug)]
pub struct PipelinePlan {
    /// Pipeline name.
    pub pipeline: String,
    /// The camera node's name and settings.
    pub camera: Option<(String, RtspSourceConfig)>,
    /// Gates.
    pub gates: Vec<GatePlan>,
    /// Trigger inputs.
    pub inputs: Vec<MessageInput>,
    /// Motion detectors.
    pub processors: Vec<ProcessorPlan>,
    /// Event outputs.
    pub outputs: Vec<MessageOutput>,
    /// The archive directory of the VideoSinks (the first one's `localMediaCachePath`, else
    /// `./archive`; `--archive` overrides it); none without a VideoSink.
    pub archive: Option<std::path::PathBuf>,
    /// The archive's local cache budget in bytes (the first VideoSink's
    /// `localMediaCacheMaximumSizeMiB`); none = unbounded.
    pub archive_budget: Option<u64>,
    /// True when a media sink takes audio (its edge from the gate and the gate's edge from the
    /// camera both let audio through).
    pub record_audio: bool,
}

/// How old an event's media time may be and still find its media in the pre-roll buffer.
pub const EVENT_LATENCY_SLACK: MediaDuration = MediaDuration::from_secs(5);

impl PipelinePlan {
    /// Runs `module` in filter node `node` instead of the module its topology names (a swap the
    /// control API made, kept when the pipeline restarts); false when no filter node has that
    /// name.
    pub fn use_module(&mut self, node: &str, module: ModuleSource) -> bool {
        for p in self.processors.iter_mut().filter(|p| p.name == node) {
            match &mut p.kind {
                ProcessorKind::FrameFilter { module: m, .. }
                | ProcessorKind::EventFilter { module: m, .. } => {
                    *m = module;
                    return true;
                }
                ProcessorKind::Motion(config) => {
                    config.module = Some(match module {
                        ModuleSource::Builtin(name) => format!("builtin:{name}"),
                        ModuleSource::File(path) => path.display().to_string(),
                    });
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Builds the plan; fails naming every node this runtime cannot run (see [`runtime_errors`]).
    pub fn from_topology(t: &Topology) -> Result<Self> {
        let errors = runtime_errors(t);
        if !errors.is_empty() {
            bail!("{}", crate::topology::TopologyErrors(errors));
        }
        let camera = t.nodes.iter().find_map(|n| match &n.config {
            NodeConfig::RtspSource(c) => Some((n.name.clone(), c.clone())),
            _ => None,
        });
        let inputs = t
            .nodes
            .iter()
            .filter_map(|n| match &n.config {
                NodeConfig::IotHubMessageSource(c) => Some(MessageInput {
                    node: n.name.clone(),
                    input_name: c.hub_input_name.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut gates: Vec<GatePlan> = t
            .nodes
            .iter()
            .filter_map(|n| match &n.config {
                NodeConfig::SignalGate(timing) => Some(gate_plan(t, n, *timing)),
                _ => None,
            })
            .collect();
        gates.extend(continuous_gates(t));
        let mut processors = Vec::new();
        for n in &t.nodes {
            let kind = match &n.config {
                NodeConfig::MotionDetection(c) => ProcessorKind::Motion(c.clone()),
                NodeConfig::HttpExtension(c) => ProcessorKind::HttpExtension(c.clone()),
                NodeConfig::GrpcExtension(c) => ProcessorKind::GrpcExtension(c.clone()),
                NodeConfig::WasmProcessor(c) => {
                    let module = ModuleSource::parse(&c.module);
                    let loaded = module
                        .load()
                        .map_err(|e| anyhow::anyhow!("node '{}': {e:#}", n.name))?;
                    let settings = c
                        .configuration
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    match loaded.world {
                        World::Frame => ProcessorKind::FrameFilter { module, settings },
                        World::Event => ProcessorKind::EventFilter { module, settings },
                    }
                }
                _ => continue,
            };
            processors.push(ProcessorPlan {
                name: n.name.clone(),
                subject: node_subject(&t.pipeline_name, "processors", &n.name),
                kind,
                inputs: n.inputs.iter().map(|i| i.node_name.clone()).collect(),
            });
        }
        let outputs = t
            .nodes
            .iter()
            .filter_map(|n| match &n.config {
                NodeConfig::IotHubMessageSink(c) => Some(MessageOutput {
                    node: n.name.clone(),
                    output_name: c.hub_output_name.clone(),
                    inputs: n.inputs.iter().map(|i| i.node_name.clone()).collect(),
                }),
                _ => None,
            })
            .collect();
        Ok(Self {
            pipeline: t.pipeline_name.clone(),
            camera,
            gates,
            inputs,
            processors,
            outputs,
            record_audio: audio_selected(t),
            archive_budget: t.nodes.iter().find_map(|n| match &n.config {
                NodeConfig::VideoSink(c) => c
                    .local_media_cache_maximum_size_mib
                    .map(|m| m.saturating_mul(1024 * 1024)),
                _ => None,
            }),
            archive: t.nodes.iter().find_map(|n| match &n.config {
                NodeConfig::VideoSink(c) => Some(
                    c.local_media_cache_path
                        .clone()
                        .unwrap_or_else(|| std::path::PathBuf::from("./archive")),
                ),
                _ => None,
            }),
        })
    }

    /// Uses `dir` as the archive of the VideoSinks, when given and there are any.
    pub fn override_archive(&mut self, dir: Option<&std::path::Path>) {
        if let (Some(dir), Some(archive)) = (dir, self.archive.as_mut()) {
            *archive = dir.to_path_buf();
        }
    }

    /// Sets how often the FileSinks fsync an open file (see
    /// [`crate::nodes::file_sink::DEFAULT_SYNC_INTERVAL`]); `None` keeps the default.
    pub fn override_sync_interval(&mut self, interval: Option<std::time::Duration>) {
        let Some(interval) = interval else { return };
        for gate in &mut self.gates {
            for sink in &mut gate.sinks {
                if let SinkPlan::File { sync_interval, .. } = sink {
                    *sync_interval = interval;
                }
            }
        }
    }

    /// MQTT topics an event from node `source` is published on.
    pub fn topics_fed_by<'a>(&'a self, source: &'a str) -> impl Iterator<Item = String> + 'a {
        self.outputs
            .iter()
            .filter(move |o| o.inputs.iter().any(|i| i == source))
            .map(|o| format!("vigil/{}/outputs/{}", self.pipeline, o.output_name))
    }

    /// Event filters that read events from node `source`.
    pub fn filters_fed_by<'a>(&'a self, source: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.processors
            .iter()
            .enumerate()
            .filter(move |(_, p)| {
                matches!(p.kind, ProcessorKind::EventFilter { .. })
                    && p.inputs.iter().any(|i| i == source)
            })
            .map(|(i, _)| i)
    }

    /// Gates that an event from node `source` opens.
    pub fn gates_fed_by<'a>(&'a self, source: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.gates
            .iter()
            .enumerate()
            .filter(move |(_, g)| g.event_inputs.iter().any(|i| i == source))
            .map(|(i, _)| i)
    }
}

/// What a valid topology still needs before this build can run it, every problem at once, each
/// naming the node and its JSON path: node types it does not run and WebAssembly modules that cannot be read or compiled. `vigil validate` and the
/// control API report these before anything runs.
pub fn runtime_errors(t: &Topology) -> Vec<TopologyError> {
    let mut errors = Vec::new();
    if !t.nodes.iter().any(|n| n.node_type == NodeType::RtspSource) && !t.nodes.is_empty() {
        errors.push(TopologyError {
            kind: ErrorKind::Invalid,
            path: "$.properties.sources".into(),
            node: None,
            message: "a live pipeline needs an RtspSource (the camera)".into(),
        });
    }
    for n in &t.nodes {
        match &n.config {
            _ if !is_runnable(n.node_type) => errors.push(TopologyError {
                kind: ErrorKind::NotSupported,
                path: n.path.clone(),
                node: Some(n.name.clone()),
                message: format!(
                    "this build does not run {} nodes yet (it runs RtspSource, IotHubMessageSource, MotionDetectionProcessor, HttpExtension, GrpcExtension, #Vigil.WasmProcessor, SignalGateProcessor, FileSink, VideoSink and IotHubMessageSink)",
                    n.node_type.short_name()
                ),
            }),
            NodeConfig::WasmProcessor(c) => errors.extend(module_error(n, &c.module)),
            NodeConfig::MotionDetection(c) => {
                errors.extend(c.module.as_deref().and_then(|m| module_error(n, m)))
            }
            _ => {}
        }
    }
    errors
}

/// The error of node `n`'s `module`, if it cannot be read or compiled.
fn module_error(n: &Node, module: &str) -> Option<TopologyError> {
    let e = ModuleSource::parse(module).load().err()?;
    Some(TopologyError {
        kind: ErrorKind::Invalid,
        path: format!("{}.module", n.path),
        node: Some(n.name.clone()),
        message: format!("{e:#}"),
    })
}

fn is_runnable(t: NodeType) -> bool {
    matches!(
        t,
        NodeType::RtspSource
            | NodeType::IotHubMessageSource
            | NodeType::SignalGateProcessor
            | NodeType::FileSink
            | NodeType::VideoSink
            | NodeType::MotionDetectionProcessor
            | NodeType::WasmProcessor
            | NodeType::HttpExtension
            | NodeType::GrpcExtension
            | NodeType::IotHubMessageSink
    )
}

fn audio_selected(t: &Topology) -> bool {
    use crate::topology::model::MediaType;
    t.nodes
        .iter()
        .filter(|n| n.node_type.is_media_sink())
        .any(|sink| {
            sink.inputs
                .iter()
                .filter(|i| i.accepts(MediaType::Audio))
                .any(|i| {
                    t.node(&i.node_name).is_some_and(|gate| {
                        gate.node_type == NodeType::SignalGateProcessor
                            && gate.inputs.iter().any(|gi| {
                                gi.accepts(MediaType::Audio)
                                    && t.node(&gi.node_name)
                                        .is_some_and(|n| n.node_type == NodeType::RtspSource)
                            })
                    })
                })
        })
}

/// A continuous gate for each VideoSink that reads the RtspSource directly (CVR).
fn continuous_gates(t: &Topology) -> Vec<GatePlan> {
    t.nodes
        .iter()
        .filter_map(|n| match &n.config {
            NodeConfig::VideoSink(c)
                if n.inputs.iter().any(|i| {
                    t.node(&i.node_name)
                        .is_some_and(|s| s.node_type == NodeType::RtspSource)
                }) =>
            {
                Some(GatePlan {
                    name: format!("{} (continuous)", n.name),
                    timing: CONTINUOUS_TIMING,
                    event_inputs: Vec::new(),
                    sinks: vec![SinkPlan::Video {
                        name: n.name.clone(),
                        config: c.clone(),
                        subject: node_subject(&t.pipeline_name, "sinks", &n.name),
                    }],
                    continuous: true,
                })
            }
            _ => None,
        })
        .collect()
}

fn gate_plan(t: &Topology, gate: &Node, timing: GateTiming) -> GatePlan {
    let event_inputs = gate
        .inputs
        .iter()
        .filter(|i| {
            t.node(&i.node_name)
                .is_some_and(|n| n.node_type != NodeType::RtspSource)
        })
        .map(|i| i.node_name.clone())
        .collect();
    let sinks = t
        .consumers(&gate.name)
        .filter_map(|n| match &n.config {
            NodeConfig::FileSink(c) => Some(SinkPlan::File {
                name: n.name.clone(),
                config: c.clone(),
                subject: node_subject(&t.pipeline_name, "sinks", &n.name),
                sync_interval: crate::nodes::file_sink::DEFAULT_SYNC_INTERVAL,
            }),
            NodeConfig::VideoSink(c) => Some(SinkPlan::Video {
                name: n.name.clone(),
                config: c.clone(),
                subject: node_subject(&t.pipeline_name, "sinks", &n.name),
            }),
            _ => None,
        })
        .collect();
    GatePlan {
        name: gate.name.clone(),
        timing,
        event_inputs,
        sinks,
        continuous: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{LoadOptions, load_topology};

    #[test]
    fn a_swapped_module_replaces_the_one_the_topology_names() {
        let text = include_str!("../../../topologies/motion-to-files.json");
        let topology = load_topology(text, &LoadOptions::default()).expect("loads");
        let mut plan = PipelinePlan::from_topology(&topology).expect("a plan");
        assert!(plan.use_module("motion", ModuleSource::parse("/tmp/my-motion.wasm")));
        let motion = plan
            .processors
            .iter()
            .find(|p| p.name == "motion")
            .expect("the motion node");
        match &motion.kind {
            ProcessorKind::Motion(config) => {
                assert_eq!(config.module.as_deref(), Some("/tmp/my-motion.wasm"))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !plan.use_module("gate", ModuleSource::parse("x.wasm")),
            "not a filter"
        );
        assert!(!plan.use_module("nobody", ModuleSource::parse("x.wasm")));
    }
}
