//! MQTT: trigger messages in (`vigil/<pipeline>/inputs/<hubInputName>`), events out
//! (`vigil/<pipeline>/events`, `vigil/<pipeline>/outputs/<hubOutputName>`). A lost broker is
//! reported and reconnected; recording goes on without it.

use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::event::{Event, EventClass};
use super::event_log::{EventBus, Publication};
use crate::nodes::rtsp_source::wall_now;

/// A raw message that arrived on an input topic.
#[derive(Clone, Debug)]
pub struct InputMessage {
    /// The `hubInputName` (last topic level).
    pub input: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Parses `HOST[:PORT]` (default port 1883).
pub fn parse_broker(text: &str) -> Result<(String, u16), String> {
    let text = text.trim().trim_start_matches("mqtt://");
    match text.rsplit_once(':') {
        Some((host, port)) => port
            .parse()
            .map(|p| (host.to_string(), p))
            .map_err(|_| format!("'{text}': bad port")),
        None if !text.is_empty() => Ok((text.to_string(), 1883)),
        None => Err("empty broker address".into()),
    }
}

/// Connects to the broker, subscribes to the pipeline's input topics, forwards input messages to
/// `inputs`, and publishes what the bus hands it, until `shutdown`.
pub async fn run_mqtt(
    broker: (String, u16),
    bus: EventBus,
    inputs: mpsc::Sender<InputMessage>,
    mut publications: mpsc::UnboundedReceiver<Publication>,
    mut shutdown: watch::Receiver<bool>,
) {
    let pipeline = bus.pipeline().to_string();
    let client_id = format!("vigil-{pipeline}-{}", std::process::id());
    let mut options = MqttOptions::new(client_id, broker.0.clone(), broker.1);
    options.set_keep_alive(Duration::from_secs(15));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    let filter = format!("vigil/{pipeline}/inputs/+");
    let prefix = format!("vigil/{pipeline}/inputs/");
    let mut connected = false;
    let mut backoff = Duration::from_millis(500);
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                let _ = client.disconnect().await;
                return;
            }
            Some(p) = publications.recv() => {
                let payload = p.event.to_json().to_string();
                // Queued in the client while the broker is away; dropped if the queue is full.
                let _ = client.try_publish(p.topic, QoS::AtLeastOnce, false, payload);
            }
            polled = eventloop.poll() => match polled {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    backoff = Duration::from_millis(500);
                    let _ = client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    tracing::info!("MQTT connected to {}:{}, subscribed to {filter}", broker.0, broker.1);
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    if let Some(input) = p.topic.strip_prefix(&prefix) {
                        let _ = inputs.send(InputMessage { input: input.to_string(), payload: p.payload.to_vec() }).await;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if connected || backoff == Duration::from_millis(500) {
                        bus.emit(Event::new(
                            EventClass::Diagnostics,
                            "NetworkError",
                            format!("/livePipelines/{pipeline}"),
                            wall_now(),
                            json!({"broker": format!("{}:{}", broker.0, broker.1), "detail": e.to_string(), "retryInSeconds": backoff.as_secs_f64()}),
                        ));
                    }
                    connected = false;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_addresses() {
        assert_eq!(parse_broker("localhost"), Ok(("localhost".into(), 1883)));
        assert_eq!(
            parse_broker("mqtt://10.0.0.2:1884"),
            Ok(("10.0.0.2".into(), 1884))
        );
        assert!(parse_broker("host:x").is_err());
    }
}
