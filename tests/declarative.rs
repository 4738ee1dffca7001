//! `vigil serve --config DIR` against a real camera: the folder's pipelines run; a changed file
//! restarts only its pipeline while the others' clips run on without a gap; a broken file is
//! reported and changes nothing; an added file starts a pipeline and removing it stops it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::peers::{camera, free_port, http_post};
use support::service::{call, count_of, serve_with, wait_until};
use support::{clips, mp4_files, probe, repo, temp_dir};

fn pipeline_doc(name: &str, cam_port: u16, out: &Path) -> Value {
    json!({
        "@apiVersion": "1.1",
        "name": name,
        "properties": {
            "topologyName": "DoorSensorToFiles",
            "parameters": [
                {"name": "rtspUrl", "value": format!("rtsp://127.0.0.1:{cam_port}/camera")},
                {"name": "outputDirectory", "value": out.display().to_string()},
                {"name": "minActivation", "value": "PT60S"},
                {"name": "maxActivation", "value": "PT60S"}
            ]
        }
    })
}

fn write(path: &Path, doc: &Value) {
    // Written beside and renamed, as an editor or a config tool does.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, doc.to_string()).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn trigger(http_port: u16, pipeline: &str) {
    let url = format!("http://127.0.0.1:{http_port}/pipelines/{pipeline}/inputs/recordingTrigger");
    assert_eq!(http_post(&url, "{}"), 202, "trigger for {pipeline}");
}

/// Events whose subject is `subject`.
fn events_at(log: &Path, subject: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["properties"]["subject"] == subject)
        .collect()
}

/// The largest step between two consecutive video packets' timestamps, in seconds.
fn largest_step(file: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    assert!(
        times.len() > 100,
        "{}: {} packets",
        file.display(),
        times.len()
    );
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

#[test]
fn a_changed_file_restarts_only_its_pipeline() {
    let dir = temp_dir("declarative");
    let config = dir.join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    let (cam_port, http_port) = (free_port(), free_port());
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let out = |name: &str| -> PathBuf { dir.join(name) };
    std::fs::copy(
        repo().join("topologies/door-sensor-to-files.json"),
        config.join("door-topology.json"),
    )
    .expect("topology");
    for name in ["a", "b", "c"] {
        write(
            &config.join(format!("{name}.json")),
            &pipeline_doc(name, cam_port, &out(&format!("out-{name}"))),
        );
    }
    let log = dir.join("events.jsonl");
    let mut vigil = serve_with(
        &dir,
        http_port,
        &["--config", config.to_str().expect("path")],
    );
    wait_until(
        "the three pipelines connect",
        Duration::from_secs(30),
        || {
            ["a", "b", "c"]
                .iter()
                .all(|p| count_of(&log, p, "MediaSessionEstablished") == 1)
        },
    );
    for p in ["a", "b", "c"] {
        trigger(http_port, p);
    }
    wait_until("three recordings start", Duration::from_secs(20), || {
        ["a", "b", "c"]
            .iter()
            .all(|p| count_of(&log, p, "RecordingStarted") == 1)
    });
    let recording_since = Instant::now();
    std::thread::sleep(Duration::from_secs(2));

    // c's file changes: c alone is restarted, with its new output directory.
    write(
        &config.join("c.json"),
        &pipeline_doc("c", cam_port, &out("out-c2")),
    );
    wait_until("c is restarted", Duration::from_secs(30), || {
        count_of(&log, "c", "LivePipelineActivated") == 2
            && count_of(&log, "c", "MediaSessionEstablished") == 2
    });
    assert_eq!(count_of(&log, "c", "LivePipelineDeactivated"), 1);
    trigger(http_port, "c");
    wait_until("c records again", Duration::from_secs(20), || {
        count_of(&log, "c", "RecordingStarted") == 2
    });

    // A broken b.json is reported, naming the file; b keeps running its version.
    std::fs::write(config.join("b.json"), "{ \"name\": \"b\", ").expect("write");
    wait_until(
        "the broken file is reported",
        Duration::from_secs(10),
        || !events_at(&log, "/config/b.json").is_empty(),
    );
    let reported = events_at(&log, "/config/b.json");
    assert_eq!(
        reported[0]["properties"]["eventType"],
        "Microsoft.VideoAnalyzer.Diagnostics.ConfigurationError"
    );
    let detail = reported[0]["body"]["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with("not JSON"), "{detail}");
    assert!(detail.ends_with("stays in force"), "{detail}");

    // A file whose pipeline does not bind (a parameter the topology lacks) is refused before
    // anything stops: a keeps running.
    let mut unbound = pipeline_doc("a", cam_port, &out("out-a"));
    unbound["properties"]["parameters"]
        .as_array_mut()
        .expect("parameters")
        .push(json!({"name": "noSuchParameter", "value": "1"}));
    write(&config.join("a.json"), &unbound);
    wait_until(
        "the unbindable file is reported",
        Duration::from_secs(10),
        || !events_at(&log, "/config/a.json").is_empty(),
    );
    let refused = &events_at(&log, "/config/a.json")[0]["body"];
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("does not bind")),
        "{refused}"
    );

    // An added file starts its pipeline; removing it stops and deletes it.
    write(
        &config.join("d.json"),
        &pipeline_doc("d", cam_port, &out("out-d")),
    );
    wait_until("d connects", Duration::from_secs(30), || {
        count_of(&log, "d", "MediaSessionEstablished") == 1
    });
    std::fs::remove_file(config.join("d.json")).expect("rm");
    wait_until("d is stopped", Duration::from_secs(20), || {
        count_of(&log, "d", "LivePipelineDeactivated") == 1
    });
    wait_until("d is deleted", Duration::from_secs(10), || {
        call(
            http_port,
            "livePipelineGet",
            &json!({"@apiVersion": "1.1", "name": "d"}),
        )
        .0 == 404
    });
    std::thread::sleep(Duration::from_secs(2));
    let recorded_for = recording_since.elapsed().as_secs_f64();
    vigil.interrupt();

    // a and b were never stopped: one clip each, from their trigger to the end, without a gap.
    for p in ["a", "b"] {
        assert_eq!(count_of(&log, p, "LivePipelineActivated"), 1, "{p}");
        assert_eq!(count_of(&log, p, "LivePipelineDeactivated"), 0, "{p}");
        let files = mp4_files(&out(&format!("out-{p}")));
        assert_eq!(files.len(), 1, "{p}: {files:?}");
        let step = largest_step(&files[0]);
        assert!(
            step < 0.2,
            "{p}: a gap of {step:.3} s in {}",
            files[0].display()
        );
        // The clip began before `recording_since` and closed at the interrupt.
        let seconds = probe(&files[0]).duration;
        assert!(
            seconds >= recorded_for,
            "{p}: {seconds:.1} s < {recorded_for:.1} s"
        );
    }
    assert_eq!(mp4_files(&out("out-c")).len(), 1);
    assert_eq!(mp4_files(&out("out-c2")).len(), 1);
    let applied: Vec<Value> = events_at(&log, "/config");
    assert!(
        applied
            .iter()
            .any(|e| e["body"]["stopped"] == json!(["c"]) && e["body"]["started"] == json!(["c"])),
        "{applied:?}"
    );
}
