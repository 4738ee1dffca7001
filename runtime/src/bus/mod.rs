//! Events: AVA's envelope, the event log, MQTT in and out, metrics.

pub mod event;
pub mod event_log;
pub mod home_assistant;
pub mod log_writer;
pub mod metric_names;
pub mod metrics;
pub mod mqtt;
pub mod trigger;
