//! Reading each supported node type's properties into its typed configuration, with AVA's
//! defaults and design.md's ranges.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::endpoint::{read_endpoint, read_image, read_sampling};
use super::model::{
    DataTransfer, FileSinkConfig, GrpcExtensionConfig, HttpExtensionConfig, ImageFormat,
    ImageProperties, MessageSinkConfig, MessageSourceConfig, MotionDetectionConfig, NodeConfig,
    RtspSourceConfig, RtspTransport, ScaleMode, Sensitivity, VideoSinkConfig, WasmProcessorConfig,
};
use super::node_type::NodeType;
use super::props::{Props, UNBOUND_MARK, as_written};
use crate::media::time::MediaDuration;
use crate::nodes::signal_gate::GateTiming;

/// Reads the type-specific properties of a supported node.
pub fn read_node_config(node_type: NodeType, p: &Props<'_>) -> Option<NodeConfig> {
    match node_type {
        NodeType::RtspSource => rtsp_source(p).map(NodeConfig::RtspSource),
        NodeType::IotHubMessageSource => p
            .required_string("hubInputName")
            .filter(|n| check_topic_segment(p, "hubInputName", n))
            .map(|hub_input_name| {
                NodeConfig::IotHubMessageSource(MessageSourceConfig { hub_input_name })
            }),
        NodeType::IotHubMessageSink => p
            .required_string("hubOutputName")
            .filter(|n| check_topic_segment(p, "hubOutputName", n))
            .map(|hub_output_name| {
                NodeConfig::IotHubMessageSink(MessageSinkConfig { hub_output_name })
            }),
        NodeType::MotionDetectionProcessor => Some(NodeConfig::MotionDetection(motion(p))),
        NodeType::SignalGateProcessor => signal_gate(p).map(NodeConfig::SignalGate),
        NodeType::HttpExtension => http_extension(p).map(NodeConfig::HttpExtension),
        NodeType::GrpcExtension => grpc_extension(p).map(NodeConfig::GrpcExtension),
        NodeType::WasmProcessor => wasm_processor(p).map(NodeConfig::WasmProcessor),
        NodeType::FileSink => file_sink(p).map(NodeConfig::FileSink),
        NodeType::VideoSink => video_sink(p).map(NodeConfig::VideoSink),
        _ => Some(NodeConfig::NotSupported),
    }
}

fn check_topic_segment(p: &Props<'_>, name: &str, value: &str) -> bool {
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        p.error(
            name,
            format!("'{value}' may only hold letters, digits, '-', '_' and '.' (it becomes an MQTT topic level)"),
        );
    }
    ok
}

fn rtsp_source(p: &Props<'_>) -> Option<RtspSourceConfig> {
    let endpoint = read_endpoint(p, &["rtsp", "rtsps"]);
    let transport = match p.enumeration("transport", &["tcp", "http", "udp"]) {
        Some("http") => {
            p.errors().not_supported(
                &p.child_path("transport"),
                p.node(),
                "RTSP transport 'http' (RTSP tunnelled in HTTP); use tcp or udp",
            );
            RtspTransport::Http
        }
        Some("udp") => RtspTransport::Udp,
        _ => RtspTransport::Tcp,
    };
    if let Some(e) = &endpoint
        && (e.url.to_ascii_lowercase().starts_with("rtsps://") || e.tls.is_some())
    {
        p.errors().not_supported(
            &p.child_path("endpoint"),
            p.node(),
            "RTSP over TLS (rtsps:// or TlsEndpoint)",
        );
    }
    Some(RtspSourceConfig {
        endpoint: endpoint?,
        transport,
    })
}

