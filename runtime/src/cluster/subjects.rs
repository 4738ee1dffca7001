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

/// The subject of `pipeline`'s trigger input `input`; None when the names cannot make one
/// (empty, whitespace or a wildcard in either, a '.' in the input).
pub fn input_subject(pipeline: &str, input: &str) -> Option<String> {
    let bad = |name: &str| {
        name.is_empty()
            || name.split('.').any(|token| token.is_empty())
            || name
                .chars()
                .any(|c| c.is_whitespace() || c == '*' || c == '>')
    };
    (!bad(pipeline) && !bad(input) && !input.contains('.'))
        .then(|| format!("{PIPELINES}{pipeline}.inputs.{input}"))
}

/// Where a trigger for a pipeline this member does not record was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    /// Published on the pipeline's subject for the member that records it.
    To(String),
    /// Published on the pipeline's subject for the members to hold: it is Active, and no
    /// member records it now (it is starting or moving; see `service::held_triggers`).
    Held,
    /// No member holds its lease now and it is not Active.
    NobodyRecords,
    /// The names cannot make a subject.
    BadName,
    /// The cluster did not answer.
    Unreachable(String),
}

/// How long forwarding a trigger waits for the cluster.
pub const FORWARD_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Sends a trigger that reached this member for `pipeline`, which it does not run, on the
/// pipeline's subject (an HTTP trigger may reach any member): for the member that records it,
/// or, when none does and the pipeline is `active`, for every member to hold until one starts
/// it.
pub async fn forward_trigger(
    cluster: &super::Cluster,
    pipeline: &str,
    input: &str,
    payload: Vec<u8>,
    active: bool,
) -> Forwarded {
    let Some(subject) = input_subject(pipeline, input) else {
        return Forwarded::BadName;
    };
    let sent = async {
        let sent_as = match super::lease::holder_checked(&cluster.leases, pipeline).await {
            Ok(Some(node)) if node != cluster.node => Forwarded::To(node),
            // Held here but not running yet (starting), or held by nobody.
            Ok(_) if active => Forwarded::Held,
            Ok(_) => return Forwarded::NobodyRecords,
            Err(e) => return Forwarded::Unreachable(e.to_string()),
        };
        match cluster.client.publish(subject, Bytes::from(payload)).await {
            Ok(()) => sent_as,
            Err(e) => Forwarded::Unreachable(e.to_string()),
        }
    };
    tokio::time::timeout(FORWARD_WAIT, sent)
        .await
        .unwrap_or_else(|_| Forwarded::Unreachable(format!("no answer within {FORWARD_WAIT:?}")))
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
                // Only the member recording the pipeline has a route for it; that member
                // reports what it cannot deliver (no such input, its queue full).
                // Held if it is Active and nobody else records it (it is moving).
                let trigger = InputMessage { input: input.to_string(), payload: message.payload.to_vec() };
                service.deliver_or_hold("NATS", pipeline, trigger);
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
    use super::{input_subject, parse_input_subject};

    #[test]
    fn a_trigger_subject_is_made_only_of_names_that_fit() {
        assert_eq!(
            input_subject("door", "recordingTrigger").as_deref(),
            Some("vigil.pipelines.door.inputs.recordingTrigger")
        );
        assert_eq!(
            input_subject("front.door", "t").as_deref(),
            Some("vigil.pipelines.front.door.inputs.t")
        );
        for (pipeline, input) in [
            ("", "t"),
            ("door", ""),
            ("door", "a.b"),
            ("do or", "t"),
            ("door", "*"),
            ("door>", "t"),
            ("door.", "t"),
        ] {
            assert_eq!(input_subject(pipeline, input), None, "{pipeline} {input}");
        }
        let (pipeline, input) = ("front.door", "t");
        let subject = input_subject(pipeline, input).expect("subject");
        assert_eq!(parse_input_subject(&subject), Some((pipeline, input)));
    }

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
