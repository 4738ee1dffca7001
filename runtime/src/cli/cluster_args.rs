//! `vigil serve` options for a cluster node (README "Scale-out").

use clap::Args;

use crate::cluster::{ClusterConfig, DEFAULT_CAPACITY};

/// How a `vigil serve` node joins a cluster.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Join a cluster on NATS JetStream (`nats://HOST:PORT`, several comma-separated): the
    /// topologies and live pipelines live in the cluster's key-value bucket instead of a data
    /// directory, any node answers the control API, and each Active pipeline is recorded by
    /// the one node that holds its lease (README "Scale-out").
    #[arg(long, value_name = "URL", conflicts_with_all = ["config", "data_dir"])]
    pub cluster: Option<String>,
    /// This node's id in the cluster (unique; default: the host name).
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// Seconds a pipeline's lease lasts without renewal (default 10): a dead node's pipelines
    /// are taken over about this long after it died. Every node of a cluster must give the
    /// same value.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(2..=300))]
    pub lease_ttl: Option<u64>,
    /// Copies the NATS cluster keeps of vigil's buckets, when it creates them (default 1; 3 on
    /// a three-server cluster survives the loss of a server).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=5))]
    pub cluster_replicas: Option<u64>,
    /// The most pipelines this node records, and its weight when the cluster spreads them
    /// (default 100): a node of capacity 20 beside one of 10 is given about twice as many.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub capacity: Option<u32>,
    /// Where the other nodes reach this node's playback API, to read what it recorded before
    /// it is in the shared store (default: `--http`'s address, the host name when that listens
    /// on every interface).
    #[arg(long, value_name = "URL")]
    pub advertise_url: Option<String>,
}

impl ClusterArgs {
    /// The cluster to join (none without `--cluster`); the error names the options given
    /// without it (clap's `requires` lets them through when they have no value of their own).
    pub fn config(&self) -> Result<Option<ClusterConfig>, String> {
        if let Some(url) = &self.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("--advertise-url {url}: not an http(s) address"));
        }
        let Some(url) = &self.cluster else {
            let given = [
                ("--node-id", self.node_id.is_some()),
                ("--lease-ttl", self.lease_ttl.is_some()),
                ("--cluster-replicas", self.cluster_replicas.is_some()),
                ("--capacity", self.capacity.is_some()),
                ("--advertise-url", self.advertise_url.is_some()),
            ];
            let orphans: Vec<&str> = given.iter().filter(|g| g.1).map(|g| g.0).collect();
            if orphans.is_empty() {
                return Ok(None);
            }
            return Err(format!(
                "options that need --cluster URL: {}",
                orphans.join(", ")
            ));
        };
        Ok(Some(ClusterConfig {
            url: url.clone(),
            node: self
                .node_id
                .clone()
                .unwrap_or_else(crate::cluster::host_name),
            lease_ttl: std::time::Duration::from_secs(self.lease_ttl.unwrap_or(10)),
            replicas: self.cluster_replicas.unwrap_or(1) as usize,
            capacity: self.capacity.unwrap_or(DEFAULT_CAPACITY),
            advertise_url: self.advertise_url.clone(),
        }))
    }
}
