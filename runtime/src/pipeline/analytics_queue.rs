//! The queue from a pipeline's analysis thread (motion detection, inference answers, filter
//! decisions) to its core: bounded at [`ANALYTICS_QUEUE`] events. When the core cannot keep
//! up, what does not fit is dropped and counted, and the count is reported (`DataDropped`) as
//! soon as the core takes the next event, so memory never grows with a stalled core.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::bus::event::Event;

/// Most analysis events waiting for the core (at 30 fps, half a minute of one per frame).
pub const ANALYTICS_QUEUE: usize = 1024;

/// The analysis side; cloned for every producer.
#[derive(Clone)]
pub struct AnalyticsSender {
    tx: mpsc::Sender<(usize, Event)>,
    dropped: Arc<AtomicU64>,
}

impl AnalyticsSender {
    /// Queues `event` from output `port` of a node, or counts it dropped when the queue is full
    /// (or the pipeline is stopping).
    pub fn send(&self, port: usize, event: Event) {
        if self.tx.try_send((port, event)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The core's side.
pub struct AnalyticsReceiver {
    rx: mpsc::Receiver<(usize, Event)>,
    dropped: Arc<AtomicU64>,
}

impl AnalyticsReceiver {
    /// The next event; none once every sender is gone.
    pub async fn recv(&mut self) -> Option<(usize, Event)> {
        self.rx.recv().await
    }

    /// Events dropped since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

/// A bounded analytics queue.
pub fn analytics_queue() -> (AnalyticsSender, AnalyticsReceiver) {
    analytics_queue_of(ANALYTICS_QUEUE)
}

fn analytics_queue_of(capacity: usize) -> (AnalyticsSender, AnalyticsReceiver) {
    let (tx, rx) = mpsc::channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        AnalyticsSender {
            tx,
            dropped: dropped.clone(),
        },
        AnalyticsReceiver { rx, dropped },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::event::EventClass;
    use crate::media::time::MediaTime;

    fn event(n: i64) -> Event {
        Event::new(
            EventClass::Analytics,
            "Motion",
            "/x".to_string(),
            MediaTime::from_secs(n),
            serde_json::json!({}),
        )
    }

    #[tokio::test]
    async fn what_does_not_fit_is_counted_once() {
        let (tx, mut rx) = analytics_queue_of(2);
        for n in 0..5 {
            tx.send(0, event(n));
        }
        assert_eq!(rx.take_dropped(), 3);
        assert_eq!(rx.take_dropped(), 0, "reported once");
        let (_, first) = rx.recv().await.expect("queued");
        assert_eq!(first.time, MediaTime::from_secs(0), "the oldest are kept");
        assert!(rx.recv().await.is_some());
        drop(tx);
        assert!(rx.recv().await.is_none());
    }
}
