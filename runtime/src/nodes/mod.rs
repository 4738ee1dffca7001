//! Node implementations, one file per node type.

pub mod camera_fault;
pub mod clip_explanation;
pub mod event_filter;
pub mod extension_client;
pub mod extension_common;
pub mod file_naming;
pub mod file_sink;
pub mod frame_hub;
pub mod gate_node;
pub mod grpc_extension;
pub mod http_extension;
pub mod module_swap;
pub mod module_watch;
pub mod motion_detection;
pub mod open_marker;
pub mod rtsp_source;
pub mod signal_gate;
pub mod snapshot_request;
pub mod storage_retry;
pub mod video_sink;
