//! Trigger messages arriving for an IotHubMessageSource (MQTT payload or HTTP body).

use serde_json::{Value, json};

use super::event::{Event, EventClass};
use super::event_log::EventBus;
use crate::media::time::MediaTime;

/// Largest trigger body read (MQTT payload or HTTP body; `--max-trigger-kib`, 64 KiB by
/// default); a larger one is refused and reported, never copied into events or logs.
pub fn max_trigger_bytes() -> usize {
    crate::limits::get().trigger_bytes
}

/// Reports a trigger refused for its size on `bus` (`InvalidMessage`, subject
/// `/livePipelines/<pipeline>`), naming the limit.
pub fn report_oversized(bus: &EventBus, pipeline: &str, input: &str, bytes: usize, how: &str) {
    bus.for_pipeline(pipeline).emit(Event::new(
        EventClass::Diagnostics,
        "InvalidMessage",
        format!("/livePipelines/{pipeline}"),
        crate::nodes::rtsp_source::wall_now(),
        json!({"input": input, "detail": format!("a {how} of {bytes} bytes is over the {} KiB limit of a trigger (--max-trigger-kib); it was dropped", max_trigger_bytes() / 1024), "bytes": bytes, "limitBytes": max_trigger_bytes()}),
    ));
}

/// A trigger, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// The `eventTime` the sender stamped, if any; else the event counts at its arrival.
    pub event_time: Option<MediaTime>,
    /// The sender's message id, or a fresh one: becomes the recording's correlation id.
    pub correlation_id: String,
    /// The message body.
    pub body: Value,
}

/// Reports a trigger's arrival on `input` of the source at `subject` (`TriggerReceived`) and
/// returns the event it becomes for the gates: both at media time `at`, both correlated.
pub fn received(
    bus: &EventBus,
    subject: String,
    input: &str,
    at: MediaTime,
    body: &Value,
    correlation_id: String,
) -> Event {
    bus.emit(
        Event::new(
            EventClass::Operational,
            "TriggerReceived",
            subject.clone(),
            at,
            json!({"input": input, "body": body}),
        )
        .correlated(Some(correlation_id.clone())),
    );
    Event::new(EventClass::Analytics, "Trigger", subject, at, body.clone())
        .correlated(Some(correlation_id))
}

/// Parses a trigger: an AVA envelope (`body`, `properties`/`applicationProperties.eventTime`,
/// `systemProperties.messageId`) or any JSON object (with an optional top-level `eventTime`).
pub fn parse_trigger(payload: &[u8]) -> Result<Trigger, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        format!(
            "not JSON ({e}); send a JSON object such as {{\"eventTime\": \"2026-01-01T00:00:00Z\"}} or {{}}"
        )
    })?;
    let Value::Object(map) = &value else {
        return Err("the message must be a JSON object".into());
    };
    let props = ["properties", "applicationProperties"]
        .iter()
        .find_map(|k| map.get(*k))
        .and_then(Value::as_object);
    let time_text = props
        .and_then(|p| p.get("eventTime"))
        .or_else(|| map.get("eventTime"));
    let event_time = match time_text {
        None => None,
        Some(Value::String(s)) => Some(parse_utc(s)?),
        Some(other) => {
            return Err(format!(
                "eventTime must be an ISO 8601 string, found {other}"
            ));
        }
    };
    let correlation_id = map
        .get("systemProperties")
        .and_then(|s| s.get("messageId"))
        .or_else(|| map.get("messageId"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let body = if props.is_some() || map.contains_key("systemProperties") {
        map.get("body").cloned().unwrap_or(Value::Null)
    } else {
        value.clone()
    };
    Ok(Trigger {
        event_time,
        correlation_id,
        body,
    })
}

/// Parses an ISO 8601 UTC timestamp (`2021-05-03T18:22:59.063Z`, offsets allowed).
pub fn parse_utc(text: &str) -> Result<MediaTime, String> {
    let ts: jiff::Timestamp = text
        .trim()
        .parse()
        .map_err(|e| format!("'{text}' is not an ISO 8601 UTC time ({e})"))?;
    i64::try_from(ts.as_nanosecond())
        .map(MediaTime::from_nanos)
        .map_err(|_| format!("'{text}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_envelopes_and_plain_objects() {
        let t = parse_trigger(br#"{"body": {"count": 2}, "applicationProperties": {"eventTime": "2020-05-17T17:53:44.062Z"}}"#)
            .expect("valid");
        assert_eq!(t.body, serde_json::json!({"count": 2}));
        assert_eq!(
            t.event_time.map(|t| t.to_string()).as_deref(),
            Some("2020-05-17T17:53:44.062Z")
        );
        let plain = parse_trigger(br#"{"door": "open"}"#).expect("valid");
        assert_eq!(plain.event_time, None);
        assert_eq!(plain.body, serde_json::json!({"door": "open"}));
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse_trigger(b"open").is_err());
        assert!(parse_trigger(b"[1]").is_err());
        assert!(parse_trigger(br#"{"eventTime": "yesterday"}"#).is_err());
    }
}
