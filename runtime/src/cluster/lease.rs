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

/// Renews `lease`. `Err(Taken)` when another node wrote since; `Err(Lapsed)` when the cluster
/// could not be reached and the lease's own deadline (ttl minus [`margin`]) has passed; `Ok`
/// with the lease unchanged when the renewal failed but time remains.
pub async fn renew(
    leases: &kv::Store,
    lease: &mut Lease,
    node: &str,
    ttl: Duration,
) -> Result<(), Lost> {
    let written_at = Instant::now();
    match leases
        .update(
            key(&lease.pipeline),
            Bytes::from(node.to_string()),
            lease.revision,
        )
        .await
    {
        Ok(revision) => {
            lease.revision = revision;
            lease.written_at = written_at;
            Ok(())
        }
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
            Err(Lost::Taken(lease.revision))
        }
        Err(_) if expired(lease, ttl) => Err(Lost::Lapsed),
        Err(_) => Ok(()),
    }
}

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
    let entry = leases.entry(key(pipeline)).await.ok()??;
    (entry.operation == kv::Operation::Put)
        .then(|| String::from_utf8_lossy(&entry.value).into_owned())
}
