//! The parsed, validated topology: one model for AVA 1.x, LVA 2.0 and our own node types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::node_type::{NodeRole, NodeType};
use super::params::ParameterDeclaration;
use crate::media::time::MediaDuration;
use crate::nodes::signal_gate::GateTiming;

/// Which format a topology document was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Azure Video Analyzer edge (`#Microsoft.VideoAnalyzer.*`, `@apiVersion` 1.x).
    Ava,
    /// AVA cloud (ARM resource shape: `Name`, `Kind`, `Sku`, `Properties`).
    AvaCloud,
    /// Live Video Analytics media graph (`#Microsoft.Media.MediaGraph*`, 1.0/2.0).
    Lva,
}

/// A topology with parameters substituted, ready to build a pipeline from.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Topology name (`name`).
    pub name: String,
    /// Live pipeline name: `${System.PipelineName}`.
    pub pipeline_name: String,
    /// `@apiVersion`, when given.
    pub api_version: Option<String>,
    /// Source format.
    pub dialect: Dialect,
    /// `properties.description`.
    pub description: Option<String>,
    /// Declared parameters.
    pub parameters: Vec<ParameterDeclaration>,
    /// The value each parameter resolved to.
    pub values: BTreeMap<String, String>,
    /// Every node, sources first, then processors, then sinks.
    pub nodes: Vec<Node>,
}

impl Topology {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Nodes that read from `name`.
    pub fn consumers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes
            .iter()
            .filter(move |n| n.inputs.iter().any(|i| i.node_name == name))
    }

    /// One line for `vigil validate`.
    pub fn summary(&self) -> String {
        let count = |role| self.nodes.iter().filter(|n| n.role == role).count();
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}:{}", n.name, n.node_type.short_name()))
            .collect();
        format!(
            "valid: topology '{}' ({:?}{}), pipeline '{}': {} sources, {} processors, {} sinks [{}], {} parameters",
            self.name,
            self.dialect,
            self.api_version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default(),
            self.pipeline_name,
            count(NodeRole::Source),
            count(NodeRole::Processor),
            count(NodeRole::Sink),
            nodes.join(", "),
            self.parameters.len()
        )
    }
}

/// One node of the graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// Unique name.
    pub name: String,
    /// Its type.
    pub node_type: NodeType,
    /// Source, processor or sink.
    pub role: NodeRole,
    /// JSON path of the node object.
    pub path: String,
    /// Upstream nodes it reads.
    pub inputs: Vec<NodeInput>,
    /// Type-specific settings.
    pub config: NodeConfig,
}

/// Kind of stream carried on an edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// Video access units or frames.
    Video,
    /// Audio.
    Audio,
    /// Metadata and events.
    Application,
}

/// `is` / `isNot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorOperator {
    /// Keep only this media type.
    Is,
    /// Keep everything but this media type.
    IsNot,
}

/// `{property: mediaType, operator, value}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputSelector {
    /// How to compare.
    pub operator: SelectorOperator,
    /// The media type compared with.
    pub media_type: MediaType,
}

/// An edge: which upstream node, which of its streams.
#[derive(Clone, Debug)]
pub struct NodeInput {
    /// Upstream node name.
    pub node_name: String,
    /// Stream filters; none means every stream.
    pub selectors: Vec<OutputSelector>,
}

impl NodeInput {
    /// Whether this edge carries streams of `media_type`.
    pub fn accepts(&self, media_type: MediaType) -> bool {
        self.selectors.iter().all(|s| match s.operator {
            SelectorOperator::Is => s.media_type == media_type,
            SelectorOperator::IsNot => s.media_type != media_type,
        })
    }
}

/// Type-specific settings of a node.
#[derive(Clone, Debug)]
pub enum NodeConfig {
    /// RTSP camera.
    RtspSource(RtspSourceConfig),
    /// External trigger input.
    IotHubMessageSource(MessageSourceConfig),
    /// Motion detection.
    MotionDetection(MotionDetectionConfig),
    /// Signal gate timing.
    SignalGate(GateTiming),
    /// HTTP inference extension.
    HttpExtension(HttpExtensionConfig),
    /// gRPC inference extension.
    GrpcExtension(GrpcExtensionConfig),
    /// Custom WebAssembly component.
    WasmProcessor(WasmProcessorConfig),
    /// MP4 file per activation.
    FileSink(FileSinkConfig),
    /// Video archive.
    VideoSink(VideoSinkConfig),
    /// Event output.
    IotHubMessageSink(MessageSinkConfig),
    /// A type parsed but not run (reported as `not supported`).
    NotSupported,
    /// Settings with errors (reported); such a topology is never run.
    Invalid,
}

/// Login for an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Basic/Digest user name and password.
    UsernamePassword {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A header sent with every request (e.g. `Authorization: Bearer …`).
    HttpHeader {
        /// Header name.
        name: String,
        /// Header value.
        value: String,
    },
}

/// TLS settings of a `TlsEndpoint`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Extra trusted certificates, PEM.
    pub trusted_certificates: Vec<String>,
    /// Accept a certificate for another host name.
    pub ignore_hostname: bool,
    /// Accept a certificate with a bad signature.
    pub ignore_signature: bool,
}

/// Where a node connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL.
    pub url: String,
    /// Login, if any.
    pub credentials: Option<Credentials>,
    /// TLS settings for a `TlsEndpoint`.
    pub tls: Option<TlsOptions>,
}

/// RTSP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtspTransport {
    /// RTP interleaved in the RTSP TCP connection (AVA's default).
    Tcp,
    /// RTSP tunnelled in HTTP (AVA); not run yet.
    Http,
    /// RTP over UDP (our extension).
    Udp,
}