fn motion(p: &Props<'_>) -> MotionDetectionConfig {
    let sensitivity = match p.enumeration("sensitivity", &["low", "medium", "high"]) {
        Some("low") => Sensitivity::Low,
        Some("high") => Sensitivity::High,
        _ => Sensitivity::Medium,
    };
    let window = p
        .duration("eventAggregationWindow")
        .unwrap_or(MediaDuration::from_secs(1));
    if window.is_negative() || window > MediaDuration::from_secs(3600) {
        p.error(
            "eventAggregationWindow",
            format!("{window} is out of range (allowed 0 s to 1 h)"),
        );
    }
    MotionDetectionConfig {
        sensitivity,
        output_motion_region: p.boolean("outputMotionRegion").unwrap_or(true),
        event_aggregation_window: window,
        module: p.string("module"),
    }
}

fn signal_gate(p: &Props<'_>) -> Option<GateTiming> {
    let defaults = GateTiming::default();
    let s = MediaDuration::from_secs;
    let read = |name: &str,
                default: MediaDuration,
                min: MediaDuration,
                max: MediaDuration,
                ok: &mut bool| {
        let value = match p.raw(name) {
            None => default,
            Some(_) => match p.duration(name) {
                Some(v) => v,
                None => {
                    *ok = false;
                    return default;
                }
            },
        };
        if value < min || value > max {
            p.error(
                name,
                format!("{value} is out of range (allowed {min} to {max})"),
            );
            *ok = false;
        }
        value
    };
    let mut ok = true;
    let timing = GateTiming {
        evaluation_window: read(
            "activationEvaluationWindow",
            defaults.evaluation_window,
            s(0),
            s(10),
            &mut ok,
        ),
        signal_offset: read(
            "activationSignalOffset",
            defaults.signal_offset,
            s(-60),
            s(60),
            &mut ok,
        ),
        minimum_activation: read(
            "minimumActivationTime",
            defaults.minimum_activation,
            s(1),
            s(3600),
            &mut ok,
        ),
        maximum_activation: read(
            "maximumActivationTime",
            defaults.maximum_activation,
            s(1),
            s(3600),
            &mut ok,
        ),
    };
    if ok && timing.minimum_activation > timing.maximum_activation {
        p.error(
            "minimumActivationTime",
            format!(
                "minimumActivationTime ({}) is longer than maximumActivationTime ({})",
                timing.minimum_activation, timing.maximum_activation
            ),
        );
        ok = false;
    }
    ok.then_some(timing)
}

fn http_extension(p: &Props<'_>) -> Option<HttpExtensionConfig> {
    let endpoint = read_endpoint(p, &["http", "https"]);
    let image = read_image(p);
    let sampling = read_sampling(p);
    Some(HttpExtensionConfig {
        endpoint: endpoint?,
        image: image?,
        sampling,
    })
}

/// Largest `sharedMemorySizeMiB` (AVA's samples use 5 to 75).
const MAX_SHARED_MEMORY_MIB: i64 = 1024;

