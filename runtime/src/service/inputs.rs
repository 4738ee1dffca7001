//! Where a trigger message for a pipeline goes: every running pipeline registers its
//! IotHubMessageSources' `hubInputName`s and its input queue here; the one HTTP listener and the
//! one MQTT connection deliver through it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

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

/// The running pipelines' inputs, by pipeline name.
#[derive(Clone, Default)]
pub struct InputRouter {
    routes: Arc<RwLock<HashMap<String, Route>>>,
}

impl InputRouter {
    /// Routes messages for `pipeline`'s `inputs` to `queue` (replacing an earlier registration).
    pub fn register(&self, pipeline: &str, inputs: Vec<String>, queue: mpsc::Sender<InputMessage>) {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes.insert(pipeline.to_string(), Route { inputs, queue });
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
}
