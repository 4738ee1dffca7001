//! Leases on pipelines: who records an Active pipeline. A lease is a key of the lease bucket
//! holding the owner's id; the bucket drops it `lease_ttl` after its last write. Taking one is
//! a create (refused while someone holds it); keeping it is an update that names the revision
//! this node last wrote (refused once anyone else wrote since: the revision is the fencing
//! token). So two nodes can both believe they hold a pipeline only between the moment the
//! first node's lease expired at the server and that node's own deadline, which it counts from
//! its last successful renewal with a safety margin: it stops first.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;

/// A lease this node holds.
#[derive(Clone, Debug)]
pub struct Lease {
    /// The pipeline.
    pub pipeline: String,
    /// The revision of this node's last write: the fencing token.
    pub revision: u64,
    /// When that write was sent (the lease runs from there, on the server's clock or later).
    pub written_at: Instant,
}

/// Why a lease ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    /// Another node wrote the key since (it expired here and was taken).
    #[error("another node holds it now (the lease bucket refused revision {0})")]
    Taken(u64),
    /// The cluster could not be reached for longer than the lease allows.
    #[error("the cluster was unreachable until the lease would have expired")]
    Lapsed,
}

/// The key of `pipeline`'s lease.
pub fn key(pipeline: &str) -> String {
    format!("pipeline.{pipeline}")
}

/// Safety margin kept between a node's own deadline and the lease's expiry at the server.
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 5).max(Duration::from_millis(500))
}

/// Takes `pipeline` for `node` if nobody holds it. `Ok(None)`: someone does.
pub async fn acquire(
    leases: &kv::Store,
    pipeline: &str,
    node: &str,
) -> Result<Option<Lease>, kv::CreateError> {
    let written_at = Instant::now();
    match leases
        .create(key(pipeline), Bytes::from(node.to_string()))
        .await
    {
        Ok(revision) => Ok(Some(Lease {
            pipeline: pipeline.to_string(),
            revision,
            written_at,
        })),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `lease` again, a moment after it was taken, and says whether it is still this
/// node's. On Debian's nats-server 2.9 with three replicas, two nodes' creates of one freed key
/// were both accepted (revisions 84 and 85, 3 ms apart): a create checks the key against what
/// the stream has applied, not against writes still in flight. A second, revision-checked
/// write made once those have landed fails for all but the last of them, so a node starts
/// a pipeline only after it.
pub async fn confirm(leases: &kv::Store, lease: &mut Lease, node: &str) -> bool {
    rewrite(leases, lease, node).await.is_ok()
}

/// Writes `lease` again, naming the revision this node last wrote (refused if anyone wrote
/// since); on success the lease's revision and write time are the new ones.
async fn rewrite(leases: &kv::Store, lease: &mut Lease, node: &str) -> Result<(), kv::UpdateError> {
    let written_at = Instant::now();
    let revision = leases
        .update(
            key(&lease.pipeline),
            Bytes::from(node.to_string()),
            lease.revision,
        )
        .await?;
    lease.revision = revision;
    lease.written_at = written_at;
    Ok(())
}

/// How long after taking a lease a node confirms it ([`confirm`]).
pub const CONFIRM_AFTER: Duration = Duration::from_millis(200);

/// Renews `lease`. `Err(Taken)` when another node wrote since; `Err(Lapsed)` when the cluster
/// could not be reached and the lease's own deadline (ttl minus [`margin`]) has passed; `Ok`
/// with the lease unchanged when the renewal failed but time remains.
pub async fn renew(
    leases: &kv::Store,
    lease: &mut Lease,
    node: &str,
    ttl: Duration,
) -> Result<(), Lost> {
    match rewrite(leases, lease, node).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
            Err(Lost::Taken(lease.revision))
        }
        Err(_) if expired(lease, ttl) => Err(Lost::Lapsed),
        Err(_) => Ok(()),
    }
}

/// How long a holder waits after a write before it renews: a third of the lease time, at most
/// [`MAX_RENEWAL_PERIOD`]. What a lease survives of a cluster that cannot write (a NATS
/// server lost and its Raft group electing a new leader, 4–9 s in nats-server) is the lease
/// time less the margin less this period, at worst: 10 s with `--lease-ttl 15`, 6 s with 10.
pub fn renewal_period(ttl: Duration) -> Duration {
    (ttl / 3).min(MAX_RENEWAL_PERIOD)
}

/// The longest wait between renewals, whatever the lease time.
pub const MAX_RENEWAL_PERIOD: Duration = Duration::from_secs(2);

/// When this node must have stopped `lease`'s pipeline: the lease time after its last write,
/// less the safety margin.
pub fn deadline(lease: &Lease, ttl: Duration) -> Instant {
    lease.written_at + ttl - margin(ttl)
}

/// True once `lease` may have expired at the server (counting the safety margin).
pub fn expired(lease: &Lease, ttl: Duration) -> bool {
    Instant::now() >= deadline(lease, ttl)
}

/// Gives `lease` up (only if nobody wrote since), so another node can take it at once.
pub async fn release(leases: &kv::Store, lease: &Lease) {
    let _ = leases
        .purge_expect_revision(key(&lease.pipeline), Some(lease.revision))
        .await;
}

/// Who holds `pipeline`, if anyone.
pub async fn holder(leases: &kv::Store, pipeline: &str) -> Option<String> {
    holder_checked(leases, pipeline).await.ok()?
}

/// Who holds `pipeline`'s lease (none: nobody); an error when the cluster cannot say.
pub async fn holder_checked(
    leases: &kv::Store,
    pipeline: &str,
) -> Result<Option<String>, kv::EntryError> {
    let entry = leases.entry(key(pipeline)).await?;
    Ok(entry
        .filter(|e| e.operation == kv::Operation::Put)
        .map(|e| String::from_utf8_lossy(&e.value).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlasts_a_nats_leader_election_with_fifteen_seconds() {
        let survives = |ttl: Duration| ttl - margin(ttl) - renewal_period(ttl);
        // nats-server elects a new Raft leader 4–9 s (plus up to 0.8 s of campaign) after
        // losing one.
        assert!(survives(Duration::from_secs(15)) >= Duration::from_secs(10));
        assert_eq!(survives(Duration::from_secs(10)), Duration::from_secs(6));
        assert_eq!(
            renewal_period(Duration::from_secs(4)),
            Duration::from_secs(4) / 3
        );
    }
}
