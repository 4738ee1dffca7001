//! The MotionDetectionProcessor node (and frame-filter WasmProcessors): hands the downscaled
//! luma frames the [`FrameHub`](super::frame_hub::FrameHub) decodes to a WebAssembly frame filter (the built-in `motion-detector`, or the component
//! the node's `module` names), and turns what it finds into AVA `Analytics.Inference` events.
//! At most one event per `eventAggregationWindow`; frames are analysed at up to
//! [`ANALYSIS_FPS`] per second. Faults of the component are reported, never fatal.

use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;

use super::module_watch::{ModuleWatch, report_fault};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::decode::DecodedFrame;
use crate::media::time::{MediaDuration, MediaTime};
use crate::topology::model::{MotionDetectionConfig, Sensitivity};
use crate::wasm::bindings::Inference;
use crate::wasm::convert::{FilterConfig, frame_of, inference_json};
use crate::wasm::filter::{FilterHost, Limits, Outcome};
use crate::wasm::module::{LoadedModule, ModuleSource};

/// Most frames per second handed to the detector.
pub const ANALYSIS_FPS: i64 = 10;

/// One MotionDetectionProcessor.
pub struct MotionNode {
    subject: String,
    events: EventBus,
    watch: ModuleWatch,
    host: FilterHost,
    window: MediaDuration,
    last_analysed: Option<MediaTime>,
    last_event: Option<MediaTime>,
    in_motion: bool,
    /// What the last analysis found (AVA inference JSON): the annotations of the frames the node
    /// forwards.
    found: Vec<serde_json::Value>,
}

impl MotionNode {
    /// Loads the node's module and initialises it with the node's properties.
    pub fn new(
        name: &str,
        config: &MotionDetectionConfig,
        subject: String,
        events: EventBus,
    ) -> Result<Self> {
        let source = ModuleSource::parse(config.module.as_deref().unwrap_or("motion-detector"));
        let sensitivity = match config.sensitivity {
            Sensitivity::Low => "low",
            Sensitivity::Medium => "medium",
            Sensitivity::High => "high",
        };
        let settings = vec![
            ("sensitivity".to_string(), json!(sensitivity)),
            (
                "outputMotionRegion".to_string(),
                json!(config.output_motion_region),
            ),
        ];
        Self::with_module(
            name,
            source,
            settings,
            config.event_aggregation_window,
            subject,
            events,
        )
    }

    /// A frame-filter node running `source` with `settings` (a `#Vigil.WasmProcessor` whose
    /// component implements the frame-filter world); at most one event per `window`.
    pub fn with_module(
        name: &str,
        source: ModuleSource,
        settings: FilterConfig,
        window: MediaDuration,
        subject: String,
        events: EventBus,
    ) -> Result<Self> {
        let module = source.load().with_context(|| format!("node '{name}'"))?;
        let mut host = FilterHost::new(name, module, settings, Limits::default())
            .with_context(|| format!("node '{name}'"))?;
        host.time_calls(events.metrics().guest_calls(events.pipeline(), name));
        let watch = ModuleWatch::new(source, events.pipeline(), name);
        Ok(Self {
            subject,
            events,
            host,
            watch,
            window,
            last_analysed: None,
            last_event: None,
            in_motion: false,
            found: Vec::new(),
        })
    }

    /// The module in use.
    pub fn module(&self) -> &Arc<LoadedModule> {
        self.host.module()
    }

    /// The frame size this node wants for a frame at `pts`, or `None` when the frame is not due
    /// (analysis runs at most at ANALYSIS_FPS).
    pub fn wants(&self, pts: MediaTime) -> Option<(u32, bool)> {
        let due = self.last_analysed.is_none_or(|t| {
            pts - t >= MediaDuration::from_nanos(1_000_000_000 / ANALYSIS_FPS) || pts < t
        });
        due.then(|| {
            let request = self.host.frame_request();
            (
                request.map(|r| r.width).unwrap_or(320),
                request.is_some_and(|r| r.rgb),
            )
        })
    }

    /// Analyses one decoded frame; returns the analytics event when something was found (at most
    /// one per aggregation window).
    pub fn on_frame(&mut self, f: DecodedFrame) -> Option<Event> {
        let pts = f.pts;
        self.last_analysed = Some(pts);
        let wants_luma = self.host.frame_request().is_none_or(|r| r.luma);
        let outcome = self.host.process_frame(frame_of(f, wants_luma));
        self.in_motion = matches!(&outcome, Outcome::Done(found) if !found.is_empty());
        self.found = match &outcome {
            Outcome::Done(found) => found.iter().map(inference_json).collect(),
            _ => Vec::new(),
        };
        match outcome {
            Outcome::Done(found) if !found.is_empty() => self.aggregate(pts, &found),
            Outcome::Done(_) | Outcome::Skipped => None,
            Outcome::Fault(why) => {
                self.module_fault(pts, why);
                None
            }
        }
    }

    /// True while the last analysed frame had motion (or, for a custom frame filter, produced
    /// inferences): the node forwards the frames from then until the next analysis says
    /// otherwise (AVA's motion processor passes on only frames with motion, ava-spec §2.3).
    pub fn forwards(&self) -> bool {
        self.in_motion
    }

    /// The inferences the frames it forwards carry (AVA JSON, boxes relative to the frame): what
    /// the last analysis found. A GrpcExtension reading this node sends them with each frame.
    pub fn annotations(&self) -> &[serde_json::Value] {
        &self.found
    }

    fn aggregate(&mut self, at: MediaTime, found: &[Inference]) -> Option<Event> {
        if self
            .last_event
            .is_some_and(|t| at >= t && at - t < self.window)
        {
            return None;
        }
        self.last_event = Some(at);
        let inferences: Vec<serde_json::Value> = found.iter().map(inference_json).collect();
        Some(
            Event::new(
                EventClass::Analytics,
                "Inference",
                self.subject.clone(),
                at,
                json!({"timestamp": at.as_90khz_ticks(), "inferences": inferences}),
            )
            .from_module(&self.host.module().hash),
        )
    }

    /// Checks the module file and swaps in a new version between two frames.
    pub fn check_for_new_module(&mut self, at: MediaTime) {
        self.watch
            .check(&mut self.host, &self.subject, &self.events, at);
    }

    fn module_fault(&self, at: MediaTime, why: String) {
        report_fault(
            &self.host,
            &self.subject,
            &self.events,
            at,
            "frameTime",
            why,
        );
    }
}
