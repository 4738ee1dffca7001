//! Broken topologies written for the tests (tests/topologies/broken): each gives exactly the
//! expected errors, naming the JSON path and the node. Also parameters from live-pipeline files.

use std::path::{Path, PathBuf};

use vigil::topology::{
    ErrorKind, LoadOptions, ParameterValue, TopologyErrors, ValueOrigin,
    live_pipeline::parse_live_pipeline, load_topology,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(rel: &str, options: &LoadOptions) -> Result<vigil::topology::Topology, TopologyErrors> {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_default();
    load_topology(&text, options)
}

fn broken(name: &str) -> TopologyErrors {
    match load(
        &format!("tests/topologies/broken/{name}.json"),
        &LoadOptions::default(),
    ) {
        Ok(t) => panic!("{name} validated: {}", t.summary()),
        Err(e) => e,
    }
}

/// (file, [(JSON path, node, words the message must contain)]) — the complete list of errors.
type Expectation = (
    &'static str,
    &'static [(&'static str, Option<&'static str>, &'static str)],
);

const EXPECTED: &[Expectation] = &[
    (
        "grpc-shared-memory-too-small",
        &[(
            "$.properties.processors[0].dataTransfer.sharedMemorySizeMiB",
            Some("inference"),
            "1 MiB cannot hold one 3686400-byte frame of the raw image asked for; give at least 4 MiB",
        )],
    ),
    (
        "unknown-input",
        &[(
            "$.properties.processors[0].inputs[0].nodeName",
            Some("gate"),
            "input 'frontDoor' is not a node",
        )],
    ),
    (
        "cycle",
        &[(
            "$.properties.processors[2].inputs",
            Some("filterB"),
            "cycle: filterB -> filterA -> filterB",
        )],
    ),
    (
        "gate-feeds-processor",
        &[(
            "$.properties.processors[1].inputs",
            Some("detector"),
            "must feed a FileSink or VideoSink directly",
        )],
    ),
    (
        "missing-required",
        &[(
            "$.properties.sinks[0].baseDirectoryPath",
            Some("files"),
            "required property 'baseDirectoryPath' is missing",
        )],
    ),
    (
        "gate-out-of-range",
        &[(
            "$.properties.processors[0].maximumActivationTime",
            Some("gate"),
            "7200s is out of range (allowed 1s to 3600s)",
        )],
    ),
    (
        "bad-duration",
        &[(
            "$.properties.processors[0].activationSignalOffset",
            Some("gate"),
            "'5 seconds' is not an ISO 8601 duration",
        )],
    ),
    (
        "minimum-above-maximum",
        &[(
            "$.properties.processors[0].minimumActivationTime",
            Some("gate"),
            "(90s) is longer than maximumActivationTime (30s)",
        )],
    ),
    (
        "bad-selector",
        &[(
            "$.properties.processors[0].inputs[1].outputSelectors[0].operator",
            Some("gate"),
            "'equals' is not one of: is, isNot",
        )],
    ),
    (
        "unknown-node-type",
        &[(
            "$.properties.processors[1].@type",
            Some("blur"),
            "unknown node type '#Microsoft.VideoAnalyzer.FaceBlurProcessor'",
        )],
    ),
    (
        "undeclared-parameter",
        &[(
            "$.properties.sources[0].endpoint.url",
            Some("camera"),
            "'${cameraUrl}' refers to a parameter that is not declared",
        )],
    ),
    (
        "missing-parameter-value",
        &[(
            "$.properties.parameters[0]",
            None,
            "parameter 'rtspUrl' has no default and no value",
        )],
    ),
    (
        "duplicate-node-name",
        &[
            (
                "$.properties.sources[1].name",
                Some("camera"),
                "node name 'camera' is used by more than one node",
            ),
            (
                "$.properties.processors[0].inputs[0].nodeName",
                Some("gate"),
                "input 'doorSensor' is not a node",
            ),
        ],
    ),
    (
        "file-pattern-escapes",
        &[(
            "$.properties.sinks[0].fileNamePattern",
            Some("files"),
            "would leave the base directory",
        )],
    ),
    (
        "misspelt-property",
        &[(
            "$.properties.processors[0].minimumActivationTme",
            Some("gate"),
            "unknown property 'minimumActivationTme'",
        )],
    ),
    (
        "bad-enum",
        &[(
            "$.properties.sources[0].transport",
            Some("camera"),
            "'carrier-pigeon' is not one of: tcp, http, udp",
        )],
    ),
    (
        "sink-in-sources",
        &[(
            "$.properties.sources[2].@type",
            Some("files"),
            "FileSink is a Sink node and belongs in properties.sinks",
        )],
    ),
    (
        "gate-without-event",
        &[(
            "$.properties.processors[0].inputs",
            Some("gate"),
            "needs at least one event input",
        )],
    ),
    (
        "runtime-variable-misplaced",
        &[(
            "$.properties.sources[1].hubInputName",
            Some("doorSensor"),
            "only allowed in a FileSink's fileNamePattern",
        )],
    ),
    (
        "several-mistakes",
        &[
            (
                "$.properties.sources[0].endpoint.url",
                Some("camera"),
                "'http://camera/stream' is not a URL with scheme rtsp://",
            ),
            (
                "$.properties.processors[0].activationEvaluationWindow",
                Some("gate"),
                "30s is out of range (allowed 0s to 10s)",
            ),
            (
                "$.properties.sinks[0].maximumSizeMiB",
                Some("files"),
                "expected a number, found 'lots'",
            ),
        ],
    ),
];

