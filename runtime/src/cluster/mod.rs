//! Scale-out: several `vigil serve --cluster nats://…` nodes acting as one recorder, on NATS
//! JetStream's key-value buckets (Debian's `nats-server` 2.9 and up).
//!
//! * `vigil_desired`: the topologies and live pipelines with their desired state (keys
//!   `topology.<name>`, `pipeline.<name>`; values the documents a data directory would hold).
//!   Every node watches it and keeps its registry in step, so the control API answers the same on
//!   any node; a method call on any node writes here.
//! * `vigil_leases`: who records an Active pipeline (key `pipeline.<name>`, value the node's id).
//!   Entries expire [`ClusterConfig::lease_ttl`] after their last write; the holder renews with a
//!   revision-checked update, so the revision is a fencing token: a node whose update is refused
//!   has lost the pipeline and stops it at once (see [`lease`]).
//! * `vigil_nodes`: each node's heartbeat (same expiry) with how many pipelines it records; a
//!   node takes free pipelines only while it holds fewer than its fair share (see [`ownership`]).
//!
//! Methods, triggers and events also travel on NATS subjects (see [`subjects`]); with a shared
//! object store, the segment index makes the members' archives one (see [`segments`]).

pub mod desired;
pub mod lease;
pub mod liveness;
pub mod ownership;
pub mod reports;
pub mod segments;
pub mod subjects;

use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, kv};

/// How a node joins the cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The NATS servers, `nats://host:port[,nats://…]`.
    pub url: String,
    /// This node's id (unique in the cluster; default: the host name).
    pub node: String,
    /// How long a lease lasts without renewal: the failover time's main part.
    pub lease_ttl: Duration,
    /// Copies of each bucket the NATS cluster keeps (3 on a 3-server cluster survives the loss
    /// of one server; 1 on a single server).
    pub replicas: usize,
    /// The most pipelines this node records, and its weight in placement.
    pub capacity: u32,
    /// Where the other nodes reach this node's playback API (none: from the listener).
    pub advertise_url: Option<String>,
}

impl ClusterConfig {
    /// Where the other nodes reach this node's playback API: `--advertise-url`, else the
    /// listener's address (`listen`, `host:port`), with the host name for an address that
    /// listens on every interface.
    pub fn playback_url(&self, listen: &str, tls: bool) -> String {
        if let Some(url) = &self.advertise_url {
            return url.trim_end_matches('/').to_string();
        }
        let scheme = if tls { "https" } else { "http" };
        let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "7878"));
        let host = match host.trim_matches(['[', ']']) {
            "0.0.0.0" | "::" | "" => host_name(),
            _ => host.to_string(),
        };
        format!("{scheme}://{host}:{port}")
    }
}

/// A node's connection to the cluster and its three buckets.
pub struct Cluster {
    /// The connection (method, trigger and event subjects).
    pub client: async_nats::Client,
    /// JetStream on it (the segment index).
    pub js: jetstream::Context,
    /// This node's id.
    pub node: String,
    /// Its capacity (see [`ClusterConfig::capacity`]).
    pub capacity: u32,
    /// The lease time.
    pub lease_ttl: Duration,
    /// Desired state.
    pub desired: kv::Store,
    /// Leases.
    pub leases: kv::Store,
    /// Node heartbeats.
    pub nodes: kv::Store,
    /// The revision of the desired state this node's registry has applied up to.
    pub applied: std::sync::atomic::AtomicU64,
    /// Asks the desired-state follower to watch again: a call found the watch
    /// [`REWATCH_AFTER`] behind the stream without delivering.
    pub rewatch: tokio::sync::Notify,
    /// Where the cluster's own events go (subject `/cluster`, see [`reports`]).
    pub events: crate::bus::event_log::EventBus,
    /// Which nodes are live, from the heartbeat watch [`ownership::run`] keeps.
    pub liveness: std::sync::Arc<liveness::Liveness>,
}

