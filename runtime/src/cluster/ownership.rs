//! Which node records which pipeline. Every [`TICK`], a member:
//!
//! 1. writes its heartbeat (how many pipelines it records) to the node bucket (a node whose
//!    heartbeat has not changed for [`HEARTBEAT_STALE`] is not counted as live);
//! 2. renews each lease it holds once a third of the lease time has passed since the last
//!    write; a lease another node took is stopped at once (`LeaseLost`), one the cluster could
//!    not renew in time is stopped before it can expire at the server (`LeaseLapsed`; checked
//!    before each tick, and a tick waiting on an unreachable cluster is cut short at the
//!    earliest lease's deadline);
//! 3. stops and releases what is no longer desired (deactivated or deleted);
//! 4. takes free Active pipelines (the oldest name first) while it records fewer than its fair
//!    share, the Active pipelines divided by the live nodes, rounded up. Pipelines stay where
//!    they run when nodes join (no node gives one up to balance), and a dead node's are taken
//!    by the others as its leases expire.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::watch;

use super::Cluster;
use super::lease::{self, Lease, Lost};
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
    let mut held: BTreeMap<String, Lease> = BTreeMap::new();
    let mut liveness = Liveness::default();
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
        let work = tick(&service, &cluster, &mut held, &mut liveness);
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
    for (name, lease) in std::mem::take(&mut held) {
        service.stop_here(&name).await;
        release(service.as_ref(), &cluster, &lease, "this node is stopping").await;
    }
    // Gone: the others' fair shares no longer count this node.
    let _ = cluster.nodes.purge(cluster.node.as_str()).await;
}

async fn tick(
    service: &Service,
    cluster: &Cluster,
    held: &mut BTreeMap<String, Lease>,
    liveness: &mut Liveness,
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

    let heartbeat = json!({"pipelines": held.len()}).to_string();
    let _ = cluster
        .nodes
        .put(cluster.node.as_str(), Bytes::from(heartbeat))
        .await;

    // Renewals due, all at once (a cut-off node's time-outs do not add up).
    let due: Vec<Lease> = held
        .values()
        .filter(|l| l.written_at.elapsed() >= ttl / 3)
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

    let share = fair_share(desired.len(), liveness.live_nodes(cluster).await);
    for name in desired {
        if held.len() >= share {
            break;
        }
        if held.contains_key(&name) {
            continue;
        }
        match lease::acquire(&cluster.leases, &name, &cluster.node).await {
            Ok(Some(lease)) => match tokio::task::block_in_place(|| service.run_here(&name)) {
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
            },
            Ok(None) => {}
            Err(_) => break, // the cluster is unreachable: take nothing now
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

/// How many pipelines one of `nodes` live nodes records at most while others have fewer.
pub fn fair_share(active: usize, nodes: usize) -> usize {
    active.div_ceil(nodes.max(1))
}

/// When each node's heartbeat was last seen to change, on this node's clock (no comparison of
/// clocks between hosts).
#[derive(Default)]
struct Liveness {
    seen: BTreeMap<String, (u64, Instant)>,
}

impl Liveness {
    /// The nodes whose heartbeat changed within [`HEARTBEAT_STALE`] (at least this one): a
    /// node that died stops counting well before its leases expire, so the others' fair share
    /// already covers its pipelines when they come free.
    async fn live_nodes(&mut self, cluster: &Cluster) -> usize {
        let Ok(keys) = cluster.nodes.keys().await else {
            return 1;
        };
        let keys: Vec<String> = keys.filter_map(|k| async move { k.ok() }).collect().await;
        let now = Instant::now();
        let mut live = 0;
        for key in keys {
            let Ok(Some(entry)) = cluster.nodes.entry(key.clone()).await else {
                continue;
            };
            let seen = self
                .seen
                .entry(key.clone())
                .or_insert((entry.revision, now));
            if seen.0 != entry.revision {
                *seen = (entry.revision, now);
            }
            if key == cluster.node || now.duration_since(seen.1) < HEARTBEAT_STALE {
                live += 1;
            }
        }
        live.max(1)
    }
}

/// A heartbeat older than this (four ticks) no longer counts its node as live.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(2);

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
    service.context().bus.for_pipeline(name).emit(Event::new(
        EventClass::Operational,
        kind,
        format!("/livePipelines/{name}"),
        wall_now(),
        body,
    ));
}

/// Applies the desired state's changes to the registry, from what it holds now on; after a
/// lost watch (the cluster unreachable), starts again from the current state.
async fn follow_desired(service: Arc<Service>, cluster: Arc<Cluster>) {
    loop {
        match super::desired::watch(&cluster.desired).await {
            Ok(mut changes) => {
                while let Some(change) = changes.next().await {
                    match change {
                        // The registry's lock may be held by a control call waiting for
                        // the cluster: wait for it off the runtime's workers.
                        Ok((revision, change)) => {
                            tokio::task::block_in_place(|| service.apply_desired(change));
                            cluster
                                .applied
                                .fetch_max(revision, std::sync::atomic::Ordering::Release);
                        }
                        Err(_) => break,
                    }
                }
            }
            Err(e) => tracing::warn!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
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
