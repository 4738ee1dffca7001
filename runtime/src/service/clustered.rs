//! What a cluster member's service does beside the control API: it keeps its registry in step
//! with the cluster's desired state, and starts and stops the pipelines whose leases it takes
//! and loses (see `crate::cluster::ownership`).

use serde_json::json;

use super::Service;
use super::documents::Kind;
use super::registry::{PipelineState, bind};
use crate::cluster::desired::Change;

impl Service {
    /// Applies one change of the cluster's desired state to the registry. A pipeline's state
    /// there is the cluster's: Active when it should run (whichever node runs it).
    pub fn apply_desired(&self, change: Change) {
        match change {
            Change::Put(Kind::Topology, name, doc) => self.hold_topology(name, doc),
            Change::Put(Kind::LivePipeline, name, doc) => {
                if let Some(active) = self.hold_pipeline(name.clone(), &doc)
                    && let Some(p) = self.registry().pipelines.get_mut(&name)
                    && p.state != PipelineState::Deactivating
                {
                    p.state = if active {
                        PipelineState::Active
                    } else {
                        PipelineState::Inactive
                    };
                }
            }
            Change::Delete(Kind::Topology, name) => {
                self.registry().topologies.remove(&name);
            }
            Change::Delete(Kind::LivePipeline, name) => {
                self.registry().pipelines.remove(&name);
            }
            Change::Unreadable(key, reason) => self.report(
                "StorageError",
                json!({"key": key, "detail": format!("the cluster holds a value vigil cannot read: {reason}; it is ignored")}),
            ),
        }
    }

    /// Whether pipeline `name`'s desired state is Active (wherever it runs).
    pub fn is_desired_active(&self, name: &str) -> bool {
        self.registry()
            .pipelines
            .get(name)
            .is_some_and(|p| p.desired_active)
    }

    /// The pipelines whose desired state is Active, by name.
    pub fn desired_active(&self) -> Vec<String> {
        self.registry()
            .pipelines
            .values()
            .filter(|p| p.desired_active)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Starts pipeline `name` in this process (its lease was taken); the error says why it
    /// cannot run here.
    pub fn run_here(&self, name: &str) -> Result<(), String> {
        let (plan, status) = {
            let registry = self.registry();
            let p = registry
                .pipelines
                .get(name)
                .ok_or_else(|| format!("live pipeline '{name}' is not known here"))?;
            let topology = registry
                .topologies
                .get(&p.topology)
                .ok_or_else(|| format!("pipeline topology '{}' is not known here", p.topology))?;
            let plan =
                bind(topology, p).map_err(|e| crate::topology::TopologyErrors(e).to_string())?;
            (plan, p.status.clone())
        };
        self.start_supervised(name, plan, status);
        Ok(())
    }

    /// Stops pipeline `name` in this process (its clips close); false when it did not run here.
    pub async fn stop_here(&self, name: &str) -> bool {
        let supervised = self.running().remove(name);
        let Some(s) = supervised else {
            return false;
        };
        s.stop().await;
        self.lifecycle_event(name, "LivePipelineDeactivated");
        true
    }
}
