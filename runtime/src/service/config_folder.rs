//! The folder of declarative mode (`vigil serve --config DIR`): every `*.json` file in it holds
//! one pipeline topology or one live pipeline, as AVA's samples ship them. A file is read again
//! only when its bytes change; one that cannot be used is reported once per version and the
//! last good version of it is kept, so a typo never takes a running pipeline down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::registry::{check_name, check_template};
use crate::topology::TopologyError;
use crate::topology::live_pipeline::parse_live_pipeline;

/// What a file declares.
#[derive(Clone, Debug, PartialEq)]
pub enum Declared {
    /// A pipeline topology: its name and document.
    Topology(String, Value),
    /// A live pipeline: its name, the topology it names and its document.
    Pipeline(String, String, Value),
}

/// A file that cannot be used.
#[derive(Debug)]
pub struct FileProblem {
    /// The file.
    pub file: PathBuf,
    /// What is wrong.
    pub detail: String,
    /// The topology errors, with their JSON paths and nodes, when there are any.
    pub errors: Vec<TopologyError>,
}

/// Everything the folder declares, by name.
#[derive(Debug, Default)]
pub struct DesiredState {
    /// Topologies: document and the file that declares it.
    pub topologies: BTreeMap<String, (Value, PathBuf)>,
    /// Live pipelines: topology name, document and the file that declares it.
    pub pipelines: BTreeMap<String, (String, Value, PathBuf)>,
}

struct FileState {
    bytes: Vec<u8>,
    last_good: Option<Declared>,
}

/// The folder and what was last read from each of its files.
pub struct ConfigFolder {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    /// Files over [`MAX_FILE_BYTES`], with the size they were reported at.
    oversized: BTreeMap<PathBuf, u64>,
}

/// Largest file read from the folder (a topology is at most 1 MiB); a larger one is reported
/// once per size and its last good version kept.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

impl ConfigFolder {
    /// The folder `dir` (read on [`ConfigFolder::scan`]).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            oversized: BTreeMap::new(),
        }
    }

    /// Reads the folder: what it declares now, and the problems of files that changed since
    /// the last scan (a file's problem is reported once per version of the file). A folder
    /// that cannot be listed is an error: the caller keeps what runs.
    pub fn scan(&mut self) -> Result<(DesiredState, Vec<FileProblem>), std::io::Error> {
        let mut present = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") && path.is_file() {
                present.push(path);
            }
        }
        present.sort();
        self.files.retain(|path, _| present.contains(path));
        self.oversized.retain(|path, _| present.contains(path));
        let mut problems = Vec::new();
        for path in &present {
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if len > MAX_FILE_BYTES {
                if self.oversized.insert(path.clone(), len) != Some(len) {
                    problems.push(problem(
                        path,
                        format!(
                            "the file has {len} bytes; at most {} MiB are read (the version read before, if any, stays in force)",
                            MAX_FILE_BYTES >> 20
                        ),
                    ));
                }
                continue;
            }
            self.oversized.remove(path);
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    problems.push(problem(path, format!("cannot read the file: {e}")));
                    continue;
                }
            };
            if self.files.get(path).is_some_and(|f| f.bytes == bytes) {
                continue;
            }
            let parsed = declared_in(path, &bytes);
            let last_good = self.files.get(path).and_then(|f| f.last_good.clone());
            let last_good = match parsed {
                Ok(d) => Some(d),
                Err(mut p) => {
                    if last_good.is_some() {
                        p.detail
                            .push_str("; the version read before stays in force");
                    }
                    problems.push(p);
                    last_good
                }
            };
            self.files
                .insert(path.clone(), FileState { bytes, last_good });
        }
        let mut desired = DesiredState::default();
        for (path, state) in &self.files {
            match &state.last_good {
                Some(Declared::Topology(name, doc)) => {
                    if let Some((_, first)) = desired.topologies.get(name) {
                        problems.push(duplicate(path, "pipeline topology", name, first));
                    } else {
                        desired
                            .topologies
                            .insert(name.clone(), (doc.clone(), path.clone()));
                    }
                }
                Some(Declared::Pipeline(name, topology, doc)) => {
                    if let Some((_, _, first)) = desired.pipelines.get(name) {
                        problems.push(duplicate(path, "live pipeline", name, first));
                    } else {
                        desired
                            .pipelines
                            .insert(name.clone(), (topology.clone(), doc.clone(), path.clone()));
                    }
                }
                None => {}
            }
        }
        Ok((desired, problems))
    }
}

fn problem(file: &Path, detail: String) -> FileProblem {
    FileProblem {
        file: file.to_path_buf(),
        detail,
        errors: Vec::new(),
    }
}

fn duplicate(file: &Path, what: &str, name: &str, first: &Path) -> FileProblem {
    problem(
        file,
        format!(
            "{what} '{name}' is declared again; {} declares it and is used",
            first.display()
        ),
    )
}

