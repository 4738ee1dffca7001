//! Declarative mode: the service follows a [`ConfigFolder`]. Each scan compares what the
//! folder declares with what was last applied from it, and touches only what differs (as
//! Vector reloads its configuration): a new live pipeline is set and activated, a removed one
//! deactivated and deleted, a changed one (or one whose topology changed) deactivated,
//! replaced and activated again. Everything else keeps running: its clips see no gap.
//!
//! A change is checked in full (the pipeline bound to its topology, as activation would)
//! before anything running is stopped; a change that does not bind is reported
//! (`ConfigurationError`) and the running version stays.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::Service;
use super::config_folder::{ConfigFolder, DesiredState, FileProblem};
use super::registry::{PipelineEntry, SystemData, TopologyEntry, bind, parameters_of};
use crate::bus::event::{Event, EventClass};
use crate::nodes::rtsp_source::wall_now;
use crate::topology::live_pipeline::parse_live_pipeline;

/// How often the folder is read.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// What was last applied from the folder: the documents by name.
#[derive(Default)]
struct Applied {
    topologies: BTreeMap<String, Value>,
    /// Topology name and document of each live pipeline.
    pipelines: BTreeMap<String, (String, Value)>,
    /// Live pipelines whose new version did not bind: that version and its topology's, so the
    /// same pair is neither checked nor reported again.
    refused: BTreeMap<String, (Value, Option<Value>)>,
}

/// What one reconciliation does.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Live pipelines to stop and delete (removed, or about to be replaced).
    pub stop: Vec<String>,
    /// Topologies to set (new or changed), after the stops.
    pub set_topologies: Vec<String>,
    /// Topologies to delete, after the stops.
    pub delete_topologies: Vec<String>,
    /// Live pipelines to set and activate (new, or replaced).
    pub start: Vec<String>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Follows `dir` until `shutdown`: reads it every [`SCAN_INTERVAL`] and reconciles.