fn grpc_extension(p: &Props<'_>) -> Option<GrpcExtensionConfig> {
    let endpoint = read_endpoint(p, &["tcp"]);
    if let Some(tls) = endpoint.as_ref().and_then(|e| e.tls.as_ref())
        && (tls.ignore_hostname || tls.ignore_signature)
    {
        p.errors().not_supported(
            &p.child_path("endpoint.validationOptions"),
            p.node(),
            "ignoreHostname or ignoreSignature for a gRPC extension (as in AVA, the server's certificate must name the URL's host)",
        );
    }
    if let Some(tls) = endpoint.as_ref().and_then(|e| e.tls.as_ref()) {
        for (i, pem) in tls.trusted_certificates.iter().enumerate() {
            if let Err(e) = crate::grpc::channel::parse_pem(pem) {
                p.error(
                    &format!("endpoint.trustedCertificates.certificates[{i}]"),
                    e,
                );
            }
        }
    }
    let image = read_image(p);
    let sampling = read_sampling(p);
    let data_transfer = p.required_object("dataTransfer").and_then(|d| {
        let mode = d.required_string("mode").and_then(|_| {
            d.enumeration("mode", &["embedded", "sharedMemory"])
                .map(str::to_string)
        });
        let size = d.integer("sharedMemorySizeMiB", 1, MAX_SHARED_MEMORY_MIB);
        let transfer = match mode.as_deref() {
            // A size given with embedded is not used (a topology may leave the mode to a
            // parameter and keep the size).
            Some("embedded") => Some(DataTransfer::Embedded),
            Some(_) => match size {
                Some(mib) => Some(DataTransfer::SharedMemory {
                    bytes: (mib as u64) << 20,
                }),
                None => {
                    if d.raw("sharedMemorySizeMiB").is_none() {
                        d.error(
                            "sharedMemorySizeMiB",
                            "required property 'sharedMemorySizeMiB' is missing (mode sharedMemory)",
                        );
                    }
                    None
                }
            },
            None => None,
        };
        d.report_unknown();
        transfer
    });
    let extension_configuration = p.string("extensionConfiguration");
    if let (Some(DataTransfer::SharedMemory { bytes }), Some(image)) = (&data_transfer, &image)
        && let Some(frame) = raw_frame_bytes(image)
        && frame > *bytes
    {
        p.error(
            "dataTransfer.sharedMemorySizeMiB",
            format!(
                "{} MiB cannot hold one {frame}-byte frame of the raw image asked for; give at least {} MiB",
                bytes >> 20,
                frame.div_ceil(1 << 20)
            ),
        );
    }
    Some(GrpcExtensionConfig {
        endpoint: endpoint?,
        image: image?,
        sampling,
        data_transfer: data_transfer?,
        extension_configuration,
    })
}

/// The size of one raw image when `image` fixes it (a raw format scaled to both a width and a
/// height, padded or stretched); encoded images and sizes that follow the camera have none.
fn raw_frame_bytes(image: &ImageProperties) -> Option<u64> {
    let ImageFormat::Raw { pixel_format } = &image.format else {
        return None;
    };
    let scale = image.scale.as_ref()?;
    let (w, h) = (scale.width?, scale.height?);
    if scale.mode == ScaleMode::PreserveAspectRatio {
        return None;
    }
    let (w, h) = (u64::from(w), u64::from(h));
    if pixel_format.eq_ignore_ascii_case("yuv420p") {
        return Some(w * h + 2 * w.div_ceil(2) * h.div_ceil(2));
    }
    Some(
        u64::from(crate::media::image::raw_row_bytes(
            pixel_format,
            scale.width?,
        )?) * h,
    )
}

fn wasm_processor(p: &Props<'_>) -> Option<WasmProcessorConfig> {
    let module = p.required_string("module");
    let mut configuration = BTreeMap::new();
    match p.raw("configuration") {
        None => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                if value.is_null() {
                    p.error(
                        &format!("configuration.{key}"),
                        "null is not a value: give a string, number, boolean, array or object",
                    );
                } else {
                    configuration.insert(key.clone(), value.clone());
                }
            }
        }
        Some(_) => p.error("configuration", "expected an object of named values"),
    }
    Some(WasmProcessorConfig {
        module: module?,
        configuration,
    })
}

fn file_sink(p: &Props<'_>) -> Option<FileSinkConfig> {
    // LVA 1.0 wrote one `filePathPattern` (directory and name); AVA splits it in three.
    if p.raw("filePathPattern").is_some() && p.raw("fileNamePattern").is_none() {
        let full = p.string_with_runtime_variables("filePathPattern")?;
        let path = Path::new(&full);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            p.error(
                "filePathPattern",
                format!("'{full}' has no directory and file name"),
            );
            return None;
        };
        let name = name.to_string_lossy().to_string();
        check_file_name_pattern(p, "filePathPattern", &name);
        return Some(FileSinkConfig {
            base_directory_path: dir.to_path_buf(),
            file_name_pattern: as_written(&name),
            maximum_size_mib: p.integer("maximumSizeMiB", 1, i64::MAX).map(|v| v as u64),
        });
    }
    let dir = p.required_string("baseDirectoryPath");
    let pattern = if p.raw("fileNamePattern").is_none() {
        p.error(
            "fileNamePattern",
            "required property 'fileNamePattern' is missing",
        );
        None
    } else {
        p.string_with_runtime_variables("fileNamePattern")
    };
    if let Some(pattern) = &pattern {
        check_file_name_pattern(p, "fileNamePattern", pattern);
    }
    let size = if p.raw("maximumSizeMiB").is_none() {
        p.error(
            "maximumSizeMiB",
            "required property 'maximumSizeMiB' is missing",
        );
        None
    } else {
        p.integer("maximumSizeMiB", 1, i64::MAX)
    };
    Some(FileSinkConfig {
        base_directory_path: PathBuf::from(dir?),
        file_name_pattern: as_written(&pattern?),
        maximum_size_mib: Some(size? as u64),
    })
}

