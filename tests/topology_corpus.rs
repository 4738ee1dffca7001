//! Walks AVA's published topologies (../shared/ava-topologies, the compatibility corpus) and checks
//! each file: it validates, or fails only with `not supported` lines for the node types listed
//! here, or (the one broken upstream file) fails with a JSON error at its line and column.
//! Skips, saying so, where the corpus is absent (a user's clone).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vigil::topology::{ErrorKind, LoadOptions, ParameterValue, ValueOrigin, load_topology};

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/ava-topologies");
    dir.is_dir().then_some(dir)
}

fn topology_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for area in [
        "live",
        "live-cloud",
        "batch-cloud",
        "lva-mediagraph",
        "live-extras",
        "lva-extras",
    ] {
        walk(&dir.join(area), &mut out);
    }
    out.sort();
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// A plausible value for a parameter the topology declares without a default.
fn value_for(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.contains("rtsp") && lower.contains("url") {
        "rtsp://camera.example:554/stream1".into()
    } else if lower.contains("url") {
        "http://inference.example:8080/score".into()
    } else if lower.contains("timesequence") {
        r#"[["2021-10-05T03:30:00Z","2021-10-05T03:40:00Z"]]"#.into()
    } else {
        "value-1".into()
    }
}

/// Values for every declared parameter that has no default.
fn values_for(text: &str) -> Vec<ParameterValue> {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let props = json.get("properties").or_else(|| json.get("Properties"));
    let params = props
        .and_then(|p| p.get("parameters"))
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    params
        .iter()
        .filter(|p| p.get("default").is_none())
        .filter_map(|p| p.get("name").and_then(|n| n.as_str()))
        .map(|name| ParameterValue {
            name: name.to_string(),
            value: value_for(name),
            origin: ValueOrigin::CommandLine,
        })
        .collect()
}

/// Files expected to fail with `not supported` lines, and the AVA type names those lines must name.
const NOT_SUPPORTED: &[(&str, &[&str])] = &[
    (
        "batch-cloud/export-from-video-archive/topology.json",
        &["VideoSource", "EncoderProcessor"],
    ),
    (
        "live-cloud/cloud-record-camera-behind-firewall/topology.json",
        &["SecureIotDeviceRemoteTunnel"],
    ),
    (
        "live/cvr-with-httpExtension-and-objectTracking/topology.json",
        &["ObjectTrackingProcessor"],
    ),
    (
        "live/line-crossing/topology.json",
        &["ObjectTrackingProcessor", "LineCrossingProcessor"],
    ),
    (
        "live/object-tracking/topology.json",
        &["ObjectTrackingProcessor"],
    ),
    (
        "live/spatial-analysis/person-count-operation-topology.json",
        &["CognitiveServicesVisionProcessor"],
    ),
    (
        "live/spatial-analysis/person-distance-operation-topology.json",
        &["CognitiveServicesVisionProcessor"],
    ),
    (
        "live/spatial-analysis/person-line-crossing-operation-topology.json",
        &["CognitiveServicesVisionProcessor"],
    ),
    (
        "live/spatial-analysis/person-zone-crossing-operation-topology.json",
        &["CognitiveServicesVisionProcessor"],
    ),
];

/// The LVA corpus: every file of a folder shares the same unsupported types (AssetSink is LVA's
/// Media Services sink, FrameRateFilterProcessor exists in 1.0 only).
fn lva_expected(rel: &str) -> Option<BTreeSet<&'static str>> {
    if !rel.starts_with("lva-") {
        return None;
    }
    let mut set = BTreeSet::new();
    let text = std::fs::read_to_string(corpus_dir()?.join(rel)).ok()?;
    for t in [
        "AssetSink",
        "FrameRateFilterProcessor",
        "CognitiveServicesVisionExtension",
    ] {
        if text.contains(&format!("MediaGraph{t}\"")) {
            set.insert(t);
        }
    }
    Some(set)
}

const BROKEN_JSON: &str = "live/spatial-analysis/custom-operation-topology.json";

#[test]
fn every_published_topology_validates_or_names_what_is_not_supported() {
    let Some(dir) = corpus_dir() else {
        println!("skipped: ../shared/ava-topologies not found");
        return;
    };
    let files = topology_files(&dir);
    assert!(
        files.len() >= 80,
        "corpus looks incomplete: {} files",
        files.len()
    );
    let mut failures = Vec::new();
    let (mut valid, mut unsupported) = (0, 0);
    for path in &files {
        let rel = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let options = LoadOptions {
            values: values_for(&text),
            ..LoadOptions::default()
        };
        let result = load_topology(&text, &options);
        let expected: Option<BTreeSet<&str>> = NOT_SUPPORTED
            .iter()
            .find(|(f, _)| *f == rel)
            .map(|(_, types)| types.iter().copied().collect())
            .or_else(|| lva_expected(&rel).filter(|s| !s.is_empty()));
        match (rel.as_str(), result) {
            (BROKEN_JSON, Err(errs)) => {
                let ok = errs.0.len() == 1
                    && errs.0[0].kind
                        == ErrorKind::Json {
                            line: 100,
                            column: 1015,
                        };
                if !ok {
                    failures.push(format!(
                        "{rel}: expected one JSON error at 100:1015, got {errs}"
                    ));
                }
            }
            (_, Ok(_)) if expected.is_none() && rel != BROKEN_JSON => valid += 1,
            (_, Ok(t)) => failures.push(format!(
                "{rel}: validated ({}), expected failure",
                t.summary()
            )),
            (_, Err(errs)) => {
                let Some(expected) = expected else {
                    failures.push(format!("{rel}: expected to validate, got:\n{errs}"));
                    continue;
                };
                if !errs.only_not_supported() {
                    failures.push(format!("{rel}: errors other than not supported:\n{errs}"));
                    continue;
                }
                let named: BTreeSet<&str> = expected
                    .iter()
                    .copied()
                    .filter(|t| errs.0.iter().any(|e| e.message.contains(t)))
                    .collect();
                if named != expected || errs.0.iter().any(|e| e.node.is_none()) {
                    failures.push(format!(
                        "{rel}: expected not supported {expected:?}, got:\n{errs}"
                    ));
                } else {
                    unsupported += 1;
                }
            }
        }
    }
    println!(
        "corpus: {} files, {valid} valid, {unsupported} with only not-supported nodes",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The EVR topologies whose nodes this project runs validate cleanly with parameter values given.
#[test]
fn evr_topologies_we_run_validate_cleanly() {
    let Some(dir) = corpus_dir() else {
        println!("skipped: ../shared/ava-topologies not found");
        return;
    };
    for name in [
        "evr-motion-file-sink",
        "evr-hubMessage-file-sink",
        "evr-motion-video-sink",
        "evr-motion-video-sink-file-sink",
        "evr-hubMessage-video-sink",
        "evr-httpExtension-video-sink",
        "motion-with-httpExtension",
        "cvr-video-sink",
        "motion-detection",
    ] {
        let path = dir.join("live").join(name).join("topology.json");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let options = LoadOptions {
            values: vec![ParameterValue {
                name: "rtspUrl".into(),
                value: "rtsp://127.0.0.1:8554/camera".into(),
                origin: ValueOrigin::CommandLine,
            }],
            pipeline_name: Some("pipeline1".into()),
            ..LoadOptions::default()
        };
        match load_topology(&text, &options) {
            Ok(t) => assert_eq!(t.pipeline_name, "pipeline1"),
            Err(e) => panic!("{name} should validate:\n{e}"),
        }
    }
}
