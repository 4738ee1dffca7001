//! The service's data directory (AVA's `ApplicationDataDirectory`): topologies and live pipelines
//! with their desired state, one JSON document per file
//! (`<dir>/topologies/<name>.json`, `<dir>/livePipelines/<name>.json`). Every write is atomic and
//! durable: the document goes to a temporary file, is fsync'd, renamed over the old one, and the
//! directory is fsync'd; a `kill -9` or a power cut leaves the old document or the new one, never
//! half of one. Files may hold secrets (parameter values of type `secretString`): they are
//! written readable by the owner only.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

/// The two kinds of document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A pipeline topology.
    Topology,
    /// A live pipeline.
    LivePipeline,
}

impl Kind {
    /// What a document of this kind is, in words.
    pub fn what(self) -> &'static str {
        match self {
            Kind::Topology => "pipeline topology",
            Kind::LivePipeline => "live pipeline",
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Kind::Topology => "topologies",
            Kind::LivePipeline => "livePipelines",
        }
    }
}

/// A document that could not be read back (reported, left in place).
#[derive(Debug)]
pub struct Unreadable {
    /// Its file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// What [`Documents::read_all`] found: the documents by name, and the files it could not read.
pub type ReadBack = (Vec<(String, Value)>, Vec<Unreadable>);

/// The documents of a data directory.
#[derive(Clone, Debug)]
pub struct Documents {
    dir: PathBuf,
}

impl Documents {
    /// Opens (creating) the data directory `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        for kind in [Kind::Topology, Kind::LivePipeline] {
            let folder = dir.join(kind.folder());
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, kind: Kind, name: &str) -> PathBuf {
        self.dir.join(kind.folder()).join(format!("{name}.json"))
    }

    /// Writes the document `name` atomically and durably.
    pub fn write(&self, kind: Kind, name: &str, document: &Value) -> Result<()> {
        let path = self.path(kind, name);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(document)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        drop(file);
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        sync_dir(path.parent().unwrap_or(&self.dir))
    }

    /// Deletes the document `name` (durably); a missing one is no error.
    pub fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        let path = self.path(kind, name);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(&self.dir)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot delete {}", path.display())),
        }
    }

    /// Every document of `kind`, by name, and the files that could not be read. Temporary files a
    /// crash left behind are removed.
    pub fn read_all(&self, kind: Kind) -> Result<ReadBack> {
        let folder = self.dir.join(kind.folder());
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot read {}", folder.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if file_name.ends_with(".json.tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(name) = file_name.strip_suffix(".json") else {
                continue;
            };
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(value) => good.push((name.to_string(), value)),
                Err(reason) => bad.push(Unreadable { path, reason }),
            }
        }
        Ok((good, bad))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_and_leftover_temporary_files_are_removed() {
        let dir = std::env::temp_dir().join(format!("vigil-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let docs = Documents::open(&dir).expect("open");
        docs.write(Kind::LivePipeline, "p1", &serde_json::json!({"name": "p1"}))
            .expect("write");
        docs.write(
            Kind::LivePipeline,
            "p1",
            &serde_json::json!({"name": "p1", "v": 2}),
        )
        .expect("rewrite");
        std::fs::write(dir.join("livePipelines/p2.json.tmp"), b"{\"half").expect("tmp");
        std::fs::write(dir.join("livePipelines/p3.json"), b"{\"half").expect("broken");
        let (good, bad) = docs.read_all(Kind::LivePipeline).expect("read");
        assert_eq!(
            good,
            vec![("p1".to_string(), serde_json::json!({"name": "p1", "v": 2}))]
        );
        assert_eq!(bad.len(), 1);
        assert!(!dir.join("livePipelines/p2.json.tmp").exists());
        docs.delete(Kind::LivePipeline, "p1").expect("delete");
        docs.delete(Kind::LivePipeline, "p1").expect("delete again");
        assert!(
            docs.read_all(Kind::LivePipeline)
                .expect("read")
                .0
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
