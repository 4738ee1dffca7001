//! Pixels for every node that needs them: one decoder per source, each frame decoded once and
//! scaled to the size each node asks for (motion detection, frame-filter WasmProcessors, HTTP
//! extensions). Frames flow along the topology: a node reading the camera sees every frame; a
//! node reading a motion detector sees only the frames it forwards (those with motion), marked
//! as annotated. Runs on one thread in a live pipeline (FFmpeg's frames stay there) and inline in
//! replay.

use serde_json::json;

use super::grpc_extension::GrpcExtensionNode;
use super::http_extension::HttpExtensionNode;
use super::motion_detection::MotionNode;
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::decode::{Decoder, Fidelity};
use crate::media::image::Content;
use crate::media::inference_snapshot;
use crate::media::sample::VideoSample;
use crate::media::time::MediaTime;

/// What a node does with frames.
pub enum FrameConsumer {
    /// Motion detection or a frame-filter WasmProcessor.
    Filter(Box<MotionNode>),
    /// An HttpExtension or a GrpcExtension.
    Extension(Box<dyn ExtensionNode>),
}

/// A node that sends sampled, scaled frames to an inference service.
pub trait ExtensionNode: Send {
    /// Where a frame of `source_width`×`source_height` at `pts` goes in the image to send, when
    /// this frame is to be sent (`annotated`: it carries upstream inferences).
    fn wants(
        &mut self,
        pts: MediaTime,
        annotated: bool,
        source_width: u32,
        source_height: u32,
    ) -> Option<crate::media::image::ImageLayout>;

    /// False when this node will surely not take a frame at `pts` (its sampling rate says it is
    /// too early, or it takes only annotated frames and `annotated` is false); no side effect.
    fn may_take(&self, pts: MediaTime, annotated: bool) -> bool;

    /// True when its images are best made from planar YCbCr ([`Content::Yuv420`]).
    fn wants_yuv(&self) -> bool;

    /// Sends the frame's content (of `layout`'s content size) with the inferences it carries
    /// from upstream (AVA JSON, boxes relative to the frame); the inference event when the
    /// answer is waited for.
    fn on_image(
        &mut self,
        pts: MediaTime,
        content: &Content,
        layout: crate::media::image::ImageLayout,
        upstream: &[serde_json::Value],
    ) -> Option<Event>;
}

macro_rules! extension_node {
    ($t:ty) => {
        impl ExtensionNode for $t {
            fn wants(
                &mut self,
                pts: MediaTime,
                annotated: bool,
                source_width: u32,
                source_height: u32,
            ) -> Option<crate::media::image::ImageLayout> {
                <$t>::wants(self, pts, annotated, source_width, source_height)
            }

            fn may_take(&self, pts: MediaTime, annotated: bool) -> bool {
                <$t>::may_take(self, pts, annotated)
            }

            fn wants_yuv(&self) -> bool {
                <$t>::wants_yuv(self)
            }

            fn on_image(
                &mut self,
                pts: MediaTime,
                content: &Content,
                layout: crate::media::image::ImageLayout,
                upstream: &[serde_json::Value],
            ) -> Option<Event> {
                <$t>::on_image(self, pts, content, layout, upstream)
            }
        }
    };
}
extension_node!(HttpExtensionNode);
extension_node!(GrpcExtensionNode);

/// A node of the hub: its processor index, the processor it reads frames from (none: the
/// camera), and what it does.
pub struct HubNode {
    /// Processor index in the plan.
    pub index: usize,
    /// Processor index of its frame input; `None` for the camera.
    pub input: Option<usize>,
    /// The node.
    pub consumer: FrameConsumer,
}

/// The decoder and the frame nodes it feeds, in topological order.
pub struct FrameHub {
    decoder: Option<Decoder>,
    nodes: Vec<HubNode>,
    /// Nodes an extension reads: only their frames' annotations are kept for it.
    read_by_extensions: Vec<usize>,
    subject: String,
    events: EventBus,
    /// When each filter node's next inference snapshot is due, by processor index.
    snapshot_pacers: Vec<(usize, inference_snapshot::Pacer)>,
    /// Samples given to the decoder, and non-reference ones left out.
    counts: DecodeCounts,
}

