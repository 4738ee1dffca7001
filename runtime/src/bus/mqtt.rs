//! MQTT: one connection per process for every pipeline. In: trigger messages
//! (`vigil/<pipeline>/inputs/<hubInputName>`) and control-API calls
//! (`vigil/methods/POST/<methodName>/?$rid=<id>`, answered on `vigil/methods/res/<status>/?$rid=<id>`,
//! the shape of IoT Hub's direct-method topics). Out: events (`vigil/<pipeline>/events`,
//! `vigil/<pipeline>/outputs/<hubOutputName>`). A lost broker is reported and reconnected;
//! recording goes on without it. The session is persistent (clean session off, a stable client
//! id) and subscribed with QoS 1, so the broker keeps the triggers and calls that arrive while
//! Vigil is disconnected and delivers them when it is back.

use std::time::Duration;

use rumqttc::{
    AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};

use super::trigger::{max_trigger_bytes, report_oversized};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::event::{Event, EventClass};
use super::event_log::{EventBus, Publication};
use crate::nodes::rtsp_source::wall_now;

/// A raw message that arrived on an input topic (or over HTTP) for a pipeline's
/// IotHubMessageSource.
#[derive(Clone, Debug)]
pub struct InputMessage {
    /// The `hubInputName` (last topic level).
    pub input: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// What the broker delivers to the service.
#[derive(Clone, Debug)]
pub enum Inbound {
    /// A trigger for `pipeline`.
    Input {
        /// The live pipeline's name.
        pipeline: String,
        /// The message.
        message: InputMessage,
    },
    /// A control-API call; the answer goes to [`method_response_topic`].
    Method {
        /// `methodName`.
        name: String,
        /// The caller's request id (`$rid`).
        request_id: String,
        /// The method's payload.
        payload: Vec<u8>,
    },
    /// Home Assistant's switch for `pipeline`: activate (`ON`) or deactivate (`OFF`).
    Switch {
        /// The live pipeline's name.
        pipeline: String,
        /// Activate.
        on: bool,
    },
}

/// Prefix of the control-API request topics.
pub const METHOD_REQUEST_PREFIX: &str = "vigil/methods/POST/";

/// The topic a method's answer is published on.
pub fn method_response_topic(status: u16, request_id: &str) -> String {
    format!("vigil/methods/res/{status}/?$rid={request_id}")
}

/// Largest MQTT packet the connection accepts (and sends): far above what is read, so that an
/// oversized message is dropped and reported instead of breaking the connection.
pub const MAX_PACKET_BYTES: usize = 64 << 20;
/// Publications waiting for the MQTT client (events and method answers); what does not fit,
/// and what the client's own queue refuses while the broker is away, is counted and reported
/// (`DataDropped` on `/broker`) instead of growing memory.
pub const PUBLICATION_QUEUE: usize = 4096;
/// Pause between two connection attempts: a broker that is back is used again within it (an
/// attempt costs one TCP connection, so there is no back-off to widen the outage).
pub const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// Longest time between two reports of dropped publications while they go on.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Reads a topic the service subscribes to.
pub fn parse_inbound(topic: &str, payload: &[u8]) -> Option<Inbound> {
    if let Some(pipeline) = super::home_assistant::command_pipeline(topic) {
        let on = match payload {
            b"ON" => true,
            b"OFF" => false,
            _ => return None,
        };
        return Some(Inbound::Switch {
            pipeline: pipeline.to_string(),
            on,
        });
    }
    if let Some(rest) = topic.strip_prefix(METHOD_REQUEST_PREFIX) {
        let (name, query) = rest.split_once('/').unwrap_or((rest, ""));
        let request_id = query
            .trim_start_matches('?')
            .split('&')
            .find_map(|kv| kv.strip_prefix("$rid="))
            .unwrap_or("")
            .to_string();
        return Some(Inbound::Method {
            name: name.to_string(),
            request_id,
            payload: payload.to_vec(),
        });
    }
    let mut levels = topic.split('/');
    match (
        levels.next(),
        levels.next(),
        levels.next(),
        levels.next(),
        levels.next(),
    ) {
        (Some("vigil"), Some(pipeline), Some("inputs"), Some(input), None) => {
            Some(Inbound::Input {
                pipeline: pipeline.to_string(),
                message: InputMessage {
                    input: input.to_string(),
                    payload: payload.to_vec(),
                },
            })
        }
        _ => None,
    }
}

/// Where the broker is and how to speak to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// MQTT over TLS (`mqtts://`), trusting [`crate::tls::client_config`].
    pub tls: bool,
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Parses `[mqtt://]HOST[:PORT]` (default port 1883) or `mqtts://HOST[:PORT]` (TLS, default
/// port 8883).
pub fn parse_broker(text: &str) -> Result<Broker, String> {
    let text = text.trim();
    let (rest, tls) = match text.strip_prefix("mqtts://") {
        Some(rest) => (rest, true),
        None => (text.strip_prefix("mqtt://").unwrap_or(text), false),
    };
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse()
                .map_err(|_| format!("'{text}': bad port '{port}'"))?,
        ),
        None => (rest, default_port),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains('/') {
        return Err(format!(
            "'{text}': give [mqtt://]HOST[:PORT] or mqtts://HOST[:PORT]"
        ));
    }
    Ok(Broker {
        host: host.to_string(),
        port,
        tls,
    })
}

/// How to reach the broker.
#[derive(Clone, Debug)]
pub struct MqttSetup {
    /// The broker.
    pub broker: Broker,
    /// User name and password.
    pub credentials: Option<(String, String)>,
    /// The client id (default [`default_client_id`]).
    pub client_id: Option<String>,
    /// Home Assistant discovery: the availability topic (`online` at each connection, `offline`
    /// the last will) and a counter of connections; the switch topics are subscribed to.
    pub home_assistant: Option<HomeAssistantLink>,
}

/// What the MQTT task does for Home Assistant.
#[derive(Clone, Debug)]
pub struct HomeAssistantLink {
    /// The service's availability topic.
    pub availability_topic: String,
    /// Connections made so far (the bridge publishes discovery again after each).
    pub connections: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Connects to the broker (with credentials, if given) under the setup's client id in a
/// persistent session, subscribes to every pipeline's input topics and to the method topics (and
/// Home Assistant's switches), forwards what arrives to `inbound`, and publishes what the bus
/// hands it, until `shutdown`.
pub async fn run_mqtt(
    setup: MqttSetup,
    bus: EventBus,
    inbound: mpsc::Sender<Inbound>,
    mut publications: mpsc::Receiver<Publication>,
    mut shutdown: watch::Receiver<bool>,
) {
    let MqttSetup {
        broker,
        credentials,
        client_id,
        home_assistant,
    } = setup;
    let client_id = client_id.unwrap_or_else(|| default_client_id(bus.pipeline()));
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    // The broker keeps the session across disconnections: QoS 1 messages for its
    // subscriptions wait there while Vigil is away.
    options.set_clean_session(false);
    if broker.tls {
        match crate::tls::client_config() {
            Ok(config) => {
                options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
            }
            Err(e) => {
                bus.emit(Event::new(
                    EventClass::Diagnostics,
                    "NetworkError",
                    "/broker".to_string(),
                    wall_now(),
                    json!({"broker": broker.to_string(), "detail": format!("no TLS: {e}")}),
                ));
                return;
            }
        }
    }
    options.set_keep_alive(Duration::from_secs(15));
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    // Far above what is read: a large message (a retained one above all, which the broker
    // sends again at each connection) must not break the connection; it is dropped below.
    options.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    let mut filters = vec![
        "vigil/+/inputs/+".to_string(),
        format!("{METHOD_REQUEST_PREFIX}#"),
    ];
    if let Some(ha) = &home_assistant {
        options.set_last_will(rumqttc::LastWill::new(
            ha.availability_topic.clone(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        filters.push(super::home_assistant::COMMAND_FILTER.to_string());
    }
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let mut connected = false;
    let mut outage_reported = false;
    let mut dropped: u64 = 0;
    let mut reported_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                let _ = client.disconnect().await;
                return;
            }
            Some(p) = publications.recv() => {
                // Queued in the client while the broker is away; counted if its queue is full.
                if client.try_publish(p.topic, QoS::AtLeastOnce, p.retain, p.payload).is_err() {
                    dropped += 1;
                }
                if connected && reported_at.elapsed() >= DROP_REPORT_EVERY {
                    report_dropped(&bus, &broker, &mut dropped);
                    reported_at = tokio::time::Instant::now();
                }
            }
            polled = eventloop.poll() => match polled {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    outage_reported = false;
                    for filter in &filters {
                        let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                    if let Some(ha) = &home_assistant {
                        let _ = client.try_publish(ha.availability_topic.clone(), QoS::AtLeastOnce, true, "online");
                        ha.connections.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    }
                    tracing::info!("MQTT connected to {broker}, subscribed to {}", filters.join(", "));
                    report_dropped(&bus, &broker, &mut dropped);
                    reported_at = tokio::time::Instant::now();
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => match parse_inbound(&p.topic, &p.payload) {
                    Some(Inbound::Input { pipeline, message }) if p.retain => {
                        // A retained trigger is an old event, sent again at every connection.
                        bus.for_pipeline(&pipeline).emit(Event::new(
                            EventClass::Diagnostics,
                            "InvalidMessage",
                            format!("/livePipelines/{pipeline}"),
                            wall_now(),
                            json!({"input": message.input, "detail": "a retained message on an input topic is an old event; it was ignored (publish triggers without the retain flag)"}),
                        ));
                    }
                    Some(Inbound::Input { pipeline, message }) if message.payload.len() > max_trigger_bytes() => {
                        report_oversized(&bus, &pipeline, &message.input, message.payload.len(), "MQTT message");
                    }
                    Some(Inbound::Method { name, request_id, payload }) if payload.len() > crate::limits::get().method_bytes => {
                        let answer = crate::service::methods::Response::payload_too_large(&format!("{} bytes", payload.len()));
                        let _ = client.try_publish(method_response_topic(413, &request_id), QoS::AtLeastOnce, false, answer.to_json().to_string());
                        tracing::warn!("MQTT method {name}: payload of {} bytes refused", payload.len());
                    }
                    Some(message) => {
                        let _ = inbound.send(message).await;
                    }
                    None => {}
                },
                Ok(_) => {}
                Err(e) => {
                    if !outage_reported {
                        outage_reported = true;
                        bus.emit(Event::new(
                            EventClass::Diagnostics,
                            "NetworkError",
                            "/broker".to_string(),
                            wall_now(),
                            json!({"broker": broker.to_string(), "detail": e.to_string(), "retryInSeconds": RECONNECT_EVERY.as_secs_f64()}),
                        ));
                    }
                    connected = false;
                    tokio::select! {
                        _ = tokio::time::sleep(RECONNECT_EVERY) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }
}

/// The client id a process uses when none is given: `vigil-<host name>-<pipeline>`, the same
/// at every start, so a restarted Vigil finds its session.
pub fn default_client_id(pipeline: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    format!("vigil-{host}-{pipeline}")
}

/// Reports the publications dropped since the last report (the client's queue and the bus's),
/// if any: a `DataDropped` diagnostics event on `/broker`. The event log has every event.
fn report_dropped(bus: &EventBus, broker: &Broker, dropped: &mut u64) {
    let total = std::mem::take(dropped) + bus.take_mqtt_dropped();
    if total == 0 {
        return;
    }
    bus.emit(Event::new(
        EventClass::Diagnostics,
        "DataDropped",
        "/broker".to_string(),
        wall_now(),
        json!({"broker": broker.to_string(), "publicationsDropped": total, "detail": "events not published on MQTT: the queue to the broker was full (the broker was away or slow); the event log has them"}),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_addresses() {
        let broker = |host: &str, port, tls| Broker {
            host: host.into(),
            port,
            tls,
        };
        assert_eq!(
            parse_broker("localhost"),
            Ok(broker("localhost", 1883, false))
        );
        assert_eq!(
            parse_broker("mqtt://10.0.0.2:1884"),
            Ok(broker("10.0.0.2", 1884, false))
        );
        assert_eq!(
            parse_broker("mqtts://nvr.example"),
            Ok(broker("nvr.example", 8883, true))
        );
        assert_eq!(
            parse_broker("mqtts://[::1]:8884"),
            Ok(broker("::1", 8884, true))
        );
        assert!(parse_broker("host:x").is_err());
        assert!(parse_broker("mqtts://").is_err());
        assert!(parse_broker("mqtt://host/path").is_err());
    }

    #[test]
    fn reads_input_and_method_topics() {
        match parse_inbound("vigil/door/inputs/trigger", b"{}") {
            Some(Inbound::Input { pipeline, message }) => {
                assert_eq!(
                    (pipeline.as_str(), message.input.as_str()),
                    ("door", "trigger")
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_inbound("vigil/methods/POST/livePipelineGet/?$rid=42", b"{}") {
            Some(Inbound::Method {
                name, request_id, ..
            }) => {
                assert_eq!(
                    (name.as_str(), request_id.as_str()),
                    ("livePipelineGet", "42")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_inbound("vigil/door/events", b"{}").is_none());
        assert!(parse_inbound("vigil/door/inputs/a/b", b"{}").is_none());
        assert_eq!(
            method_response_topic(404, "7"),
            "vigil/methods/res/404/?$rid=7"
        );
    }
}
