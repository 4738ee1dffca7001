//! Which nodes are live, from a watch of the heartbeat bucket: every node writes its heartbeat
//! each [`super::ownership::TICK`], the watch delivers each write here as it happens, and a
//! node whose heartbeat has not been delivered for [`HEARTBEAT_STALE`] no longer counts. A
//! node that is stopping writes `"stopping": true` while it stops its pipelines (live, but its
//! capacity no longer counted), then purges its key, which counts it out at once.
//!
//! Placement reads the view without asking the cluster anything, so a slow or unreachable
//! cluster never holds up a tick (the lease renewals that share it). The view is trusted only
//! while the watch delivers this node's own heartbeats: a node whose own has not come back
//! within [`HEARTBEAT_STALE`] (cut off, or its watch stalled) places nothing, and a watch that
//! has not delivered a heartbeat the cluster acknowledged [`DELIVERY_WAIT`] ago is started
//! again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures::StreamExt;

use super::Cluster;

/// A heartbeat not delivered again within this (eight ticks) no longer counts its node as live.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(2);

/// How long the watch may take to deliver a heartbeat of this node's that the cluster
/// acknowledged, before it is taken for stalled and started again.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(1);

/// A node not heard of for this long is forgotten (its heartbeat long expired).
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// How often the watch is checked for stalls and old entries.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The live nodes as the heartbeat watch shows them, shared by the watch and the ticks.
#[derive(Debug, Default)]
pub struct Liveness {
    view: Mutex<View>,
}

/// What the watch delivered, on this node's clock (no comparison of clocks between hosts).
#[derive(Debug, Default)]
struct View {
    /// Each node's last heartbeat: its revision, when it was delivered, the capacity it gave.
    nodes: BTreeMap<String, Seen>,
    /// When this node's own heartbeat was last delivered.
    own_delivered: Option<Instant>,
    /// The highest revision of this node's own heartbeat delivered.
    own_revision: u64,
    /// The oldest acknowledged write of this node's heartbeat not delivered yet: its revision
    /// and when it was acknowledged.
    own_pending: Option<(u64, Instant)>,
    /// Counts the watches started; a heartbeat sent while this is the current one was written
    /// after that watch's consumer existed.
    epoch: u64,
    /// The revision of the first heartbeat sent during the current watch: the watch delivers it
    /// after the bucket's whole history (the others' last heartbeats, some newer than any of
    /// this node's in it, and an older one of this node's, a process before with the same id),
    /// so its delivery makes the view trusted. (The watch's own "caught up" count is not relied
    /// on: with it, a restarted node under load stayed untrusted for over 14 s, its own
    /// heartbeats delivered, which only a replay never reported done explains.)
    own_first: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    revision: u64,
    at: Instant,
    capacity: u64,
}

impl Seen {
    /// Whether its node counts as live at `now`.
    fn fresh(&self, now: Instant) -> bool {
        now.duration_since(self.at) < HEARTBEAT_STALE
    }
}

impl View {
    /// Whether the view can be trusted at `now`: this node's own heartbeat came back within
    /// [`HEARTBEAT_STALE`].
    fn trusted(&self, now: Instant) -> bool {
        self.own_delivered
            .is_some_and(|at| now.duration_since(at) < HEARTBEAT_STALE)
    }
}

impl Liveness {
    /// The current watch, to give back with [`Liveness::acknowledged`] (read before a heartbeat
    /// is sent).
    pub fn epoch(&self) -> u64 {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .epoch
    }

    /// Records that the cluster acknowledged, as `revision` at `now`, this node's heartbeat sent
    /// while watch `epoch` was the current one.
    pub fn acknowledged(&self, revision: u64, epoch: u64, now: Instant) {
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        if epoch == view.epoch && epoch > 0 {
            view.own_first.get_or_insert(revision);
        }
        if revision > view.own_revision && view.own_pending.is_none() {
            view.own_pending = Some((revision, now));
        }
    }

    /// The capacities of the live nodes, summed (`mine` for this one, `own` its key); None
    /// while the view is not trusted (this node's own heartbeat not delivered within
    /// [`HEARTBEAT_STALE`]).
    pub fn live_capacity(&self, own: &str, mine: u64, now: Instant) -> Option<u64> {
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        if !view.trusted(now) {
            return None;
        }
        let others: u64 = view
            .nodes
            .iter()
            .filter(|(key, seen)| key.as_str() != own && seen.fresh(now))
            .map(|(_, seen)| seen.capacity)
            .sum();
        Some(others + mine)
    }

