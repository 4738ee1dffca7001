//! Vigil: an event-based video recording runtime. RTSP cameras in, MP4 clips out, gated by events
//! from motion detection, MQTT/HTTP triggers or inference services; pipelines declared in Azure
//! Video Analyzer topology JSON.

pub mod api;
pub mod archive;
pub mod bus;
pub mod cli;
pub mod cluster;
pub mod fuzz_entry;
pub mod grpc;
pub mod limits;
pub mod media;
pub mod nodes;
pub mod pipeline;
pub mod service;
pub mod tls;
pub mod topology;
pub mod wasm;
