//! Running a topology: the plan, the replay runner and the live runner.

pub mod analytics_queue;
pub mod engine;
pub mod faults;
pub mod live;
pub mod live_core;
pub mod plan;
pub mod replay;
pub mod routing;
pub mod sink_queue;
pub mod sinks;