#[test]
fn each_broken_topology_gives_exactly_its_errors() {
    let dir = repo().join("tests/topologies/broken");
    let mut covered = 0;
    for (name, expected) in EXPECTED {
        let errors = broken(name);
        let got: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.0.len(), expected.len(), "{name}: {got:#?}");
        for (path, node, words) in *expected {
            assert!(
                errors.0.iter().any(|e| e.path == *path
                    && e.node.as_deref() == *node
                    && e.message.contains(words)
                    && e.kind == ErrorKind::Invalid),
                "{name}: no error at {path} (node {node:?}) saying {words:?}; got {got:#?}"
            );
        }
        covered += 1;
    }
    // Every fixture on disk is covered by the table (plus the JSON one below).
    let on_disk = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        on_disk,
        covered + 1,
        "a fixture in tests/topologies/broken has no expectation"
    );
}

#[test]
fn invalid_json_reports_line_and_column() {
    let errors = broken("invalid-json");
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].kind, ErrorKind::Json { line: 5, column: 3 });
    assert_eq!(
        errors.0[0].to_string(),
        "line 5, column 3: invalid JSON: trailing comma"
    );
}

#[test]
fn our_topologies_validate_with_their_defaults() {
    for name in ["door-sensor-to-files", "motion-to-files"] {
        let t = load(&format!("topologies/{name}.json"), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert_eq!(t.pipeline_name, t.name);
    }
}

#[test]
fn parameters_substitute_into_every_string_and_defer_clip_times() {
    let options = LoadOptions {
        pipeline_name: Some("frontdoor".into()),
        values: vec![
            ParameterValue {
                name: "rtspUrl".into(),
                value: "rtsp://10.0.0.7/live".into(),
                origin: ValueOrigin::CommandLine,
            },
            ParameterValue {
                name: "triggerInput".into(),
                value: "door".into(),
                origin: ValueOrigin::CommandLine,
            },
        ],
        ..LoadOptions::default()
    };
    let t = load("topologies/door-sensor-to-files.json", &options).expect("valid");
    let Some(vigil::topology::NodeConfig::RtspSource(rtsp)) = t.node("camera").map(|n| &n.config)
    else {
        panic!("camera is not an RtspSource");
    };
    assert_eq!(rtsp.endpoint.url, "rtsp://10.0.0.7/live");
    let Some(vigil::topology::NodeConfig::FileSink(sink)) = t.node("files").map(|n| &n.config)
    else {
        panic!("files is not a FileSink");
    };
    assert_eq!(
        sink.file_name_pattern,
        "door-frontdoor-${System.Runtime.DateTime}"
    );
    assert_eq!(sink.maximum_size_mib, Some(1024));
    let Some(vigil::topology::NodeConfig::IotHubMessageSource(src)) =
        t.node("doorSensor").map(|n| &n.config)
    else {
        panic!("doorSensor is not an IotHubMessageSource");
    };
    assert_eq!(src.hub_input_name, "door");
}

#[test]
fn wrong_parameter_type_and_undeclared_value_are_reported() {
    let options = LoadOptions {
        values: vec![ParameterValue {
            name: "nope".into(),
            value: "1".into(),
            origin: ValueOrigin::CommandLine,
        }],
        ..LoadOptions::default()
    };
    let errors = load("topologies/door-sensor-to-files.json", &options).expect_err("undeclared");
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].path, "--set nope");
    assert!(errors.0[0].message.contains("not declared by the topology"));
}

#[test]
fn live_pipeline_document_names_the_pipeline_and_gives_values() {
    let Ok(text) = std::fs::read_to_string(
        repo().join("../shared/ava-topologies/samples/from-docs/livePipelineSet-EVRtoVideoSinkOnMotionDetection.json"),
    ) else {
        println!("skipped: ../shared/ava-topologies not found");
        return;
    };
    let live = parse_live_pipeline(&text).expect("valid live pipeline");
    assert_eq!(live.name, "Sample-Pipeline-1");
    let options = LoadOptions {
        live_pipeline: Some(live),
        ..LoadOptions::default()
    };
    let t = load(
        "../shared/ava-topologies/live/evr-motion-video-sink/topology.json",
        &options,
    )
    .expect("topology validates with the live pipeline's values");
    assert_eq!(t.pipeline_name, "Sample-Pipeline-1");
    assert_eq!(
        t.values.get("rtspUrl").map(String::as_str),
        Some("rtsp://rtspsim:554/media/lots_015.mkv")
    );
    // A live pipeline for another topology is refused.
    let other = load("topologies/door-sensor-to-files.json", &options).expect_err("wrong topology");
    assert!(other.0.iter().any(|e| {
        e.message
            .contains("is for topology 'EVRtoVideoSinkOnMotionDetection'")
    }));
}