/// RtspSource settings.
#[derive(Clone, Debug)]
pub struct RtspSourceConfig {
    /// Camera URL and login.
    pub endpoint: Endpoint,
    /// How RTP travels.
    pub transport: RtspTransport,
}

/// IotHubMessageSource settings.
#[derive(Clone, Debug)]
pub struct MessageSourceConfig {
    /// Input name: MQTT topic `vigil/<pipeline>/inputs/<name>`.
    pub hub_input_name: String,
}

/// IotHubMessageSink settings.
#[derive(Clone, Debug)]
pub struct MessageSinkConfig {
    /// Output name: MQTT topic `vigil/<pipeline>/outputs/<name>`.
    pub hub_output_name: String,
}

/// Motion sensitivity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sensitivity {
    /// Only large, clear motion.
    Low,
    /// The default.
    Medium,
    /// Small motion too.
    High,
}

/// MotionDetectionProcessor settings.
#[derive(Clone, Debug)]
pub struct MotionDetectionConfig {
    /// `sensitivity` (default medium).
    pub sensitivity: Sensitivity,
    /// `outputMotionRegion` (default true).
    pub output_motion_region: bool,
    /// `eventAggregationWindow` (default PT1S).
    pub event_aggregation_window: MediaDuration,
    /// Our extension: a component file to use instead of the built-in detector.
    pub module: Option<String>,
}

/// How a frame is scaled before it is sent to an extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// Letter/pillar-box to exactly width×height.
    Pad,
    /// Keep the aspect ratio, fit inside width×height.
    PreserveAspectRatio,
    /// Distort to width×height.
    Stretch,
}

/// `image.scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageScale {
    /// Scaling mode.
    pub mode: ScaleMode,
    /// Target width in pixels.
    pub width: Option<u32>,
    /// Target height in pixels.
    pub height: Option<u32>,
}

/// `image.format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG with quality 0–100.
    Jpeg {
        /// Quality, 100 = best.
        quality: u8,
    },
    /// PNG.
    Png,
    /// BMP.
    Bmp,
    /// Raw pixels.
    Raw {
        /// One of AVA's pixel formats (`rgb24`, `bgr24`, `yuv420p`, …).
        pixel_format: String,
    },
}

/// `image`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageProperties {
    /// Scaling; none = source size.
    pub scale: Option<ImageScale>,
    /// Encoding.
    pub format: ImageFormat,
}

/// `samplingOptions`.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingOptions {
    /// Send only frames that carry upstream inferences.
    pub skip_samples_without_annotation: bool,
    /// Cap on frames sent per second; none = every frame.
    pub maximum_samples_per_second: Option<f64>,
}

/// HttpExtension settings.
#[derive(Clone, Debug)]
pub struct HttpExtensionConfig {
    /// Inference server.
    pub endpoint: Endpoint,
    /// Image scale and format.
    pub image: ImageProperties,
    /// Frame sampling.
    pub sampling: SamplingOptions,
}

/// How a GrpcExtension's frames travel (`dataTransfer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataTransfer {
    /// Frame bytes inside the gRPC messages (works with a remote server).
    Embedded,
    /// Frames in a shared-memory file of this many bytes (the server on the same host).
    SharedMemory {
        /// `sharedMemorySizeMiB` × 1 MiB.
        bytes: u64,
    },
}

/// GrpcExtension settings.
#[derive(Clone, Debug)]
pub struct GrpcExtensionConfig {
    /// Inference server (`tcp://host:port`).
    pub endpoint: Endpoint,
    /// Image scale and format.
    pub image: ImageProperties,
    /// Frame sampling.
    pub sampling: SamplingOptions,
    /// Embedded or shared memory.
    pub data_transfer: DataTransfer,
    /// `extensionConfiguration`: passed to the server in the session's descriptor, as written.
    pub extension_configuration: Option<String>,
}

/// WasmProcessor settings (`#Vigil.WasmProcessor`).
#[derive(Clone, Debug)]
pub struct WasmProcessorConfig {
    /// Path to a `.wasm` component, or a built-in module name.
    pub module: String,
    /// Values handed to the component once at start, as the topology wrote them (typed for
    /// 0.2.0 components, as text for 0.1.0 ones).
    pub configuration: BTreeMap<String, serde_json::Value>,
}

/// FileSink settings.
#[derive(Clone, Debug)]
pub struct FileSinkConfig {
    /// Directory the files go to.
    pub base_directory_path: PathBuf,
    /// File name, `${System.Runtime.*}` still in place; `.mp4` is appended.
    pub file_name_pattern: String,
    /// Disk budget of this sink in MiB; oldest files are deleted past it. None = no limit (LVA 1.0).
    pub maximum_size_mib: Option<u64>,
}

/// VideoSink settings.
#[derive(Clone, Debug)]
pub struct VideoSinkConfig {
    /// The archive to append to.
    pub video_name: String,
    /// Title, set when the video is created.
    pub title: Option<String>,
    /// Description, set when the video is created.
    pub description: Option<String>,
    /// Segment length, 30 s–5 min in 30 s steps (default 30 s).
    pub segment_length: MediaDuration,
    /// Keep media this long; none = forever.
    pub retention_period: Option<MediaDuration>,
    /// Local cache directory; none = the runtime's default.
    pub local_media_cache_path: Option<PathBuf>,
    /// Cache budget in MiB; none = the runtime's default.
    pub local_media_cache_maximum_size_mib: Option<u64>,
    /// `videoPublishingOptions.disableVideoPreviewImage`.
    pub disable_video_preview_image: bool,
}