fn check_file_name_pattern(p: &Props<'_>, name: &str, pattern: &str) {
    if pattern.trim().is_empty() {
        p.error(name, "the file name pattern is empty");
        return;
    }
    let leaves = Path::new(pattern)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)));
    if leaves || pattern.contains('\\') {
        p.error(
            name,
            format!(
                "'{}' would leave the base directory; use a plain file name (sub-folders allowed, no '..' or leading '/')",
                as_written(pattern)
            ),
        );
    }
    if pattern.contains(UNBOUND_MARK) {
        p.error(
            name,
            format!("'{}' holds an unresolved variable", as_written(pattern)),
        );
    }
}

fn video_sink(p: &Props<'_>) -> Option<VideoSinkConfig> {
    let name = p.required_string("videoName");
    if let Some(n) = &name {
        let ok = n.len() <= 260
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !n.starts_with('.');
        if !ok {
            p.error(
                "videoName",
                format!("'{n}' may only hold letters, digits, '-', '_' and '.' (it names a folder and object keys)"),
            );
        }
    }
    let creation = p.object("videoCreationProperties");
    let mut segment_length = MediaDuration::from_secs(30);
    let mut retention_period = None;
    let (mut title, mut description) = (None, None);
    if let Some(c) = &creation {
        title = c.string("title");
        description = c.string("description");
        if title.as_ref().is_some_and(|t| t.chars().count() > 256) {
            c.error("title", "title is longer than 256 characters");
        }
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2048)
        {
            c.error("description", "description is longer than 2048 characters");
        }
        if let Some(len) = c.duration("segmentLength") {
            let steps = len.as_nanos() % MediaDuration::from_secs(30).as_nanos();
            if len < MediaDuration::from_secs(30)
                || len > MediaDuration::from_secs(300)
                || steps != 0
            {
                c.error(
                    "segmentLength",
                    format!("{len} is not allowed: 30 s to 5 min in 30 s steps"),
                );
            } else {
                segment_length = len;
            }
        }
        if let Some(r) = c.duration("retentionPeriod") {
            let day = MediaDuration::from_secs(86_400);
            if r < day || r.as_nanos() % day.as_nanos() != 0 {
                c.error(
                    "retentionPeriod",
                    format!("{r} is not a whole number of days (at least P1D)"),
                );
            } else {
                retention_period = Some(r);
            }
        }
        c.report_unknown();
    }
    let mut disable_preview = false;
    if let Some(o) = p.object("videoPublishingOptions") {
        disable_preview = o.boolean("disableVideoPreviewImage").unwrap_or(false);
        // Cloud-only switches: accepted, nothing to do on the edge.
        o.ignore(&["disableArchive", "disableRtspPublishing"]);
        o.report_unknown();
    }
    let cache_path = p.string("localMediaCachePath").map(PathBuf::from);
    let cache_size = p
        .integer("localMediaCacheMaximumSizeMiB", 1, i64::MAX)
        .map(|v| v as u64);
    Some(VideoSinkConfig {
        video_name: name?,
        title,
        description,
        segment_length,
        retention_period,
        local_media_cache_path: cache_path,
        local_media_cache_maximum_size_mib: cache_size,
        disable_video_preview_image: disable_preview,
    })
}
