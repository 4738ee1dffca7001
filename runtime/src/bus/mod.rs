//! Events: AVA's envelope, the event log, MQTT in and out.

pub mod event;
pub mod event_log;
pub mod mqtt;
pub mod trigger;