/// What one file declares: a live pipeline when `properties.topologyName` is there, else a
/// topology. The name is the document's `name`, or the file's stem when it has none.
fn declared_in(path: &Path, bytes: &[u8]) -> Result<Declared, FileProblem> {
    let mut doc: Value =
        serde_json::from_slice(bytes).map_err(|e| problem(path, format!("not JSON: {e}")))?;
    let Some(map) = doc.as_object_mut() else {
        return Err(problem(path, "not a JSON object".into()));
    };
    map.remove("systemData");
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match map.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(_) => return Err(problem(path, "$.name: not a string".into())),
        None => {
            map.insert("name".into(), Value::String(stem.clone()));
            stem
        }
    };
    check_name(&name).map_err(|why| problem(path, format!("$.name: {why}")))?;
    let topology_name = doc["properties"]["topologyName"]
        .as_str()
        .map(str::to_string);
    match topology_name {
        Some(topology) => {
            parse_live_pipeline(&doc.to_string()).map_err(|errors| FileProblem {
                file: path.to_path_buf(),
                detail: format!("live pipeline '{name}' is invalid"),
                errors: errors.0,
            })?;
            Ok(Declared::Pipeline(name, topology, doc))
        }
        None => {
            check_template(&doc).map_err(|errors| FileProblem {
                file: path.to_path_buf(),
                detail: format!("pipeline topology '{name}' is invalid"),
                errors,
            })?;
            Ok(Declared::Topology(name, doc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    const PIPELINE: &str = r#"{"name": "door", "properties": {"topologyName": "T", "parameters": [{"name": "rtspUrl", "value": "rtsp://cam/1"}]}}"#;

    #[test]
    fn a_broken_file_keeps_its_last_good_version_and_is_reported_once() {
        let dir = folder("broken");
        let file = dir.join("door.json");
        std::fs::write(&file, PIPELINE).expect("write");
        let mut config = ConfigFolder::new(&dir);
        let (desired, problems) = config.scan().expect("scan");
        assert!(problems.is_empty());
        assert_eq!(desired.pipelines["door"].0, "T");
        std::fs::write(&file, "{ not json").expect("write");
        let (desired, problems) = config.scan().expect("scan");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].detail.starts_with("not JSON"), "{problems:?}");
        assert!(problems[0].detail.ends_with("stays in force"));
        assert!(desired.pipelines.contains_key("door"));
        let (_, problems) = config.scan().expect("scan");
        assert!(problems.is_empty(), "reported again: {problems:?}");
        std::fs::remove_file(&file).expect("rm");
        let (desired, _) = config.scan().expect("scan");
        assert!(desired.pipelines.is_empty());
    }

    #[test]
    fn a_file_without_a_name_is_named_after_itself_and_duplicates_are_refused() {
        let dir = folder("names");
        std::fs::write(
            dir.join("porch.json"),
            r#"{"properties": {"topologyName": "T"}}"#,
        )
        .expect("write");
        std::fs::write(dir.join("a.json"), PIPELINE).expect("write");
        std::fs::write(dir.join("b.json"), PIPELINE).expect("write");
        std::fs::write(dir.join("notes.txt"), "ignored").expect("write");
        let (desired, problems) = ConfigFolder::new(&dir).scan().expect("scan");
        assert_eq!(
            desired.pipelines.keys().collect::<Vec<_>>(),
            ["door", "porch"]
        );
        assert_eq!(desired.pipelines["door"].2, dir.join("a.json"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].file, dir.join("b.json"));
        assert!(problems[0].detail.contains("declared again"));
    }

    #[test]
    fn an_oversized_file_is_not_read_and_is_reported_once() {
        let dir = folder("oversized");
        let file = dir.join("door.json");
        std::fs::write(&file, PIPELINE).expect("write");
        let mut config = ConfigFolder::new(&dir);
        config.scan().expect("scan");
        std::fs::write(&file, vec![b' '; MAX_FILE_BYTES as usize + 1]).expect("write");
        let (desired, problems) = config.scan().expect("scan");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].detail.contains("at most 2 MiB"), "{problems:?}");
        assert!(
            desired.pipelines.contains_key("door"),
            "the last good version stays"
        );
        assert!(config.scan().expect("scan").1.is_empty(), "reported again");
    }

    #[test]
    fn an_invalid_topology_names_the_path_and_node() {
        let dir = folder("topology");
        std::fs::write(
            dir.join("t.json"),
            r##"{"name": "T", "properties": {"sources": [{"@type": "#Microsoft.VideoAnalyzer.RtspSource", "name": "camera"}], "sinks": []}}"##,
        )
        .expect("write");
        let (desired, problems) = ConfigFolder::new(&dir).scan().expect("scan");
        assert!(desired.topologies.is_empty());
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .errors
                .iter()
                .any(|e| e.node.as_deref() == Some("camera") && e.path.contains("sources[0]")),
            "{:?}",
            problems[0].errors
        );
    }
}
