//! The cluster's own events, on subject `/cluster`: the connection to NATS lost (`NetworkError`,
//! once per outage) and back (`ClusterReconnected`), messages the client dropped because this
//! node took them too slowly (`DataDropped`), errors the server reported (`NetworkError`), and a
//! watch of the cluster's state started again after it stalled (`ClusterWatchRestarted`).
//! Repeats of one kind within [`REPEAT_EVERY`] are counted into the next report.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::nodes::rtsp_source::wall_now;

/// The subject of the cluster's events.
pub const SUBJECT: &str = "/cluster";

/// Reports of one kind (dropped messages, server errors) come at most this often.
pub const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// Turns the NATS client's connection events into the service's events.
pub struct ConnectionReports {
    bus: EventBus,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the connection was lost, while it is.
    down_since: Option<Instant>,
    /// When dropped messages were last reported, and how many reports were held back since.
    slow: Repeats,
    /// The same for errors the server sent.
    server_errors: Repeats,
}

/// One kind of report, limited to one per [`REPEAT_EVERY`].
#[derive(Default)]
struct Repeats {
    last: Option<Instant>,
    held_back: u64,
}

impl Repeats {
    /// Whether to report now; if so, how many were held back since the last report.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < REPEAT_EVERY)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

impl ConnectionReports {
    /// Reports on `bus`.
    pub fn new(bus: EventBus) -> Self {
        Self {
            bus,
            state: Mutex::default(),
        }
    }

    /// Takes one event of the client's, at `now`.
    pub fn on_event(&self, event: &async_nats::Event, now: Instant) {
        let Some((class, kind, body)) = self.judge(event, now) else {
            return;
        };
        emit(&self.bus, class, kind, body);
    }

    /// The event to report for `event`, if any.
    fn judge(
        &self,
        event: &async_nats::Event,
        now: Instant,
    ) -> Option<(EventClass, &'static str, Value)> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            async_nats::Event::Disconnected => {
                if state.down_since.is_some() {
                    return None;
                }
                state.down_since = Some(now);
                Some((
                    EventClass::Diagnostics,
                    "NetworkError",
                    json!({
                        "retryInSeconds": super::RECONNECT_MAX_DELAY.as_secs_f64(),
                        "detail": "the connection to the cluster's NATS servers was lost: trying them again every 250 ms; a lease that cannot be renewed in time is given up before it lapses (LeaseLapsed)",
                    }),
                ))
            }
            async_nats::Event::Connected => {
                let since = state.down_since.take()?;
                Some((
                    EventClass::Operational,
                    "ClusterReconnected",
                    json!({"outageSeconds": round_ms(now.duration_since(since))}),
                ))
            }
            async_nats::Event::SlowConsumer(_) => {
                let held_back = state.slow.due(now)?;
                Some((
                    EventClass::Diagnostics,
                    "DataDropped",
                    json!({
                        "repeatsNotReported": held_back,
                        "detail": "the NATS client dropped messages this node did not take in time (triggers, method calls or the cluster's state may be among them)",
                    }),
                ))
            }
            async_nats::Event::ServerError(e) => {
                let held_back = state.server_errors.due(now)?;
                Some((
                    EventClass::Diagnostics,
                    "NetworkError",
                    json!({
                        "repeatsNotReported": held_back,
                        "detail": format!("the cluster's NATS server reported an error: {e}"),
                    }),
                ))
            }
            other => {
                tracing::info!("cluster connection: {other}");
                None
            }
        }
    }
}

/// Reports that the watch `watch` (`desiredState`, `heartbeats`) was started again: `detail`
/// says why.
pub fn watch_restarted(bus: &EventBus, watch: &str, detail: &str) {
    emit(
        bus,
        EventClass::Diagnostics,
        "ClusterWatchRestarted",
        json!({"watch": watch, "detail": detail}),
    );
}

fn emit(bus: &EventBus, class: EventClass, kind: &str, body: Value) {
    bus.emit(Event::new(class, kind, SUBJECT.into(), wall_now(), body));
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::{ConnectionReports, REPEAT_EVERY};
    use crate::bus::event_log::EventBus;
    use std::time::{Duration, Instant};

    fn kinds(
        reports: &ConnectionReports,
        events: &[(async_nats::Event, Instant)],
    ) -> Vec<&'static str> {
        events
            .iter()
            .filter_map(|(e, at)| reports.judge(e, *at).map(|(_, kind, _)| kind))
            .collect()
    }

    #[test]
    fn an_outage_is_reported_once_and_its_end_with_its_length() {
        let reports = ConnectionReports::new(EventBus::in_memory("vigil"));
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        use async_nats::Event::{Connected, Disconnected};
        // The first connection is not news; a lost one is, once, however often attempts fail.
        assert_eq!(
            kinds(
                &reports,
                &[
                    (Connected, t0),
                    (Disconnected, t0 + s),
                    (Disconnected, t0 + 2 * s)
                ]
            ),
            ["NetworkError"]
        );
        let back = reports.judge(&Connected, t0 + 4 * s).expect("reported");
        assert_eq!(back.1, "ClusterReconnected");
        assert_eq!(back.2["outageSeconds"], 3.0);
        assert!(reports.judge(&Connected, t0 + 5 * s).is_none());
    }

    #[test]
    fn dropped_messages_are_reported_at_most_every_ten_seconds_with_the_count_held_back() {
        let reports = ConnectionReports::new(EventBus::in_memory("vigil"));
        let t0 = Instant::now();
        let slow = async_nats::Event::SlowConsumer(1);
        assert!(reports.judge(&slow, t0).is_some());
        assert!(reports.judge(&slow, t0 + Duration::from_secs(1)).is_none());
        assert!(reports.judge(&slow, t0 + Duration::from_secs(2)).is_none());
        let next = reports.judge(&slow, t0 + REPEAT_EVERY).expect("reported");
        assert_eq!(next.2["repeatsNotReported"], 2);
    }
}