/// A value that holds `${` is a plain value: a password or a directory with `${` in it is kept
/// as given (it used to be taken for an unbound parameter and dropped without a word).
#[test]
fn a_value_holding_dollar_brace_is_kept_as_given() {
    let value = |name: &str, value: &str| ParameterValue {
        name: name.into(),
        value: value.into(),
        origin: ValueOrigin::CommandLine,
    };
    let options = LoadOptions {
        values: vec![
            value("rtspPassword", "pa${ss}word"),
            value("outputDirectory", "/var/lib/vigil/${odd}"),
        ],
        ..LoadOptions::default()
    };
    let t = load("topologies/door-sensor-to-files.json", &options).expect("valid");
    let Some(vigil::topology::NodeConfig::RtspSource(rtsp)) = t.node("camera").map(|n| &n.config)
    else {
        panic!("camera is not an RtspSource");
    };
    match &rtsp.endpoint.credentials {
        Some(vigil::topology::model::Credentials::UsernamePassword { password, .. }) => {
            assert_eq!(password, "pa${ss}word")
        }
        other => panic!("credentials: {other:?}"),
    }
    let Some(vigil::topology::NodeConfig::FileSink(sink)) = t.node("files").map(|n| &n.config)
    else {
        panic!("files is not a FileSink");
    };
    assert_eq!(sink.base_directory_path, Path::new("/var/lib/vigil/${odd}"));
    // The reserved marker character cannot be smuggled in.
    let options = LoadOptions {
        values: vec![value("outputDirectory", "/x/\u{E000}unbound:y}")],
        ..LoadOptions::default()
    };
    let errors = load("topologies/door-sensor-to-files.json", &options)
        .expect_err("refused")
        .0;
    assert!(
        errors.iter().any(|e| e.message.contains("U+E000")),
        "{errors:?}"
    );
}

/// The door topology's document with `f` applied to it.
fn door_with(f: impl FnOnce(&mut serde_json::Value)) -> String {
    let text = std::fs::read_to_string(repo().join("topologies/door-sensor-to-files.json"))
        .expect("topology");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    f(&mut doc);
    doc.to_string()
}

/// Hostile documents are bounded: parameter expansion (a big default referenced many times
/// once took `validate` to 3.9 GB and passed), the number of parameters (60,000 took 13 s), the
/// document's size, and errors that repeat what they quote (109 KB gave 200 MB of errors).
#[test]
fn hostile_documents_are_refused_within_bounds() {
    let total_len = |e: &TopologyErrors| e.0.iter().map(|e| e.message.len()).sum::<usize>();
    // 100 KB default, referenced 60 times in one string and once in each of 60 strings.
    let bomb = door_with(|doc| {
        let p = &mut doc["properties"];
        p["parameters"].as_array_mut().expect("parameters").push(
            serde_json::json!({"name": "big", "type": "string", "default": "x".repeat(100_000)}),
        );
        p["sources"][0]["name"] = serde_json::json!("${big}".repeat(60));
        for i in 0..60 {
            p[format!("extra{i}")] = serde_json::json!("${big}");
        }
    });
    let errors = load_topology(&bomb, &LoadOptions::default()).expect_err("refused");
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.message.contains("expands to more than 64 KiB")),
        "{errors}"
    );
    assert!(
        total_len(&errors) < 64 * 1024,
        "{} bytes of errors",
        total_len(&errors)
    );

    let many = door_with(|doc| {
        let list = doc["properties"]["parameters"]
            .as_array_mut()
            .expect("parameters");
        for i in 0..60_000 {
            list.push(
                serde_json::json!({"name": format!("p{i}"), "type": "string", "default": "v"}),
            );
        }
    });
    assert!(many.len() > vigil::topology::MAX_TOPOLOGY_BYTES);
    let errors = load_topology(&many, &LoadOptions::default()).expect_err("refused");
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert!(errors.0[0].message.contains("at most 1 MiB"), "{errors}");

    let some = door_with(|doc| {
        let list = doc["properties"]["parameters"]
            .as_array_mut()
            .expect("parameters");
        for i in 0..5_000 {
            list.push(serde_json::json!({"name": format!("p{i}"), "type": "string"}));
        }
    });
    let errors = load_topology(&some, &LoadOptions::default()).expect_err("refused");
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.message.contains("at most 1000 parameters")),
        "{errors}"
    );

    // A long value quoted in an error is quoted short.
    let long = door_with(|doc| {
        doc["properties"]["sinks"][0]["fileNamePattern"] =
            serde_json::json!(format!("{}${{open", "y".repeat(100_000)));
    });
    let errors = load_topology(&long, &LoadOptions::default()).expect_err("refused");
    assert!(
        total_len(&errors) < 4096,
        "{} bytes of errors",
        total_len(&errors)
    );
}
