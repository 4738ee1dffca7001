//! The desired state in the cluster's bucket: one key per topology and live pipeline
//! (`topology.<name>`, `pipeline.<name>`), the value the JSON document a data directory would
//! hold. Writes are single messages: a reader sees the old document or the new one.

use anyhow::{Context, Result};
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use crate::service::documents::Kind;

/// The key of document `name` of `kind`.
pub fn key(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Topology => format!("topology.{name}"),
        Kind::LivePipeline => format!("pipeline.{name}"),
    }
}

/// The kind and name a key stands for.
pub fn parse_key(key: &str) -> Option<(Kind, &str)> {
    if let Some(name) = key.strip_prefix("topology.") {
        return Some((Kind::Topology, name));
    }
    key.strip_prefix("pipeline.")
        .map(|name| (Kind::LivePipeline, name))
}

/// Writes document `name`.
pub async fn write(desired: &kv::Store, kind: Kind, name: &str, document: &Value) -> Result<()> {
    desired
        .put(key(kind, name), Bytes::from(document.to_string()))
        .await
        .with_context(|| format!("cannot store {} '{name}' in the cluster", kind.what()))?;
    Ok(())
}

/// Deletes document `name`.
pub async fn delete(desired: &kv::Store, kind: Kind, name: &str) -> Result<()> {
    desired
        .delete(key(kind, name))
        .await
        .with_context(|| format!("cannot delete {} '{name}' in the cluster", kind.what()))
}

/// One change to the desired state, as a watch delivers it.
#[derive(Debug)]
pub enum Change {
    /// A document was written (or is there when the watch starts).
    Put(Kind, String, Value),
    /// A document was deleted.
    Delete(Kind, String),
    /// A value that is not a document of ours (reported, ignored).
    Unreadable(String, String),
}

/// The revision of the last write to the desired state (0 when there is none).
pub async fn last_revision(desired: &kv::Store) -> Result<u64> {
    let info = desired
        .stream
        .get_info()
        .await
        .context("cannot read the cluster's desired state")?;
    Ok(info.state.last_sequence)
}

/// Every document now, then every change, in order, each with its revision.
pub async fn watch(
    desired: &kv::Store,
) -> Result<impl futures::Stream<Item = Result<(u64, Change), kv::WatcherError>> + use<>> {
    let watch = desired
        .watch_with_history(">")
        .await
        .context("cannot watch the cluster's desired state")?;
    Ok(watch.map(|entry| {
        let entry = entry?;
        let revision = entry.revision;
        let Some((kind, name)) = parse_key(&entry.key) else {
            return Ok((
                revision,
                Change::Unreadable(entry.key, "not a vigil key".into()),
            ));
        };
        let name = name.to_string();
        let change = match entry.operation {
            kv::Operation::Put => match serde_json::from_slice(&entry.value) {
                Ok(doc) => Change::Put(kind, name, doc),
                Err(e) => Change::Unreadable(entry.key, e.to_string()),
            },
            kv::Operation::Delete | kv::Operation::Purge => Change::Delete(kind, name),
        };
        Ok((revision, change))
    }))
}
