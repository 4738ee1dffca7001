//! Node type names: AVA (`#Microsoft.VideoAnalyzer.X`), LVA (`#Microsoft.Media.MediaGraphX`) and
//! our own (`#Vigil.X`), matched case-insensitively, mapped onto one set of kinds.

/// Whether a node is a source, processor or sink (the array it must appear in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    /// Listed under `properties.sources`.
    Source,
    /// Listed under `properties.processors`.
    Processor,
    /// Listed under `properties.sinks`.
    Sink,
}

impl NodeRole {
    /// The topology array that holds nodes of this role.
    pub fn array_name(self) -> &'static str {
        match self {
            NodeRole::Source => "sources",
            NodeRole::Processor => "processors",
            NodeRole::Sink => "sinks",
        }
    }
}

/// Every node type the parser knows, run or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeType {
    /// RTSP camera.
    RtspSource,
    /// External trigger messages (MQTT / HTTP in this runtime).
    IotHubMessageSource,
    /// Motion detection (a WebAssembly component).
    MotionDetectionProcessor,
    /// Event-gated pass-through of media.
    SignalGateProcessor,
    /// Frames to an HTTP inference server.
    HttpExtension,
    /// Any frame- or event-filter WebAssembly component (`#Vigil.WasmProcessor`).
    WasmProcessor,
    /// One MP4 file per gate activation.
    FileSink,
    /// Clips appended to a named video archive.
    VideoSink,
    /// Events out (MQTT topic in this runtime).
    IotHubMessageSink,
    /// Frames to a gRPC inference server (AVA's extension protocol).
    GrpcExtension,
    /// Azure spatial analysis (not run).
    CognitiveServicesVisionProcessor,
    /// Object tracking (not run).
    ObjectTrackingProcessor,
    /// Line crossing (not run).
    LineCrossingProcessor,
    /// LVA 1.0 frame-rate filter (not run).
    FrameRateFilterProcessor,
    /// LVA Media Services asset sink (not run).
    AssetSink,
    /// Cloud-only: read from a video archive (not run).
    VideoSource,
    /// Cloud-only: re-encode (not run).
    EncoderProcessor,
}

const TABLE: &[(&str, NodeType, NodeRole, bool)] = &[
    ("RtspSource", NodeType::RtspSource, NodeRole::Source, true),
    (
        "IotHubMessageSource",
        NodeType::IotHubMessageSource,
        NodeRole::Source,
        true,
    ),
    (
        "MotionDetectionProcessor",
        NodeType::MotionDetectionProcessor,
        NodeRole::Processor,
        true,
    ),
    (
        "SignalGateProcessor",
        NodeType::SignalGateProcessor,
        NodeRole::Processor,
        true,
    ),
    (
        "HttpExtension",
        NodeType::HttpExtension,
        NodeRole::Processor,
        true,
    ),
    (
        "WasmProcessor",
        NodeType::WasmProcessor,
        NodeRole::Processor,
        true,
    ),
    ("FileSink", NodeType::FileSink, NodeRole::Sink, true),
    ("VideoSink", NodeType::VideoSink, NodeRole::Sink, true),
    (
        "IotHubMessageSink",
        NodeType::IotHubMessageSink,
        NodeRole::Sink,
        true,
    ),
    (
        "GrpcExtension",
        NodeType::GrpcExtension,
        NodeRole::Processor,
        true,
    ),
    (
        "CognitiveServicesVisionProcessor",
        NodeType::CognitiveServicesVisionProcessor,
        NodeRole::Processor,
        false,
    ),
    (
        "CognitiveServicesVisionExtension",
        NodeType::CognitiveServicesVisionProcessor,
        NodeRole::Processor,
        false,
    ),
    (
        "ObjectTrackingProcessor",
        NodeType::ObjectTrackingProcessor,
        NodeRole::Processor,
        false,
    ),
    (
        "LineCrossingProcessor",
        NodeType::LineCrossingProcessor,
        NodeRole::Processor,
        false,
    ),
    (
        "FrameRateFilterProcessor",
        NodeType::FrameRateFilterProcessor,
        NodeRole::Processor,
        false,
    ),
    ("AssetSink", NodeType::AssetSink, NodeRole::Sink, false),
    (
        "VideoSource",
        NodeType::VideoSource,
        NodeRole::Source,
        false,
    ),
    (
        "EncoderProcessor",
        NodeType::EncoderProcessor,
        NodeRole::Processor,
        false,
    ),
];

const PREFIXES: &[&str] = &[
    "#microsoft.videoanalyzer.",
    "#microsoft.media.mediagraph",
    "#vigil.",
];

/// What a `@type` string names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedType {
    /// The kind of node.
    pub node_type: NodeType,
    /// The array it belongs in.
    pub role: NodeRole,
    /// Whether this runtime runs it.
    pub supported: bool,
}

impl NodeType {
    /// The AVA short name (`SignalGateProcessor`), or `WasmProcessor` for ours.
    pub fn short_name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(_, t, _, _)| *t == self)
            .map(|(n, _, _, _)| *n)
            .unwrap_or("?")
    }

    /// True for sinks that write media (FileSink, VideoSink, and LVA's AssetSink).
    pub fn is_media_sink(self) -> bool {
        matches!(
            self,
            NodeType::FileSink | NodeType::VideoSink | NodeType::AssetSink
        )
    }
}

/// Looks up a `@type` discriminator, case-insensitively, in any of the three dialects.
pub fn resolve_type(type_name: &str) -> Option<ResolvedType> {
    let lower = type_name.trim().to_ascii_lowercase();
    let short = PREFIXES.iter().find_map(|p| lower.strip_prefix(p))?;
    TABLE
        .iter()
        .find(|(name, _, _, _)| name.eq_ignore_ascii_case(short))
        .map(|&(_, node_type, role, supported)| ResolvedType {
            node_type,
            role,
            supported,
        })
}

/// Checks a sub-object's `@type` (endpoints, credentials, image formats) against the accepted
/// short names; returns the matching short name.
pub fn resolve_subtype(type_name: &str, accepted: &[&'static str]) -> Option<&'static str> {
    let lower = type_name.trim().to_ascii_lowercase();
    let short = PREFIXES.iter().find_map(|p| lower.strip_prefix(p))?;
    accepted
        .iter()
        .find(|a| a.eq_ignore_ascii_case(short))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_all_dialects_case_insensitively() {
        let ava = resolve_type("#Microsoft.VideoAnalyzer.IoTHubMessageSink");
        assert_eq!(ava.map(|r| r.node_type), Some(NodeType::IotHubMessageSink));
        let lva = resolve_type("#Microsoft.Media.MediaGraphIoTHubMessageSource");
        assert_eq!(
            lva.map(|r| r.node_type),
            Some(NodeType::IotHubMessageSource)
        );
        let ours = resolve_type("#Vigil.WasmProcessor");
        assert_eq!(ours.map(|r| r.role), Some(NodeRole::Processor));
        assert_eq!(resolve_type("#Other.RtspSource"), None);
        assert_eq!(resolve_type("#Microsoft.VideoAnalyzer.Nope"), None);
    }
}
