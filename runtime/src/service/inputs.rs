//! Where a trigger message for a pipeline goes: every running pipeline registers its
//! IotHubMessageSources' `hubInputName`s and its input queue here; the one HTTP listener and the
//! one MQTT connection deliver through it. Triggers held while a pipeline was not running
//! ([`super::held_triggers`]) are handed to it as it registers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::held_triggers::{Delivered, HeldTriggers};
use crate::bus::mqtt::InputMessage;

/// Why a message could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No running pipeline of that name.
    #[error("no running pipeline '{0}'")]
    NoPipeline(String),
    /// The pipeline has no IotHubMessageSource with that `hubInputName`.
    #[error("pipeline '{pipeline}' has no input '{input}' (inputs: {known})")]
    NoInput {
        /// The pipeline.
        pipeline: String,
        /// The input asked for.
        input: String,
        /// Its inputs, comma-separated.
        known: String,
    },
    /// The pipeline's queue is full or it is stopping.
    #[error("pipeline '{0}' cannot take the message now (busy or stopping)")]
    Busy(String),
}

struct Route {
    inputs: Vec<String>,
    queue: mpsc::Sender<InputMessage>,
}

/// The running pipelines' inputs, by pipeline name, and the triggers held for the others.
#[derive(Clone)]
pub struct InputRouter {
    routes: Arc<RwLock<HashMap<String, Route>>>,
    held: Arc<Mutex<HeldTriggers>>,
    /// Bounds the triggers being looked at for holding at one time (see
    /// [`InputRouter::hold_check`]).
    checks: Arc<tokio::sync::Semaphore>,
}

/// Triggers looked at for holding at one time (each may read the registry and ask the
/// cluster); a flood beyond is not held.
pub const HOLD_CHECKS: usize = 32;

impl Default for InputRouter {
    fn default() -> Self {
        Self {
            routes: Arc::default(),
            held: Arc::default(),
            checks: Arc::new(tokio::sync::Semaphore::new(HOLD_CHECKS)),
        }
    }
}

impl InputRouter {
    /// Routes messages for `pipeline`'s `inputs` to `queue` (replacing an earlier registration),
    /// first the triggers held for it (see [`InputRouter::hold`]); what was delivered of them.
    pub fn register(
        &self,
        pipeline: &str,
        inputs: Vec<String>,
        queue: mpsc::Sender<InputMessage>,
    ) -> Delivered {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let (held, dropped) = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(pipeline, Instant::now());
        let mut delivered = Delivered {
            count: 0,
            oldest: Duration::ZERO,
            refused: 0,
            dropped,
        };
        for (waited, message) in held {
            let known = inputs.contains(&message.input);
            if known && queue.try_send(message).is_ok() {
                delivered.count += 1;
                delivered.oldest = delivered.oldest.max(waited);
            } else {
                delivered.refused += 1;
            }
        }
        routes.insert(pipeline.to_string(), Route { inputs, queue });
        delivered
    }

    /// A permit to look at one trigger that no running pipeline took (whether to hold it), on
    /// a task of its own; none while [`HOLD_CHECKS`] are under way (that trigger is not held).
    pub fn hold_check(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.checks.clone().try_acquire_owned().ok()
    }

    /// Holds `message` for `pipeline`, which is Active but not running now, until it starts
    /// ([`InputRouter::register`]) or [`super::held_triggers::HOLD_FOR`] has passed (older
    /// held triggers dropped to make room are counted there). Delivered at once if the
    /// pipeline started meanwhile (an error if it cannot take it).
    pub fn hold(&self, pipeline: &str, message: InputMessage) -> Result<(), DeliveryError> {
        // The routes' lock first, as in register: a pipeline registering now either took the
        // held triggers before this one is held, or registers after it and sees it.
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        match Self::route(&routes, pipeline, &message.input) {
            Ok(route) => {
                return route
                    .queue
                    .try_send(message)
                    .map_err(|_| DeliveryError::Busy(pipeline.to_string()));
            }
            Err(e @ DeliveryError::NoInput { .. }) => return Err(e),
            Err(_) => {}
        }
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hold(pipeline, message, Instant::now());
        Ok(())
    }

    /// Stops routing messages to `pipeline`.
    pub fn unregister(&self, pipeline: &str) {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes.remove(pipeline);
    }

    /// Hands `message` to `pipeline` without waiting.
    pub fn deliver(&self, pipeline: &str, message: InputMessage) -> Result<(), DeliveryError> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        Self::route(&routes, pipeline, &message.input)?
            .queue
            .try_send(message)
            .map_err(|_| DeliveryError::Busy(pipeline.to_string()))
    }

    fn route<'a>(
        routes: &'a HashMap<String, Route>,
        pipeline: &str,
        input: &str,
    ) -> Result<&'a Route, DeliveryError> {
        let route = routes
            .get(pipeline)
            .ok_or_else(|| DeliveryError::NoPipeline(pipeline.to_string()))?;
        if route.inputs.iter().any(|i| i == input) {
            Ok(route)
        } else {
            Err(DeliveryError::NoInput {
                pipeline: pipeline.to_string(),
                input: input.to_string(),
                known: route.inputs.join(", "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_named_pipeline_and_input_only() {
        let router = InputRouter::default();
        let (tx, mut rx) = mpsc::channel(4);
        router.register("door", vec!["trigger".into()], tx);
        let message = |input: &str| InputMessage {
            input: input.into(),
            payload: b"{}".to_vec(),
        };
        assert_eq!(router.deliver("door", message("trigger")), Ok(()));
        assert_eq!(
            rx.try_recv().map(|m| m.input).ok().as_deref(),
            Some("trigger")
        );
        assert_eq!(
            router.deliver("gate", message("trigger")),
            Err(DeliveryError::NoPipeline("gate".into()))
        );
        assert!(matches!(
            router.deliver("door", message("other")),
            Err(DeliveryError::NoInput { .. })
        ));
        router.unregister("door");
        assert_eq!(
            router.deliver("door", message("trigger")),
            Err(DeliveryError::NoPipeline("door".into()))
        );
    }

    #[test]
    fn held_triggers_reach_the_pipeline_as_it_registers() {
        let router = InputRouter::default();
        let message = |input: &str| InputMessage {
            input: input.into(),
            payload: b"{}".to_vec(),
        };
        assert_eq!(router.hold("door", message("trigger")), Ok(()));
        assert_eq!(router.hold("door", message("unknown")), Ok(()));
        let (tx, mut rx) = mpsc::channel(4);
        let delivered = router.register("door", vec!["trigger".into()], tx);
        assert_eq!((delivered.count, delivered.refused), (1, 1));
        assert_eq!(
            rx.try_recv().map(|m| m.input).ok().as_deref(),
            Some("trigger")
        );
        // Running now: delivered at once, not held.
        assert_eq!(router.hold("door", message("trigger")), Ok(()));
        assert!(rx.try_recv().is_ok());
        let (tx, _rx) = mpsc::channel(4);
        let again = router.register("door", vec!["trigger".into()], tx);
        assert_eq!(again.count, 0);
    }
}
