//! The cluster's NATS subjects, served by every member:
//!
//! * `vigil.methods.<methodName>`: AVA's module methods as NATS requests (the payload as over
//!   HTTP; the reply `{"status", "payload"}`), answered by one member of the queue group;
//! * `vigil.pipelines.<pipeline>.inputs.<hubInputName>`: triggers (AVA envelope or any JSON),
//!   delivered by the member that records the pipeline, wherever that is;
//! * `vigil.events.<pipeline>`: every event of every pipeline of every member, in AVA's envelope
//!   (what the event log holds), published as it happens (core NATS: subscribers that are not
//!   listening miss them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::bus::mqtt::InputMessage;
use crate::service::Service;

/// Prefix of the method subjects.
pub const METHODS: &str = "vigil.methods.";
/// Prefix of the trigger subjects.
pub const PIPELINES: &str = "vigil.pipelines.";
/// Prefix of the event subjects.
pub const EVENTS: &str = "vigil.events.";
/// The members' queue group for method calls.
pub const QUEUE: &str = "vigil";
/// Events waiting for the NATS client; beyond this they are dropped and counted.
pub const EVENT_QUEUE: usize = 1024;

/// The pipeline and input a trigger subject names (`None`: not a trigger subject).
pub fn parse_input_subject(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix(PIPELINES)?;
    let (pipeline, input) = rest.rsplit_once(".inputs.")?;
    (!pipeline.is_empty() && !input.is_empty() && !input.contains('.')).then_some((pipeline, input))
}

/// Serves the method and trigger subjects and publishes the events until `shutdown`.
pub async fn serve(
    service: Arc<Service>,
    client: async_nats::Client,
    mut shutdown: watch::Receiver<bool>,
) {
    let methods = client
        .queue_subscribe(format!("{METHODS}*"), QUEUE.to_string())
        .await;
    let inputs = client.subscribe(format!("{PIPELINES}>")).await;
    let (Ok(mut methods), Ok(mut inputs)) = (methods, inputs) else {
        tracing::warn!("cannot subscribe to the cluster's method and trigger subjects");
        return;
    };
    let events = publish_events(&service, client.clone());
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(request) = methods.next() => {
                let Some(reply) = request.reply.clone() else { continue };
                let name = request.subject.as_str().strip_prefix(METHODS).unwrap_or("").to_string();
                let (service, client) = (service.clone(), client.clone());
                tokio::spawn(async move {
                    let answer = service.call(&name, &request.payload).await;
                    let body = Bytes::from(answer.to_json().to_string());
                    let _ = client.publish(reply, body).await;
                });
            }
            Some(message) = inputs.next() => {
                let Some((pipeline, input)) = parse_input_subject(message.subject.as_str()) else {
                    continue;
                };
                // Only the member recording the pipeline has a route for it.
                let trigger = InputMessage { input: input.to_string(), payload: message.payload.to_vec() };
                let _ = service.context().inputs.deliver(pipeline, trigger);
            }
        }
    }
    events.abort();
}

/// Publishes every event of the service on `vigil.events.<pipeline>` from a task of its own
/// (the bus only queues them); what the full queue refuses is counted in the log.
fn publish_events(service: &Service, client: async_nats::Client) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = mpsc::channel::<(String, Bytes)>(EVENT_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let counted = dropped.clone();
    service
        .context()
        .bus
        .observe(Arc::new(move |pipeline, event| {
            let body = Bytes::from(event.to_json().to_string());
            if tx.try_send((format!("{EVENTS}{pipeline}"), body)).is_err() {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    tokio::spawn(async move {
        while let Some((subject, body)) = rx.recv().await {
            let _ = client.publish(subject, body).await;
            let lost = dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                tracing::warn!("{lost} events not published on NATS: its queue was full");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::parse_input_subject;

    #[test]
    fn trigger_subjects_name_the_pipeline_and_input() {
        assert_eq!(
            parse_input_subject("vigil.pipelines.door.inputs.recordingTrigger"),
            Some(("door", "recordingTrigger"))
        );
        assert_eq!(
            parse_input_subject("vigil.pipelines.front.door.inputs.t"),
            Some(("front.door", "t"))
        );
        assert_eq!(parse_input_subject("vigil.pipelines.door.inputs."), None);
        assert_eq!(parse_input_subject("vigil.pipelines.inputs.t"), None);
        assert_eq!(parse_input_subject("vigil.events.door"), None);
    }
}