/// What the hub did with the samples it saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeCounts {
    /// Samples decoded.
    pub decoded: u64,
    /// Non-reference samples no node would have taken, not decoded.
    pub skipped: u64,
}

impl FrameHub {
    /// A hub feeding `nodes` (any order); diagnostics carry `subject` (the camera).
    pub fn new(mut nodes: Vec<HubNode>, subject: String, events: EventBus) -> Self {
        // Topological order: a node after the node it reads (the graph is acyclic).
        let mut ordered: Vec<HubNode> = Vec::with_capacity(nodes.len());
        while !nodes.is_empty() {
            let ready = nodes.iter().position(|n| {
                n.input.is_none_or(|i| {
                    ordered.iter().any(|o| o.index == i) || !nodes.iter().any(|m| m.index == i)
                })
            });
            match ready {
                Some(at) => ordered.push(nodes.remove(at)),
                None => ordered.append(&mut nodes),
            }
        }
        let read_by_extensions = ordered
            .iter()
            .filter(|n| matches!(n.consumer, FrameConsumer::Extension(_)))
            .filter_map(|n| n.input)
            .collect();
        let snapshot_pacers = ordered
            .iter()
            .filter(|n| matches!(n.consumer, FrameConsumer::Filter(_)))
            .map(|n| (n.index, inference_snapshot::Pacer::default()))
            .collect();
        Self {
            decoder: None,
            snapshot_pacers,
            counts: DecodeCounts::default(),
            read_by_extensions,
            nodes: ordered,
            subject,
            events,
        }
    }

    /// Samples decoded and skipped so far.
    pub fn counts(&self) -> DecodeCounts {
        self.counts
    }

    /// True when no node needs pixels (then nothing is decoded).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Decodes `sample` once and runs every node that wants a frame; returns their events with
    /// the processor index that produced each.
    pub fn on_sample(&mut self, sample: &VideoSample) -> Vec<(usize, Event)> {
        let mut out = Vec::new();
        if self.nodes.is_empty() {
            return out;
        }
        if self
            .decoder
            .as_ref()
            .is_none_or(|d| d.params() != sample.params.as_ref())
        {
            if !sample.key_frame {
                return out;
            }
            match Decoder::with_fidelity(&sample.params, self.fidelity()) {
                Ok(d) => self.decoder = Some(d),
                Err(e) => {
                    self.diagnostic(sample.pts, format!("{e:#}"));
                    return out;
                }
            }
        }
        // A picture nobody will look at and no other picture references is not decoded at all
        // (B-frames and H.265 non-reference pictures between the analysis rate's samples).
        let disposable = self
            .decoder
            .as_ref()
            .is_some_and(|d| d.is_disposable(sample));
        if disposable && !self.may_take(sample.pts) {
            self.counts.skipped += 1;
            return out;
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return out;
        };
        self.counts.decoded += 1;
        let frames = match decoder.decode(sample) {
            Ok(f) => f,
            Err(e) => {
                self.decoder = None;
                let detail = format!("decode failed: {e:#}; resuming at the next key frame");
                self.diagnostic(sample.pts, detail);
                return out;
            }
        };
        let mut forwarded: Vec<usize> = Vec::with_capacity(self.nodes.len());
        // What the frames a node forwards carry (its index, AVA inference JSON).
        let mut annotations: Vec<(usize, Vec<serde_json::Value>)> = Vec::new();
        for (pts, frame) in &frames {
            forwarded.clear();
            annotations.clear();
            for node in self.nodes.iter_mut() {
                let annotated = node.input.is_some();
                if node.input.is_some_and(|i| !forwarded.contains(&i)) {
                    continue;
                }
                let Some(decoder) = self.decoder.as_mut() else {
                    return out;
                };
                let result = match &mut node.consumer {
                    FrameConsumer::Filter(filter) => {
                        let mut event = None;
                        if let Some((width, rgb)) = filter.wants(*pts) {
                            match decoder.scale(frame, *pts, width, rgb) {
                                Ok(scaled) => event = filter.on_frame(scaled),
                                Err(e) => {
                                    diagnostic(&self.events, &self.subject, *pts, format!("{e:#}"))
                                }
                            }
                        }
                        let due = event
                            .as_ref()
                            .filter(|e| e.kind == "Inference")
                            .filter(|e| {
                                self.snapshot_pacers
                                    .iter_mut()
                                    .find(|(i, _)| *i == node.index)
                                    .is_some_and(|(_, pacer)| pacer.take(e.time))
                            });
                        if let Some(e) = due {
                            snapshot_of_frame(decoder, frame, e, &self.events);
                        }
                        if filter.forwards() {
                            forwarded.push(node.index);
                            if self.read_by_extensions.contains(&node.index) {
                                annotations.push((node.index, filter.annotations().to_vec()));
                            }
                        }
                        event
                    }
                    FrameConsumer::Extension(extension) => {
                        match extension.wants(*pts, annotated, frame.width(), frame.height()) {
                            Some(layout) => match decoder.scale_content(
                                frame,
                                layout.content_width,
                                layout.content_height,
                                extension.wants_yuv(),
                            ) {
                                Ok(content) => {
                                    // The frames it sends go on to extensions that read it
                                    // (AVA's ai-composition chains two).
                                    forwarded.push(node.index);
                                    let upstream = node
                                        .input
                                        .and_then(|i| annotations.iter().find(|(n, _)| *n == i))
                                        .map(|(_, a)| a.as_slice())
                                        .unwrap_or_default();
                                    extension.on_image(*pts, &content, layout, upstream)
                                }
                                Err(e) => {
                                    diagnostic(&self.events, &self.subject, *pts, format!("{e:#}"));
                                    None
                                }
                            },
                            None => None,
                        }
                    }
                };
                if let Some(e) = result {
                    out.push((node.index, e));
                }
            }
        }
        out
    }

