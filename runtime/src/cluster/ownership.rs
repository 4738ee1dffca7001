//! Which node records which pipeline. Every [`TICK`], a member:
//!
//! 1. writes its heartbeat (how many pipelines it records, its capacity) to the node bucket
//!    (which nodes are live is watched in [`super::liveness`]);
//! 2. renews each lease it holds once [`lease::renewal_period`] has passed since the last
//!    write; a lease another node took is stopped at once (`LeaseLost`), one the cluster could
//!    not renew in time is stopped before it can expire at the server (`LeaseLapsed`; checked
//!    before each tick, and a tick waiting on an unreachable cluster is cut short at the
//!    earliest lease's deadline);
//! 3. stops and releases what is no longer desired (deactivated or deleted);
//! 4. takes free Active pipelines (the oldest name first, each confirmed by a second write
//!    [`lease::CONFIRM_AFTER`] later before it starts) while it records fewer than its fair
//!    share: the Active pipelines times its capacity divided by the live nodes' capacities,
//!    rounded up, and never more than its capacity (equal capacities: the pipelines divided by
//!    the nodes). Pipelines stay where they run when nodes join (no node gives one up to
//!    balance), and a dead node's are taken by the others as its leases expire.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use super::Cluster;
use super::lease::{self, Lease, Lost};
use super::liveness::{self, Liveness};
use crate::bus::event::{Event, EventClass};
use crate::nodes::rtsp_source::wall_now;
use crate::service::Service;

/// How often a member looks at its leases and the free pipelines.
pub const TICK: Duration = Duration::from_millis(250);

/// How long a deactivation waits for the recording node to stop and release.
pub const RELEASE_WAIT: Duration = Duration::from_secs(60);

/// Keeps the service's registry in step with the desired state, and its pipelines with its
/// leases, until `shutdown`; then stops its pipelines and releases their leases.
pub async fn run(
    service: Arc<Service>,
    cluster: Arc<Cluster>,
    mut shutdown: watch::Receiver<bool>,
) {
    let follower = tokio::spawn(follow_desired(service.clone(), cluster.clone()));
    let liveness = cluster.liveness.clone();
    let heartbeats = tokio::spawn(liveness::follow(cluster.clone(), liveness.clone()));
    let mut held: BTreeMap<String, Lease> = BTreeMap::new();
    let mut unplaced = BTreeSet::new();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        // A tick waits on the cluster (each request up to a second when it is unreachable);
        // it is cut short when a lease's own deadline comes, so that the next tick stops that
        // pipeline in time.
        stop_lapsed(&service, &cluster, &mut held).await;
        let deadline = held
            .values()
            .map(|l| lease::deadline(l, cluster.lease_ttl))
            .min();
        let work = tick(&service, &cluster, &mut held, &liveness, &mut unplaced);
        match deadline {
            Some(at) => {
                tokio::select! {
                    biased;
                    _ = work => {}
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => work.await,
        }
    }
    follower.abort();
    heartbeats.abort();
    // Stopping: still live (the others do not hold the triggers of what it still records), but
    // no longer counted in their fair shares, so each pipeline released below is taken at once
    // rather than after the last one is stopped.
    let stopping = tokio::spawn(heartbeat_while_stopping(cluster.clone(), held.len()));
    for (name, lease) in std::mem::take(&mut held) {
        service.stop_here(&name).await;
        release(service.as_ref(), &cluster, &lease, "this node is stopping").await;
    }
    stopping.abort();
    // Gone.
    let _ = cluster.nodes.purge(cluster.node.as_str()).await;
}

/// Writes this node's heartbeat as stopping (see [`liveness`]) every [`TICK`] until aborted.
async fn heartbeat_while_stopping(cluster: Arc<Cluster>, pipelines: usize) {
    let heartbeat = liveness::heartbeat(pipelines, cluster.capacity, true);
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        let _ = cluster
            .nodes
            .put(cluster.node.as_str(), heartbeat.clone())
            .await;
    }
}

