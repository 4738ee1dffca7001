//! Triggers for an Active pipeline that is not running at the moment they arrive — starting,
//! waiting to start again after a fault, or moving between cluster members — are held here for
//! up to [`HOLD_FOR`] and delivered when the pipeline starts ([`super::inputs::InputRouter`]),
//! instead of being lost. Bounded: [`MAX_PER_PIPELINE`] per pipeline, [`MAX_HELD`] and
//! [`MAX_HELD_BYTES`] in all, the oldest going first.
//!
//! In a cluster every member hears every trigger on NATS and MQTT; a member that does not run
//! the pipeline holds one only when nobody else is recording it: no lease, a lease of this
//! node's own (its pipeline starting), or one whose holder's heartbeat stopped (see
//! [`hold_in_cluster`]). The member that then takes the pipeline delivers what it held.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::Service;
use super::inputs::DeliveryError;
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::bus::mqtt::InputMessage;
use crate::nodes::rtsp_source::wall_now;

/// How long a trigger is held: beyond a failover with the default lease (10 s, taken over
/// within about 12 s) and a restart's first back-off steps.
pub const HOLD_FOR: Duration = Duration::from_secs(30);
/// Triggers held per pipeline.
pub const MAX_PER_PIPELINE: usize = 16;
/// Triggers held in all.
pub const MAX_HELD: usize = 1024;
/// Payload bytes held in all.
pub const MAX_HELD_BYTES: usize = 8 << 20;

/// The triggers held, by pipeline, each with when it arrived.
#[derive(Debug, Default)]
pub struct HeldTriggers {
    by_pipeline: BTreeMap<String, VecDeque<(Instant, InputMessage)>>,
    count: usize,
    bytes: usize,
    /// Triggers dropped to make room, by pipeline, and when the last was (reported when it
    /// starts within [`HOLD_FOR`] of that).
    dropped: BTreeMap<String, (usize, Instant)>,
}

/// What was delivered of the triggers held for a pipeline as it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Triggers handed to the pipeline.
    pub count: usize,
    /// How long the oldest of them had waited.
    pub oldest: Duration,
    /// Triggers the pipeline did not take (its queue full, or an input it does not have).
    pub refused: usize,
    /// Triggers for it dropped while held, to make room for newer ones.
    pub dropped: usize,
}

impl HeldTriggers {
    /// Holds `message` for `pipeline`, arrived at `now`; the oldest held triggers make room.
    /// Returns how many were dropped to make it.
    pub fn hold(&mut self, pipeline: &str, message: InputMessage, now: Instant) -> usize {
        self.expire(now);
        let mut dropped = 0;
        let size = message.payload.len();
        let queue_full = self
            .by_pipeline
            .get(pipeline)
            .is_some_and(|q| q.len() >= MAX_PER_PIPELINE);
        if queue_full {
            self.pop_oldest_of(pipeline, now);
            dropped += 1;
        }
        while self.count >= MAX_HELD || (self.count > 0 && self.bytes + size > MAX_HELD_BYTES) {
            let Some(oldest) = self.oldest_pipeline() else {
                break;
            };
            self.pop_oldest_of(&oldest, now);
            dropped += 1;
        }
        self.count += 1;
        self.bytes += size;
        self.by_pipeline
            .entry(pipeline.to_string())
            .or_default()
            .push_back((now, message));
        dropped
    }

    /// Takes the triggers held for `pipeline` that are not older than [`HOLD_FOR`] at `now`,
    /// oldest first, each with how long it waited, and how many were dropped for room.
    pub fn take(&mut self, pipeline: &str, now: Instant) -> (Vec<(Duration, InputMessage)>, usize) {
        self.expire(now);
        let dropped = self.dropped.remove(pipeline).map_or(0, |(n, _)| n);
        let Some(queue) = self.by_pipeline.remove(pipeline) else {
            return (Vec::new(), dropped);
        };
        self.count -= queue.len();
        self.bytes -= queue.iter().map(|(_, m)| m.payload.len()).sum::<usize>();
        let taken = queue
            .into_iter()
            .map(|(at, m)| (now.saturating_duration_since(at), m))
            .collect();
        (taken, dropped)
    }