    /// Whether node `node`'s heartbeat was delivered within [`HEARTBEAT_STALE`] before `now`;
    /// None while the view is not trusted (see [`Liveness::live_capacity`]).
    pub fn is_live(&self, node: &str, now: Instant) -> Option<bool> {
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        view.trusted(now)
            .then(|| view.nodes.get(node).is_some_and(|seen| seen.fresh(now)))
    }

    /// A new watch's consumer exists: what the last one left undelivered is judged afresh, and
    /// the view is trusted again only once this one has delivered a heartbeat sent after now.
    fn watch_started(&self) {
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        view.epoch += 1;
        view.own_first = None;
        view.own_pending = None;
        view.own_delivered = None;
    }

    /// Takes one entry the watch delivered at `now` (`heartbeat`: the capacity a put gives, none
    /// for a purge).
    fn deliver(&self, own: &str, key: String, revision: u64, heartbeat: Option<u64>, now: Instant) {
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        if key == own {
            if view.own_first.is_some_and(|first| revision >= first) {
                view.own_delivered = Some(now);
            }
            view.own_revision = view.own_revision.max(revision);
            if view.own_pending.is_some_and(|(r, _)| r <= revision) {
                view.own_pending = None;
            }
        }
        let Some(capacity) = heartbeat else {
            // Purged: the node stopped.
            view.nodes.remove(&key);
            return;
        };
        // Delivered again by a new watch (the same revision): not a sign of life.
        if view.nodes.get(&key).is_some_and(|s| s.revision >= revision) {
            return;
        }
        view.nodes.insert(
            key,
            Seen {
                revision,
                at: now,
                capacity,
            },
        );
    }

    /// Whether the watch has left an acknowledged heartbeat of this node's undelivered for
    /// [`DELIVERY_WAIT`]; forgets nodes not heard of for a minute.
    fn stalled(&self, now: Instant) -> bool {
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        view.nodes
            .retain(|_, seen| now.duration_since(seen.at) < FORGET_AFTER);
        let stalled = view
            .own_pending
            .is_some_and(|(_, at)| now.duration_since(at) >= DELIVERY_WAIT);
        if stalled {
            view.own_pending = None;
        }
        stalled
    }
}

/// The heartbeat a node writes: how many pipelines it records, its capacity, and whether it is
/// stopping (see [`capacity_of`], which reads it).
pub fn heartbeat(pipelines: usize, capacity: u32, stopping: bool) -> bytes::Bytes {
    let mut value = serde_json::json!({"pipelines": pipelines, "capacity": capacity});
    if stopping {
        value["stopping"] = true.into();
    }
    bytes::Bytes::from(value.to_string())
}

/// The capacity a heartbeat's value gives (the default for an older node's, which has none):
/// none (0) from a node that is stopping, which is live but takes nothing more.
fn capacity_of(value: &[u8]) -> u64 {
    let heartbeat = serde_json::from_slice::<serde_json::Value>(value).ok();
    if heartbeat
        .as_ref()
        .is_some_and(|v| v["stopping"].as_bool() == Some(true))
    {
        return 0;
    }
    heartbeat
        .and_then(|v| v["capacity"].as_u64())
        .unwrap_or(u64::from(super::DEFAULT_CAPACITY))
        .clamp(1, 1000)
}

