//! The media sinks behind a gate, whatever their kind: built from the plan, fed the gate's clip
//! commands, shut down cleanly. Shared by the live runner and replay.

use std::path::Path;

use super::plan::SinkPlan;
use crate::bus::event_log::EventBus;
use crate::nodes::file_sink::FileSink;
use crate::nodes::gate_node::ClipCommand;
use crate::nodes::video_sink::VideoSink;

/// A FileSink or a VideoSink.
pub enum MediaSink {
    /// One file per activation.
    File(Box<FileSink>),
    /// Clips appended to a video.
    Video(Box<VideoSink>),
}

impl MediaSink {
    /// The sink for `plan`; VideoSinks write to the `archive` directory.
    pub fn new(plan: &SinkPlan, archive: &Path, bus: &EventBus) -> Self {
        match plan {
            SinkPlan::File {
                config,
                subject,
                sync_interval,
                ..
            } => Self::File(Box::new(
                FileSink::new(config, subject.clone(), bus.clone())
                    .with_sync_interval(*sync_interval),
            )),
            SinkPlan::Video {
                config, subject, ..
            } => Self::Video(Box::new(VideoSink::new(
                config,
                archive,
                subject.clone(),
                bus.clone(),
            ))),
        }
    }

    /// Acts on one command from the gate.
    pub fn handle(&mut self, command: ClipCommand) {
        match self {
            Self::File(s) => s.handle(command),
            Self::Video(s) => s.handle(command),
        }
    }

    /// Closes what is open.
    pub fn shutdown(&mut self) {
        match self {
            Self::File(s) => s.shutdown(),
            Self::Video(s) => s.shutdown(),
        }
    }
}