    /// False when no node will take a frame at `pts`. A node behind another is asked as if
    /// the frame reached it annotated (whether it does is known only after decoding).
    fn may_take(&self, pts: MediaTime) -> bool {
        self.nodes.iter().any(|node| match &node.consumer {
            FrameConsumer::Filter(filter) => filter.wants(pts).is_some(),
            FrameConsumer::Extension(extension) => extension.may_take(pts, node.input.is_some()),
        })
    }

    /// Analysis fidelity (no deblocking) when only motion detection and frame filters look at
    /// the frames; bit-exact when an inference service gets them too, as its model was trained
    /// on what a player shows.
    fn fidelity(&self) -> Fidelity {
        if self
            .nodes
            .iter()
            .any(|n| matches!(n.consumer, FrameConsumer::Extension(_)))
        {
            Fidelity::Exact
        } else {
            Fidelity::Analysis
        }
    }

    /// Lets each node swap in a new version of its module file.
    pub fn check_for_new_modules(&mut self, at: MediaTime) {
        for node in self.nodes.iter_mut() {
            if let FrameConsumer::Filter(filter) = &mut node.consumer {
                filter.check_for_new_module(at);
            }
        }
    }

    fn diagnostic(&self, at: MediaTime, detail: String) {
        diagnostic(&self.events, &self.subject, at, detail);
    }
}

/// Queues the snapshot of inference event `event` from `frame` (scaled once to the snapshot's
/// size; the frame is already decoded).
fn snapshot_of_frame(
    decoder: &mut Decoder,
    frame: &crate::media::av::Frame,
    event: &Event,
    events: &EventBus,
) {
    let (fw, fh) = (frame.width().max(1), frame.height().max(1));
    let width = fw.min(inference_snapshot::MAX_WIDTH);
    let height = ((u64::from(fh) * u64::from(width) / u64::from(fw)) as u32).max(2) & !1;
    match decoder.scale_rgb(frame, width, height) {
        Ok(rgb) => inference_snapshot::request(
            event,
            inference_snapshot::Picture {
                pixels: Content::Rgb(rgb),
                width,
                height,
            },
            events,
        ),
        Err(e) => diagnostic(
            events,
            &event.subject,
            event.time,
            format!("cannot scale the frame for a snapshot: {e:#}"),
        ),
    }
}

fn diagnostic(events: &EventBus, subject: &str, at: MediaTime, detail: String) {
    events.emit(Event::new(
        EventClass::Diagnostics,
        "MediaFormatError",
        subject.to_string(),
        at,
        json!({"detail": detail}),
    ));
}
