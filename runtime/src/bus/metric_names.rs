//! The catalogue of the process's metrics: each one's name, help and labels in one place, so
//! that every node that reports it reports the same series. AVA's (ava-spec §8.3) keep their
//! `va_` names; ours are `vigil_`. Series of a pipeline carry `pipeline` and, for a node's,
//! `node` (the node's name in the topology).

use super::metrics::{Counter, Gauge, Histogram, Labels, Metrics, MinuteWindow};

impl Metrics {
    /// `va_received_bytes_total{pipeline, node}`: bytes an RtspSource received from its camera.
    pub fn received_bytes(&self, pipeline: &str, node: &str) -> Counter {
        self.counter(
            "va_received_bytes_total",
            "Bytes of media an RtspSource received from its camera.",
            &[("pipeline", pipeline), ("node", node)],
        )
    }

    /// `va_data_dropped_total{pipeline, node, data_kind}`: media a node dropped (frame analysis
    /// behind, frames an HttpExtension could not send).
    pub fn data_dropped(&self, pipeline: &str, node: &str, data_kind: &str) -> Counter {
        self.counter(
            "va_data_dropped_total",
            "Media a node dropped because it could not keep up.",
            &[
                ("pipeline", pipeline),
                ("node", node),
                ("data_kind", data_kind),
            ],
        )
    }

    /// `va_cumulative_latency_seconds_average|max{pipeline, node}` over the last minute: from a
    /// frame's arrival at the camera's source to its handling by the node.
    pub fn latency_window(&self, pipeline: &str, node: &str) -> MinuteWindow {
        let labels = [("pipeline", pipeline), ("node", node)];
        MinuteWindow::new(
            self.float_gauge(
                "va_cumulative_latency_seconds_average",
                "Average time, over the last minute, from a frame's arrival to this node.",
                &labels,
            ),
            self.float_gauge(
                "va_cumulative_latency_seconds_max",
                "Longest time, over the last minute, from a frame's arrival to this node.",
                &labels,
            ),
        )
    }

    /// `vigil_node_frames_total{pipeline, node}`: video frames a node passed on (a source, a
    /// gate to its sinks) or wrote (a sink).
    pub fn node_frames(&self, pipeline: &str, node: &str) -> Counter {
        self.counter(
            "vigil_node_frames_total",
            "Video frames a node passed on or wrote.",
            &[("pipeline", pipeline), ("node", node)],
        )
    }

    /// `vigil_node_bytes_total{pipeline, node}`: bytes of media in those frames.
    pub fn node_bytes(&self, pipeline: &str, node: &str) -> Counter {
        self.counter(
            "vigil_node_bytes_total",
            "Bytes of media a node passed on or wrote.",
            &[("pipeline", pipeline), ("node", node)],
        )
    }

    /// `vigil_gate_openings_total{pipeline, node}`: clips a signal gate opened.
    pub fn gate_openings(&self, pipeline: &str, node: &str) -> Counter {
        self.counter(
            "vigil_gate_openings_total",
            "Times a signal gate opened.",
            &[("pipeline", pipeline), ("node", node)],
        )
    }

    /// `vigil_recordings_total{pipeline, node}`: recordings (files, clips) a sink started.
    pub fn recordings(&self, pipeline: &str, node: &str) -> Counter {
        self.counter(
            "vigil_recordings_total",
            "Recordings a sink started.",
            &[("pipeline", pipeline), ("node", node)],
        )
    }

    /// `vigil_guest_call_seconds{pipeline, node}`: how long each call into a WebAssembly
    /// component took.
    pub fn guest_calls(&self, pipeline: &str, node: &str) -> Histogram {
        self.seconds_histogram(
            "vigil_guest_call_seconds",
            "Time of each call into a WebAssembly component.",
            &[("pipeline", pipeline), ("node", node)],
        )
    }

    /// `vigil_decoded_frames_total{pipeline, node}`: frames decoded for the nodes that need
    /// pixels (the rate of this counter is the decode rate).
    pub fn decoded_frames(&self, pipeline: &str, node: &str) -> Counter {
        self.counter(
            "vigil_decoded_frames_total",
            "Frames decoded for frame analysis.",
            &[("pipeline", pipeline), ("node", node)],
        )
    }

    /// `vigil_queue_depth{pipeline, node}`: commands waiting in a sink's queue.
    pub fn queue_depth(&self, pipeline: &str, node: &str) -> Gauge {
        self.gauge(
            "vigil_queue_depth",
            "Commands (samples, clip starts and ends) waiting in a sink's queue.",
            &[("pipeline", pipeline), ("node", node)],
        )
    }

    /// `vigil_pipeline_restarts_total{pipeline}`: restarts after a fault.
    pub fn pipeline_restarts(&self, pipeline: &str) -> Counter {
        self.counter(
            "vigil_pipeline_restarts_total",
            "Times a live pipeline was restarted after a fault.",
            &[("pipeline", pipeline)],
        )
    }

    /// Sets `vigil_heap_bytes{kind}` (`in_use`, `free`, `mapped`): what the allocator holds, so
    /// that a process's growth can be told apart as data held or memory kept free.
    pub fn set_heap_usage(&self, usage: &crate::service::memory::HeapUsage) {
        let series = [
            ("in_use", usage.in_use),
            ("free", usage.free),
            ("mapped", usage.mapped),
        ]
        .map(|(kind, bytes)| {
            (
                vec![("kind".to_string(), kind.to_string())],
                i64::try_from(bytes).unwrap_or(i64::MAX),
            )
        });
        self.set_gauges(
            "vigil_heap_bytes",
            "Bytes the heap allocator holds: in use, free inside its arenas, mapped on their own.",
            &series,
        );
    }

    /// Sets the service's state gauges as a scrape reads them: `va_active_live_pipelines
    /// {pipeline_topology}`, `vigil_live_pipelines{state}` and `vigil_uploads_pending{archive}`.
    pub fn set_service_state(
        &self,
        active_by_topology: &[(String, i64)],
        by_state: &[(String, i64)],
        uploads_pending: &[(String, i64)],
    ) {
        let series = |key: &str, values: &[(String, i64)]| -> Vec<(Labels, i64)> {
            values
                .iter()
                .map(|(v, n)| (vec![(key.to_string(), v.clone())], *n))
                .collect()
        };
        self.set_gauges(
            "va_active_live_pipelines",
            "Active live pipelines, by topology.",
            &series("pipeline_topology", active_by_topology),
        );
        self.set_gauges(
            "vigil_live_pipelines",
            "Live pipelines, by state.",
            &series("state", by_state),
        );
        self.set_gauges(
            "vigil_uploads_pending",
            "Segments of an archive waiting for the object store.",
            &series("archive", uploads_pending),
        );
    }
}