pub async fn follow(
    service: Arc<Service>,
    dir: std::path::PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut folder = ConfigFolder::new(&dir);
    let mut applied = Applied::default();
    let mut unlistable = false;
    loop {
        match tokio::task::block_in_place(|| folder.scan()) {
            Ok((desired, problems)) => {
                unlistable = false;
                for p in &problems {
                    report_problem(&service, p);
                }
                reconcile(&service, desired, &mut applied).await;
            }
            Err(e) if !unlistable => {
                unlistable = true;
                report(
                    &service,
                    &dir,
                    format!("cannot read the folder: {e}; what runs keeps running"),
                    Vec::new(),
                );
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(SCAN_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Checks the changed documents and applies what binds.
async fn reconcile(service: &Service, mut desired: DesiredState, applied: &mut Applied) {
    tokio::task::block_in_place(|| hold_what_does_not_bind(service, &mut desired, applied));
    let changes = changes_between(&desired, applied);
    if changes.is_empty() {
        return;
    }
    let mut done =
        json!({"stopped": [], "started": [], "topologiesSet": [], "topologiesDeleted": []});
    for name in &changes.stop {
        let deactivated = service.deactivate(name).await;
        let deleted = if deactivated.status < 400 {
            call(service, "livePipelineDelete", json!({"name": name})).await
        } else {
            deactivated
        };
        if deleted.status < 400 {
            applied.pipelines.remove(name);
            push(&mut done["stopped"], name);
        } else {
            report_answer(
                service,
                &applied_file(&desired, name),
                name,
                &deleted.payload,
            );
        }
    }
    for name in &changes.delete_topologies {
        let answer = call(service, "pipelineTopologyDelete", json!({"name": name})).await;
        if answer.status < 400 {
            applied.topologies.remove(name);
            push(&mut done["topologiesDeleted"], name);
        } else {
            report_answer(service, Path::new(name), name, &answer.payload);
        }
    }
    for name in &changes.set_topologies {
        let (doc, file) = &desired.topologies[name];
        let answer = call(service, "pipelineTopologySet", doc.clone()).await;
        if answer.status < 400 {
            applied.topologies.insert(name.clone(), doc.clone());
            push(&mut done["topologiesSet"], name);
        } else {
            report_answer(service, file, name, &answer.payload);
        }
    }
    for name in &changes.start {
        let (topology, doc, file) = &desired.pipelines[name];
        if applied.topologies.get(topology) != desired.topologies.get(topology).map(|t| &t.0) {
            continue; // its topology could not be set (reported above)
        }
        let set = call(service, "livePipelineSet", doc.clone()).await;
        let answer = if set.status < 400 {
            service.activate(name).await
        } else {
            set
        };
        if answer.status < 400 {
            applied
                .pipelines
                .insert(name.clone(), (topology.clone(), doc.clone()));
            push(&mut done["started"], name);
        } else {
            report_answer(service, file, name, &answer.payload);
        }
    }
    service.context().bus.emit(Event::new(
        EventClass::Operational,
        "ConfigurationApplied",
        "/config".into(),
        wall_now(),
        done,
    ));
}

/// What to do to go from `applied` to `desired` (both already checked).
fn changes_between(desired: &DesiredState, applied: &Applied) -> Changes {
    let topology_changed = |name: &str| {
        applied.topologies.get(name) != desired.topologies.get(name).map(|(doc, _)| doc)
    };
    let mut changes = Changes::default();
    for (name, (topology, doc)) in &applied.pipelines {
        let same = desired
            .pipelines
            .get(name)
            .is_some_and(|(t, d, _)| t == topology && d == doc);
        if !same || topology_changed(topology) {
            changes.stop.push(name.clone());
        }
    }
    for name in applied.topologies.keys() {
        if !desired.topologies.contains_key(name) {
            changes.delete_topologies.push(name.clone());
        }
    }
    for name in desired.topologies.keys() {
        if topology_changed(name) {
            changes.set_topologies.push(name.clone());
        }
    }
    for name in desired.pipelines.keys() {
        if !applied.pipelines.contains_key(name) || changes.stop.contains(name) {
            changes.start.push(name.clone());
        }
    }
    changes
}

/// Binds every live pipeline that would change (its document, or its topology's) as
/// activation would. One that does not bind keeps its applied version; when it is the new
/// version of its topology that breaks it, the topology keeps its applied version too.
fn hold_what_does_not_bind(service: &Service, desired: &mut DesiredState, applied: &mut Applied) {
    let mut reported = BTreeSet::new();
    // Each round reverts at least one document, so this ends.
    loop {
        let mut reverted = false;
        let names: Vec<String> = desired.pipelines.keys().cloned().collect();
        for name in names {
            let (topology, doc, file) = desired.pipelines[&name].clone();
            let topology_doc = desired.topologies.get(&topology).map(|t| t.0.clone());
            let pipeline_changed = applied
                .pipelines
                .get(&name)
                .is_none_or(|(t, d)| t != &topology || d != &doc);
            let topology_changed = applied.topologies.get(&topology) != topology_doc.as_ref();
            if !pipeline_changed && !topology_changed {
                continue;
            }
            let pair = (doc.clone(), topology_doc.clone());
            if applied.refused.get(&name) != Some(&pair) {
                let Err(problem) = check_binding(&name, &topology, &doc, topology_doc.as_ref())
                else {
                    continue;
                };
                if reported.insert(name.clone()) {
                    report(service, &file, problem.0, problem.1);
                }
                applied.refused.insert(name.clone(), pair);
            }
            if pipeline_changed {
                match applied.pipelines.get(&name) {
                    Some((t, d)) => {
                        desired
                            .pipelines
                            .insert(name.clone(), (t.clone(), d.clone(), file.clone()));
                    }
                    None => {
                        desired.pipelines.remove(&name);
                    }
                }
            } else {
                let file = desired.topologies.get(&topology).map(|t| t.1.clone());
                match (applied.topologies.get(&topology), file) {
                    (Some(old), Some(file)) => {
                        desired
                            .topologies
                            .insert(topology.clone(), (old.clone(), file));
                    }
                    _ => {
                        desired.topologies.remove(&topology);
                    }
                }
            }
            reverted = true;
        }
        if !reverted {
            return;
        }
    }
}

/// Binds live pipeline `doc` to its topology: the problem, with its topology errors.
fn check_binding(
    name: &str,
    topology: &str,
    doc: &Value,
    topology_doc: Option<&Value>,
) -> Result<(), (String, Vec<crate::topology::TopologyError>)> {
    let Some(topology_doc) = topology_doc else {
        return Err((
            format!(
                "live pipeline '{name}' names pipeline topology '{topology}', which no file in the folder declares"
            ),
            Vec::new(),
        ));
    };
    let live = parse_live_pipeline(&doc.to_string())
        .map_err(|e| (format!("live pipeline '{name}' is invalid"), e.0))?;
    let topology_entry = TopologyEntry {
        name: topology.to_string(),
        document: topology_doc.clone(),
        secrets: Vec::new(),
        system: SystemData::read(&Value::Null),
    };
    let pipeline_entry = PipelineEntry {
        name: name.to_string(),
        topology: topology.to_string(),
        description: None,
        parameters: parameters_of(&live),
        desired_active: true,
        state: super::registry::PipelineState::Inactive,
        system: SystemData::read(&Value::Null),
        status: Default::default(),
    };
    bind(&topology_entry, &pipeline_entry)
        .map(|_| ())
        .map_err(|errors| {
            (
                format!("live pipeline '{name}' does not bind pipeline topology '{topology}'"),
                errors,
            )
        })
}

async fn call(service: &Service, method: &str, payload: Value) -> super::methods::Response {
    let mut payload = payload;
    if let Some(map) = payload.as_object_mut() {
        map.entry("@apiVersion").or_insert(json!("1.1"));
    }
    service.call(method, payload.to_string().as_bytes()).await
}

fn push(list: &mut Value, name: &str) {
    if let Some(items) = list.as_array_mut() {
        items.push(json!(name));
    }
}

fn applied_file(desired: &DesiredState, name: &str) -> std::path::PathBuf {
    desired
        .pipelines
        .get(name)
        .map(|p| p.2.clone())
        .unwrap_or_else(|| name.into())
}

fn report_problem(service: &Service, problem: &FileProblem) {
    report(
        service,
        &problem.file,
        problem.detail.clone(),
        problem.errors.clone(),
    );
}

fn report_answer(service: &Service, file: &Path, name: &str, answer: &Value) {
    report(
        service,
        file,
        format!("'{name}' could not be applied: the service answered {answer}"),
        Vec::new(),
    );
}

/// A `ConfigurationError` event (subject `/config/<file name>`).
fn report(
    service: &Service,
    file: &Path,
    detail: String,
    errors: Vec<crate::topology::TopologyError>,
) {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| json!({"path": e.path, "node": e.node, "message": e.message}))
        .collect();
    service.context().bus.emit(Event::new(
        EventClass::Diagnostics,
        "ConfigurationError",
        format!("/config/{name}"),
        wall_now(),
        json!({"file": file.display().to_string(), "detail": detail, "errors": errors}),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(topologies: &[(&str, Value)], pipelines: &[(&str, &str, Value)]) -> DesiredState {
        DesiredState {
            topologies: topologies
                .iter()
                .map(|(n, d)| (n.to_string(), (d.clone(), format!("{n}.json").into())))
                .collect(),
            pipelines: pipelines
                .iter()
                .map(|(n, t, d)| {
                    (
                        n.to_string(),
                        (t.to_string(), d.clone(), format!("{n}.json").into()),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn only_what_differs_is_touched() {
        let mut applied = Applied::default();
        applied.topologies.insert("T".into(), json!(1));
        applied.topologies.insert("Old".into(), json!(1));
        applied
            .pipelines
            .insert("a".into(), ("T".into(), json!("a")));
        applied
            .pipelines
            .insert("b".into(), ("T".into(), json!("b")));
        applied
            .pipelines
            .insert("gone".into(), ("Old".into(), json!("g")));
        let want = desired(
            &[("T", json!(1))],
            &[
                ("a", "T", json!("a")),
                ("b", "T", json!("b2")),
                ("new", "T", json!("n")),
            ],
        );
        let changes = changes_between(&want, &applied);
        assert_eq!(
            changes,
            Changes {
                stop: vec!["b".into(), "gone".into()],
                set_topologies: vec![],
                delete_topologies: vec!["Old".into()],
                start: vec!["b".into(), "new".into()],
            }
        );
    }

    #[test]
    fn a_changed_topology_restarts_its_users_only() {
        let mut applied = Applied::default();
        applied.topologies.insert("T".into(), json!(1));
        applied.topologies.insert("U".into(), json!(1));
        applied
            .pipelines
            .insert("a".into(), ("T".into(), json!("a")));
        applied
            .pipelines
            .insert("b".into(), ("U".into(), json!("b")));
        let want = desired(
            &[("T", json!(2)), ("U", json!(1))],
            &[("a", "T", json!("a")), ("b", "U", json!("b"))],
        );
        let changes = changes_between(&want, &applied);
        assert_eq!(changes.stop, ["a"]);
        assert_eq!(changes.set_topologies, ["T"]);
        assert_eq!(changes.start, ["a"]);
        assert!(changes.delete_topologies.is_empty());
    }
}