async fn tick(
    service: &Service,
    cluster: &Cluster,
    held: &mut BTreeMap<String, Lease>,
    liveness: &Liveness,
    unplaced: &mut BTreeSet<String>,
) {
    let ttl = cluster.lease_ttl;
    // As below: the registry's lock is taken off the runtime's workers (a control call may
    // hold it while it waits for the cluster).
    let mut desired = tokio::task::block_in_place(|| service.desired_active());
    desired.sort();
    let undesired: Vec<String> = held
        .keys()
        .filter(|n| !desired.contains(n))
        .cloned()
        .collect();
    for name in undesired {
        if let Some(lease) = held.remove(&name) {
            service.stop_here(&name).await;
            release(service, cluster, &lease, "the pipeline is no longer Active").await;
        }
    }

    let heartbeat = liveness::heartbeat(held.len(), cluster.capacity, false);
    let epoch = liveness.epoch();
    if let Ok(revision) = cluster.nodes.put(cluster.node.as_str(), heartbeat).await {
        liveness.acknowledged(revision, epoch, Instant::now());
    }

    // Renewals due, all at once (a cut-off node's time-outs do not add up).
    let due: Vec<Lease> = held
        .values()
        .filter(|l| l.written_at.elapsed() >= lease::renewal_period(ttl))
        .cloned()
        .collect();
    let renewals = due.into_iter().map(|mut lease| async move {
        let outcome = lease::renew(&cluster.leases, &mut lease, &cluster.node, ttl).await;
        (lease, outcome)
    });
    for (lease, outcome) in futures::future::join_all(renewals).await {
        match outcome {
            Ok(()) => {
                held.insert(lease.pipeline.clone(), lease);
            }
            Err(lost) => {
                // Stop first: from here on another node may record it.
                held.remove(&lease.pipeline);
                service.stop_here(&lease.pipeline).await;
                report(service, &lease.pipeline, &lost);
            }
        }
    }

    // Not placing while this node's own heartbeats do not come back (cut off from the
    // cluster, or the watch started again), rather than computing a share as if alone.
    let Some(total) =
        liveness.live_capacity(&cluster.node, u64::from(cluster.capacity), Instant::now())
    else {
        tracing::debug!(
            ?liveness,
            "no placement: this node's heartbeat view is not trusted"
        );
        return;
    };
    let share = fair_share(desired.len(), cluster.capacity, total);
    tracing::debug!(
        active = desired.len(),
        held = held.len(),
        total,
        share,
        "placement"
    );
    let mut taken = Vec::new();
    for name in &desired {
        if held.len() + taken.len() >= share {
            break;
        }
        if held.contains_key(name) {
            continue;
        }
        match lease::acquire(&cluster.leases, name, &cluster.node).await {
            Ok(Some(lease)) => taken.push(lease),
            Ok(None) => {}
            Err(e) => {
                // The cluster is unreachable: take nothing now.
                tracing::debug!(pipeline = %name, "lease not taken: {e}");
                break;
            }
        }
    }
    if !taken.is_empty() {
        // Started only once confirmed: a create racing another node's may have been accepted
        // beside it (see lease::confirm).
        tokio::time::sleep(lease::CONFIRM_AFTER).await;
        let confirmations = taken.into_iter().map(|mut lease| async move {
            let mine = lease::confirm(&cluster.leases, &mut lease, &cluster.node).await;
            (lease, mine)
        });
        for (lease, mine) in futures::future::join_all(confirmations).await {
            if mine {
                start(service, cluster, held, lease).await;
            }
        }
    }
    report_unplaced(service, cluster, held, &desired, unplaced).await;
}

/// Starts the pipeline of a confirmed `lease` here (`LeaseAcquired`), or gives the lease back
/// when it cannot run here (`LeaseRefused`).
async fn start(
    service: &Service,
    cluster: &Cluster,
    held: &mut BTreeMap<String, Lease>,
    lease: Lease,
) {
    let name = lease.pipeline.clone();
    match tokio::task::block_in_place(|| service.run_here(&name)) {
        Ok(()) => {
            emit(
                service,
                &name,
                "LeaseAcquired",
                json!({"node": cluster.node, "revision": lease.revision}),
            );
            held.insert(name, lease);
        }
        Err(reason) => {
            lease::release(&cluster.leases, &lease).await;
            emit(
                service,
                &name,
                "LeaseRefused",
                json!({"node": cluster.node, "detail": reason}),
            );
        }
    }
}