    /// Triggers held in all.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn expire(&mut self, now: Instant) {
        let (mut count, mut bytes) = (0, 0);
        self.by_pipeline.retain(|_, queue| {
            while queue
                .front()
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) > HOLD_FOR)
            {
                queue.pop_front();
            }
            count += queue.len();
            bytes += queue.iter().map(|(_, m)| m.payload.len()).sum::<usize>();
            !queue.is_empty()
        });
        (self.count, self.bytes) = (count, bytes);
        // What was dropped for room is told with what is delivered, if the pipeline starts
        // within the hold time of the last drop.
        self.dropped
            .retain(|_, (_, last)| now.saturating_duration_since(*last) <= HOLD_FOR);
    }

    fn oldest_pipeline(&self) -> Option<String> {
        self.by_pipeline
            .iter()
            .filter_map(|(name, q)| q.front().map(|(at, _)| (*at, name)))
            .min()
            .map(|(_, name)| name.clone())
    }

    fn pop_oldest_of(&mut self, pipeline: &str, now: Instant) {
        let Some(queue) = self.by_pipeline.get_mut(pipeline) else {
            return;
        };
        if let Some((_, m)) = queue.pop_front() {
            self.count -= 1;
            self.bytes -= m.payload.len();
            let dropped = self.dropped.entry(pipeline.to_string()).or_insert((0, now));
            *dropped = (dropped.0 + 1, now);
        }
        if queue.is_empty() {
            self.by_pipeline.remove(pipeline);
        }
    }
}

/// Who records a pipeline, as far as a cluster member can tell when a trigger for it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorder {
    /// Nobody holds its lease.
    Nobody,
    /// This node holds it (its pipeline is starting here).
    ThisNode,
    /// Another node holds it; whether that node's heartbeat still comes.
    Other { live: bool },
    /// The cluster did not answer.
    Unknown,
}

/// Whether a cluster member that does not run an Active pipeline holds a trigger for it: unless
/// a live node records it (then that node has it).
pub fn hold_in_cluster(recorder: Recorder) -> bool {
    !matches!(recorder, Recorder::Other { live: true })
}

/// Reports the triggers held for `pipeline` that were handed to it as it started
/// (`HeldTriggersDelivered`, subject `/livePipelines/<pipeline>`); nothing when none was held.
pub fn report_delivered(bus: &EventBus, pipeline: &str, delivered: Delivered) {
    if delivered.count == 0 && delivered.refused == 0 && delivered.dropped == 0 {
        return;
    }
    bus.emit(Event::new(
        EventClass::Operational,
        "HeldTriggersDelivered",
        format!("/livePipelines/{pipeline}"),
        wall_now(),
        json!({
            "count": delivered.count,
            "oldestSeconds": (delivered.oldest.as_secs_f64() * 1000.0).round() / 1000.0,
            "refused": delivered.refused,
            "dropped": delivered.dropped,
            "detail": "triggers that came while the pipeline was Active but not running (starting, starting again after a fault, or moving between cluster members) were delivered as it started; each counts from now, its eventTime kept",
        }),
    ));
}

impl Service {
    /// Delivers a trigger that came over MQTT or NATS (`via`) to `pipeline`; when the pipeline
    /// does not run here, the trigger is looked at for holding ([`Service::hold_trigger`]) on a
    /// task of its own, at most [`super::inputs::HOLD_CHECKS`] at a time. What cannot be
    /// delivered is logged: alone, a trigger not held too (in a cluster every member hears it,
    /// and the one recording the pipeline delivers it).
    pub fn deliver_or_hold(
        self: &Arc<Self>,
        via: &'static str,
        pipeline: &str,
        message: InputMessage,
    ) {
        let inputs = &self.context().inputs;
        match inputs.deliver(pipeline, message.clone()) {
            Ok(()) => {}
            Err(e @ DeliveryError::NoPipeline(_)) => {
                let Some(permit) = inputs.hold_check() else {
                    tracing::debug!("{via} trigger not held (too many at once): {e}");
                    return;
                };
                let (service, pipeline) = (self.clone(), pipeline.to_string());
                tokio::spawn(async move {
                    let held = service.hold_trigger(&pipeline, message).await;
                    drop(permit);
                    if !held && service.cluster().is_none() {
                        tracing::warn!("{via} trigger not delivered: {e}");
                    }
                });
            }
            Err(e) => tracing::warn!("{via} trigger not delivered: {e}"),
        }
    }