/// Watches the heartbeat bucket for as long as the node runs, keeping `liveness` up to date;
/// a watch that ends, fails to start or stalls is started again.
pub async fn follow(cluster: Arc<Cluster>, liveness: Arc<Liveness>) {
    let own = cluster.node.clone();
    loop {
        match cluster.nodes.watch_with_history(">").await {
            Ok(mut entries) => {
                tracing::debug!("watching the heartbeats");
                liveness.watch_started();
                let first_check = tokio::time::Instant::now() + CHECK_EVERY;
                let mut check = tokio::time::interval_at(first_check, CHECK_EVERY);
                check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        entry = entries.next() => match entry {
                            Some(Ok(entry)) => {
                                let heartbeat = (entry.operation == kv::Operation::Put)
                                    .then(|| capacity_of(&entry.value));
                                liveness.deliver(
                                    &own,
                                    entry.key,
                                    entry.revision,
                                    heartbeat,
                                    Instant::now(),
                                );
                            }
                            Some(Err(e)) => {
                                tracing::warn!("the watch of the cluster's heartbeats failed: {e}");
                                break;
                            }
                            None => break,
                        },
                        _ = check.tick() => {
                            if liveness.stalled(Instant::now()) {
                                super::reports::watch_restarted(
                                    &cluster.events,
                                    "heartbeats",
                                    &format!(
                                        "the watch of the cluster's heartbeats has not delivered \
                                         this node's own for {DELIVERY_WAIT:?}: watching again"
                                    ),
                                );
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("cannot watch the cluster's heartbeats: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{DELIVERY_WAIT, HEARTBEAT_STALE, Liveness, capacity_of, heartbeat};
    use std::time::{Duration, Instant};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_is_counted_until_a_heartbeat_sent_during_the_watch_comes_back() {
        let live = Liveness::default();
        let t0 = Instant::now();
        // Sent before any watch: it may be in the history, before others' newer heartbeats.
        live.acknowledged(1, live.epoch(), t0);
        live.watch_started();
        live.deliver("a", "a".into(), 1, Some(100), t0);
        live.deliver("a", "b".into(), 2, Some(100), t0);
        assert_eq!(live.live_capacity("a", 100, t0), None);
        // Sent while the watch runs: delivered after the whole history.
        let epoch = live.epoch();
        live.acknowledged(3, epoch, t0);
        live.deliver("a", "a".into(), 3, Some(100), t0);
        assert_eq!(live.live_capacity("a", 100, t0), Some(200));
        // Not delivered again: the view is no longer trusted.
        assert_eq!(live.live_capacity("a", 100, t0 + HEARTBEAT_STALE), None);
        // A new watch: not trusted until one sent during it comes back.
        live.watch_started();
        assert_eq!(live.live_capacity("a", 100, t0), None);
        live.acknowledged(4, epoch, t0);
        live.deliver("a", "a".into(), 4, Some(100), t0);
        assert_eq!(
            live.live_capacity("a", 100, t0),
            None,
            "sent during the old watch"
        );
    }

    #[test]
    fn a_node_counts_while_its_heartbeat_changes_and_not_after_a_purge() {
        let live = Liveness::default();
        let t0 = Instant::now();
        live.deliver("a", "b".into(), 1, Some(10), t0);
        live.deliver("a", "c".into(), 2, Some(20), t0);
        let at = t0 + HEARTBEAT_STALE - MS;
        live.watch_started();
        live.acknowledged(3, live.epoch(), at);
        live.deliver("a", "a".into(), 3, Some(100), at);
        live.deliver("a", "b".into(), 4, Some(10), at);
        // c went silent, b wrote again.
        let later = t0 + HEARTBEAT_STALE;
        assert_eq!(live.live_capacity("a", 100, later), Some(110));
        // The same revision delivered by a new watch is not a sign of life.
        live.deliver("a", "c".into(), 2, Some(20), later);
        assert_eq!(live.live_capacity("a", 100, later), Some(110));
        // b stopped and purged its key: out at once.
        live.deliver("a", "b".into(), 5, None, later);
        assert_eq!(live.live_capacity("a", 100, later), Some(100));
    }

    #[test]
    fn a_watch_that_keeps_an_acknowledged_heartbeat_back_is_stalled() {
        let live = Liveness::default();
        let t0 = Instant::now();
        live.acknowledged(7, 0, t0);
        assert!(!live.stalled(t0 + DELIVERY_WAIT - MS));
        live.deliver("a", "a".into(), 7, Some(1), t0 + DELIVERY_WAIT - MS);
        assert!(!live.stalled(t0 + DELIVERY_WAIT));
        live.acknowledged(8, 0, t0 + DELIVERY_WAIT);
        // Later writes do not move the oldest undelivered one.
        live.acknowledged(9, 0, t0 + DELIVERY_WAIT + 500 * MS);
        assert!(live.stalled(t0 + 2 * DELIVERY_WAIT));
        // Reported once; the next watch is judged afresh.
        assert!(!live.stalled(t0 + 2 * DELIVERY_WAIT));
    }

    #[test]
    fn a_heartbeat_without_a_capacity_counts_the_default() {
        assert_eq!(capacity_of(br#"{"pipelines":1,"capacity":3}"#), 3);
        assert_eq!(
            capacity_of(br#"{"pipelines":1}"#),
            u64::from(super::super::DEFAULT_CAPACITY)
        );
        assert_eq!(
            capacity_of(b"not json"),
            u64::from(super::super::DEFAULT_CAPACITY)
        );
        assert_eq!(capacity_of(br#"{"capacity":0}"#), 1);
        assert_eq!(capacity_of(br#"{"capacity":3,"stopping":true}"#), 0);
        assert_eq!(capacity_of(&heartbeat(2, 3, false)), 3);
        assert_eq!(capacity_of(&heartbeat(2, 3, true)), 0);
    }
}