/// Once this node is full (it records its capacity), reports each Active pipeline that nobody
/// records (`PipelineUnplaced`, once per pipeline until it is no longer Active): the live
/// nodes' capacities are all taken, and it waits for room. One lease lookup per pipeline not
/// yet reported.
async fn report_unplaced(
    service: &Service,
    cluster: &Cluster,
    held: &BTreeMap<String, Lease>,
    desired: &[String],
    unplaced: &mut BTreeSet<String>,
) {
    unplaced.retain(|n| desired.contains(n) && !held.contains_key(n));
    if held.len() < cluster.capacity as usize {
        return;
    }
    for name in desired {
        if held.contains_key(name) || unplaced.contains(name) {
            continue;
        }
        if let Ok(None) = lease::holder_checked(&cluster.leases, name).await {
            unplaced.insert(name.clone());
            emit_diagnostic(
                service,
                name,
                "PipelineUnplaced",
                json!({"node": cluster.node, "capacity": cluster.capacity,
                       "detail": "Active, but no live node has room for it (every one records its --capacity); it starts when one has"}),
            );
        }
    }
}

/// Stops the pipelines whose leases may have expired at the server by now (their renewals
/// failed), without asking the cluster anything: another node may start them any moment.
async fn stop_lapsed(service: &Service, cluster: &Cluster, held: &mut BTreeMap<String, Lease>) {
    let lapsed: Vec<String> = held
        .iter()
        .filter(|(_, l)| lease::expired(l, cluster.lease_ttl))
        .map(|(n, _)| n.clone())
        .collect();
    for name in lapsed {
        held.remove(&name);
        service.stop_here(&name).await;
        report(service, &name, &Lost::Lapsed);
    }
}

/// How many pipelines a node of capacity `mine` records at most while others have fewer, with
/// `active` Active pipelines and `total` the live nodes' capacities (this node's included).
pub fn fair_share(active: usize, mine: u32, total: u64) -> usize {
    let mine = u64::from(mine.max(1));
    let weighted = (active as u64 * mine).div_ceil(total.max(mine));
    weighted.min(mine) as usize
}

/// Gives `lease` up after its pipeline stopped here (`LeaseReleased`, saying why).
async fn release(service: &Service, cluster: &Cluster, lease: &Lease, why: &str) {
    lease::release(&cluster.leases, lease).await;
    emit(
        service,
        &lease.pipeline,
        "LeaseReleased",
        json!({"node": cluster.node, "detail": why}),
    );
}

fn report(service: &Service, name: &str, lost: &Lost) {
    let kind = match lost {
        Lost::Taken(_) => "LeaseLost",
        Lost::Lapsed => "LeaseLapsed",
    };
    emit(service, name, kind, json!({"detail": lost.to_string()}));
}

fn emit(service: &Service, name: &str, kind: &str, body: serde_json::Value) {
    emit_as(service, name, EventClass::Operational, kind, body);
}

fn emit_diagnostic(service: &Service, name: &str, kind: &str, body: serde_json::Value) {
    emit_as(service, name, EventClass::Diagnostics, kind, body);
}

fn emit_as(service: &Service, name: &str, class: EventClass, kind: &str, body: serde_json::Value) {
    service.context().bus.for_pipeline(name).emit(Event::new(
        class,
        kind,
        format!("/livePipelines/{name}"),
        wall_now(),
        body,
    ));
}

/// How often the watch of the desired state is checked against the stream.
const WATCH_CHECK: Duration = Duration::from_secs(3);