    /// Holds a trigger for `pipeline` that no running pipeline here took, when the pipeline is
    /// Active and, in a cluster, no live node records it; true when held (or delivered after
    /// all, the pipeline having started meanwhile).
    pub async fn hold_trigger(&self, pipeline: &str, message: InputMessage) -> bool {
        let active = tokio::task::block_in_place(|| self.is_desired_active(pipeline));
        if !active {
            return false;
        }
        if let Some(cluster) = self.cluster() {
            let lookup = crate::cluster::lease::holder_checked(&cluster.leases, pipeline);
            let recorder = match tokio::time::timeout(crate::cluster::REQUEST_TIMEOUT, lookup).await
            {
                Ok(Ok(None)) => Recorder::Nobody,
                Ok(Ok(Some(node))) if node == cluster.node => Recorder::ThisNode,
                // Before this node knows who is live (it has just started), the holder is
                // taken to be: holding what a live node records would deliver it twice.
                Ok(Ok(Some(node))) => Recorder::Other {
                    live: cluster
                        .liveness
                        .is_live(&node, Instant::now())
                        .unwrap_or(true),
                },
                _ => Recorder::Unknown,
            };
            if !hold_in_cluster(recorder) {
                return false;
            }
        }
        // Triggers dropped for room are counted and reported when the pipeline starts.
        match self.context().inputs.hold(pipeline, message) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("trigger not delivered: {e}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(n: usize, size: usize) -> InputMessage {
        InputMessage {
            input: format!("in{n}"),
            payload: vec![b'x'; size],
        }
    }

    #[test]
    fn held_triggers_are_taken_once_oldest_first_within_the_hold_time() {
        let mut held = HeldTriggers::default();
        let t0 = Instant::now();
        held.hold("door", trigger(1, 10), t0);
        held.hold("yard", trigger(2, 10), t0);
        held.hold("door", trigger(3, 10), t0 + Duration::from_secs(5));
        let (taken, dropped) = held.take("door", t0 + Duration::from_secs(6));
        assert_eq!(dropped, 0);
        let inputs: Vec<&str> = taken.iter().map(|(_, m)| m.input.as_str()).collect();
        assert_eq!(inputs, ["in1", "in3"]);
        assert_eq!(taken[0].0, Duration::from_secs(6));
        assert!(held.take("door", t0 + Duration::from_secs(6)).0.is_empty());
        assert_eq!(held.len(), 1);
        // Past the hold time: gone.
        assert!(
            held.take("yard", t0 + HOLD_FOR + Duration::from_millis(1))
                .0
                .is_empty()
        );
        assert!(held.is_empty());
    }

    #[test]
    fn the_bounds_drop_the_oldest() {
        let mut held = HeldTriggers::default();
        let t0 = Instant::now();
        for n in 0..MAX_PER_PIPELINE {
            assert_eq!(held.hold("door", trigger(n, 1), t0), 0);
        }
        assert_eq!(held.hold("door", trigger(99, 1), t0), 1);
        let (taken, dropped) = held.take("door", t0);
        assert_eq!((taken.len(), dropped), (MAX_PER_PIPELINE, 1));
        assert_eq!(taken[0].1.input, "in1", "the oldest went");
        // The byte budget: a big trigger pushes out older ones of other pipelines.
        held.hold("a", trigger(1, MAX_HELD_BYTES / 2), t0);
        held.hold(
            "b",
            trigger(2, MAX_HELD_BYTES / 2),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(
            held.hold("c", trigger(3, 10), t0 + Duration::from_secs(2)),
            1
        );
        let (taken, dropped) = held.take("a", t0 + Duration::from_secs(2));
        assert_eq!((taken.len(), dropped), (0, 1));
        assert_eq!(held.len(), 2);
        // The count budget, across pipelines.
        let mut many = HeldTriggers::default();
        for n in 0..MAX_HELD {
            many.hold(&format!("p{n}"), trigger(n, 1), t0);
        }
        assert_eq!(many.hold("last", trigger(0, 1), t0), 1);
        assert_eq!(many.len(), MAX_HELD);
    }

    #[test]
    fn a_member_holds_a_trigger_unless_a_live_node_records_the_pipeline() {
        assert!(hold_in_cluster(Recorder::Nobody));
        assert!(hold_in_cluster(Recorder::ThisNode));
        assert!(hold_in_cluster(Recorder::Other { live: false }));
        assert!(hold_in_cluster(Recorder::Unknown));
        assert!(!hold_in_cluster(Recorder::Other { live: true }));
    }
}