impl Cluster {
    /// Waits until this node's registry holds every change written to the desired state before
    /// now (any node's), so that a call sees what calls before it did, whichever node they went
    /// to. False when the cluster cannot say or the watch lags [`CATCH_UP_WAIT`] behind.
    pub async fn catch_up(&self) -> bool {
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        // One request may be lost while the connection moves to another server: ask again
        // until the deadline.
        let last = loop {
            match desired::last_revision(&self.desired).await {
                Ok(last) => break last,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!("{e:#}");
                    return false;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let mut asked = false;
        let mut progress = self.applied.load(std::sync::atomic::Ordering::Acquire);
        let mut progress_at = tokio::time::Instant::now();
        loop {
            let applied = self.applied.load(std::sync::atomic::Ordering::Acquire);
            if applied >= last {
                break;
            }
            let now = tokio::time::Instant::now();
            if applied != progress {
                progress = applied;
                progress_at = now;
            }
            // A watch that stalled without an error (its server gone) delivers nothing more:
            // rather than fail this call, have it started again (it replays the whole state).
            if !asked && now.duration_since(progress_at) >= REWATCH_AFTER {
                tracing::debug!(
                    "the watch of the desired state is at revision {applied}, the cluster at {last}, and has delivered nothing for {REWATCH_AFTER:?}: asking for it to be started again"
                );
                self.rewatch.notify_one();
                asked = true;
            }
            if now >= deadline {
                tracing::warn!(
                    "this node's registry has applied the desired state up to revision {applied}, not {last}"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// A node's capacity when `--capacity` is not given.
pub const DEFAULT_CAPACITY: u32 = 100;

/// How long a call waits for this node's registry to catch up with the desired state.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(3);

/// How long a call waits for a watch that delivers nothing before it has it started again.
pub const REWATCH_AFTER: Duration = Duration::from_secs(1);

/// How long a node starting keeps trying to open the cluster's buckets (JetStream answers only
/// once the NATS cluster has elected its leader).
pub const STARTUP_WAIT: Duration = Duration::from_secs(60);

/// How often the connection pings its server. A link that fails silently (no reset: a cable,
/// a switch port) leaves the TCP connection open; after more than two unanswered pings the
/// client drops it and connects again, so a node whose link comes back rejoins within seconds
/// (with the client's default of a minute, a node stayed away for over 15 s after its link was
/// back, in the namespace partition test).
pub const PING_INTERVAL: Duration = Duration::from_secs(1);

/// The longest wait between two attempts to reach a NATS server again (each attempt tries the
/// next server of the list). The client's default backs off to 4 s, so a member whose servers
/// came back stayed away up to 4 s more; its pipelines' fair shares were taken by others
/// meanwhile (seen in the partition test through relays). Within a second, as every other
/// peer (issue #13).
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(250);

/// The wait before reconnection attempt `attempts` (from 1): none for the first, then doubling
/// from 2 ms up to [`RECONNECT_MAX_DELAY`].
pub fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(attempts - 1).unwrap_or(u32::MAX).min(20);
    Duration::from_millis(2u64.pow(exp)).min(RECONNECT_MAX_DELAY)
}

/// How long one request to the cluster may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// The desired-state bucket.
pub const DESIRED_BUCKET: &str = "vigil_desired";
/// The lease bucket.
pub const LEASE_BUCKET: &str = "vigil_leases";
/// The heartbeat bucket.
pub const NODE_BUCKET: &str = "vigil_nodes";

impl Cluster {
    /// Connects to the cluster and opens (creating where absent) its buckets. The connection
    /// reconnects by itself after a server is lost; each request waits at most
    /// [`REQUEST_TIMEOUT`], so a node cut off notices in time to stop before its leases lapse.
    pub async fn connect(
        config: &ClusterConfig,
        events: crate::bus::event_log::EventBus,
    ) -> Result<Self> {
        let servers = config
            .url
            .split(',')
            .map(|u| u.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("--cluster {}: not a list of nats:// URLs", config.url))?;
        let reports = std::sync::Arc::new(reports::ConnectionReports::new(events.clone()));
        let client = connect_on_own_thread(config.node.clone(), servers, reports)
            .await
            .with_context(|| format!("cannot connect to the cluster at {}", config.url))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        let ttl = config.lease_ttl;
        let n = config.replicas.max(1);
        // A NATS cluster starting beside vigil (Kubernetes starts both at once) answers
        // JetStream requests only once it has elected its leader: keep trying for a while.
        let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
        let (desired, leases, nodes) = loop {
            let opened = async {
                let buckets = (
                    bucket(&js, DESIRED_BUCKET, Duration::ZERO, n).await?,
                    bucket(&js, LEASE_BUCKET, ttl, n).await?,
                    bucket(&js, NODE_BUCKET, ttl, n).await?,
                );
                segments::ensure_stream(&js, n).await?;
                Ok::<_, anyhow::Error>(buckets)
            };
            match opened.await {
                Ok(buckets) => break buckets,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!("{e:#}; trying again in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Self {
            client,
            js,
            node: config.node.clone(),
            capacity: config.capacity.max(1),
            lease_ttl: ttl,
            desired,
            leases,
            nodes,
            applied: Default::default(),
            rewatch: tokio::sync::Notify::new(),
            events,
            liveness: Default::default(),
        })
    }
}

/// Connects on a thread of its own, whose runtime then drives the connection for the life of
/// the process: the service's workers may block on its registry's lock while a control call
/// holds it waiting for the cluster, and the connection's I/O must not wait behind them.
async fn connect_on_own_thread(
    node: String,
    servers: Vec<async_nats::ServerAddr>,
    reports: std::sync::Arc<reports::ConnectionReports>,
) -> Result<async_nats::Client> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cluster io".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let connected = async_nats::ConnectOptions::new()
                    .name(format!("vigil-{node}"))
                    .connection_timeout(Duration::from_secs(2))
                    .ping_interval(PING_INTERVAL)
                    .reconnect_delay_callback(reconnect_delay)
                    .event_callback(move |event| {
                        let reports = reports.clone();
                        async move { reports.on_event(&event, std::time::Instant::now()) }
                    })
                    .connect(servers)
                    .await
                    .map_err(anyhow::Error::from);
                let failed = connected.is_err();
                let _ = tx.send(connected);
                if !failed {
                    std::future::pending::<()>().await;
                }
            });
        })?;
    rx.await
        .map_err(|_| anyhow::anyhow!("the cluster's connection thread ended"))?
}

/// This machine's host name (a node's default id).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string())
}

/// Opens bucket `name`, creating it (one value per key, `replicas` copies; entries expire after
/// `max_age`, never when zero) if no node made it yet.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
    replicas: usize,
) -> Result<kv::Store> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    // The stream a key-value bucket is, made directly: the client's own bucket creation asks
    // for account fields that servers before 2.10 do not send.
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .with_context(|| format!("cannot create the cluster's bucket {name}"))?;
    js.get_key_value(name)
        .await
        .with_context(|| format!("cannot open the cluster's bucket {name}"))
}

#[cfg(test)]
mod tests {
    use super::{RECONNECT_MAX_DELAY, reconnect_delay};
    use std::time::Duration;

    #[test]
    fn reconnection_attempts_come_at_least_every_quarter_second() {
        assert_eq!(reconnect_delay(0), Duration::ZERO);
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(2));
        assert_eq!(reconnect_delay(5), Duration::from_millis(16));
        assert_eq!(reconnect_delay(9), RECONNECT_MAX_DELAY);
        assert_eq!(reconnect_delay(usize::MAX), RECONNECT_MAX_DELAY);
    }
}