/// Applies the desired state's changes to the registry, from what it holds now on; after a
/// lost watch (the cluster unreachable), starts again from the current state. A watch can also
/// stall without an error (its consumer gone after the connection was reset): every
/// [`WATCH_CHECK`] the stream's last revision is compared with what was applied, and a watch
/// that stays behind for two checks in a row without delivering anything is started again, and
/// so is one a call waited for in vain ([`super::Cluster::catch_up`]), at once.
async fn follow_desired(service: Arc<Service>, cluster: Arc<Cluster>) {
    // Until when a call waits for the watch started again at its request: meanwhile a failed
    // start (the cluster still electing a leader) is tried again at once, not a second later.
    let mut hurry_until: Option<tokio::time::Instant> = None;
    loop {
        let mut asked = false;
        match super::desired::watch(&cluster.desired).await {
            Ok(mut changes) => {
                hurry_until = None;
                let mut check = tokio::time::interval(WATCH_CHECK);
                check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut stall = StallCheck::default();
                loop {
                    tokio::select! {
                        change = changes.next() => match change {
                            // The registry's lock may be held by a control call waiting for
                            // the cluster: wait for it off the runtime's workers.
                            Some(Ok((revision, change))) => {
                                tracing::debug!(revision, ?change, "desired state change");
                                tokio::task::block_in_place(|| service.apply_desired(change));
                                cluster
                                    .applied
                                    .fetch_max(revision, std::sync::atomic::Ordering::Release);
                            }
                            _ => break,
                        },
                        _ = cluster.rewatch.notified() => {
                            // Asked by a call that waited in vain (see Cluster::catch_up).
                            let applied = cluster.applied.load(std::sync::atomic::Ordering::Acquire);
                            if let Ok(last) = super::desired::last_revision(&cluster.desired).await
                                && applied < last
                            {
                                super::reports::watch_restarted(
                                    &cluster.events,
                                    "desiredState",
                                    &format!(
                                        "a control call found the watch of the desired state at \
                                         revision {applied}, the cluster at {last}, and nothing \
                                         delivered for {:?}: watching again",
                                        super::REWATCH_AFTER
                                    ),
                                );
                                asked = true;
                                break;
                            }
                        }
                        _ = check.tick() => {
                            let applied = cluster.applied.load(std::sync::atomic::Ordering::Acquire);
                            let Ok(last) = super::desired::last_revision(&cluster.desired).await
                            else {
                                continue;
                            };
                            if stall.stalled(applied, last) {
                                super::reports::watch_restarted(
                                    &cluster.events,
                                    "desiredState",
                                    &format!(
                                        "the watch of the desired state delivered nothing up to \
                                         revision {last} (applied {applied}): watching again"
                                    ),
                                );
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("{e:#}"),
        }
        if asked {
            hurry_until = Some(tokio::time::Instant::now() + super::CATCH_UP_WAIT);
        }
        let hurry = hurry_until.is_some_and(|until| tokio::time::Instant::now() < until);
        if !asked {
            let pause = if hurry {
                REWATCH_RETRY
            } else {
                Duration::from_secs(1)
            };
            tokio::time::sleep(pause).await;
        }
    }
}

/// The pause before trying again to start a watch a call is waiting for.
const REWATCH_RETRY: Duration = Duration::from_millis(100);

/// Tells a watch that stopped delivering from one that is merely behind: stalled when, at two
/// checks in a row, the stream holds revisions past what was applied and nothing was applied
/// in between.
#[derive(Debug, Default)]
struct StallCheck {
    /// What was applied at the last check, when it was behind the stream then.
    behind_at: Option<u64>,
}

impl StallCheck {
    /// Takes one check's figures; true when the watch should be started again.
    fn stalled(&mut self, applied: u64, last: u64) -> bool {
        if applied >= last {
            self.behind_at = None;
            return false;
        }
        let stalled = self.behind_at == Some(applied);
        self.behind_at = if stalled { None } else { Some(applied) };
        stalled
    }
}

/// Waits until nobody holds `pipeline`'s lease (its recording node stopped it), up to
/// [`RELEASE_WAIT`]; false on time-out.
pub async fn wait_released(cluster: &Cluster, pipeline: &str) -> bool {
    let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
    while tokio::time::Instant::now() < deadline {
        if lease::holder(&cluster.leases, pipeline).await.is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{StallCheck, fair_share};

    #[test]
    fn a_watch_is_stalled_only_when_behind_twice_without_progress() {
        let mut check = StallCheck::default();
        // Up to date: never stalled.
        assert!(!check.stalled(10, 10));
        assert!(!check.stalled(10, 10));
        // Behind once: maybe a change in flight.
        assert!(!check.stalled(10, 12));
        // Progress since, still behind: not stalled, but remembered.
        assert!(!check.stalled(11, 12));
        // No progress since the last check: stalled.
        assert!(check.stalled(11, 12));
        // After a new watch, counting starts again.
        assert!(!check.stalled(11, 12));
        assert!(!check.stalled(12, 12));
        assert!(!check.stalled(12, 13));
        assert!(check.stalled(12, 14));
    }

    #[test]
    fn equal_nodes_share_evenly_and_a_bigger_one_takes_more() {
        // Three nodes of 100: 12 pipelines, 4 each; 13, at most 5.
        assert_eq!(fair_share(12, 100, 300), 4);
        assert_eq!(fair_share(13, 100, 300), 5);
        // Alone: everything, up to its capacity.
        assert_eq!(fair_share(12, 100, 100), 12);
        assert_eq!(fair_share(120, 100, 100), 100);
        // Capacities 20 and 10: about two thirds and one third.
        assert_eq!(fair_share(12, 20, 30), 8);
        assert_eq!(fair_share(12, 10, 30), 4);
        // A node of capacity 1 never takes more than 1.
        assert_eq!(fair_share(3, 1, 101), 1);
        assert_eq!(fair_share(0, 100, 300), 0);
    }
}
