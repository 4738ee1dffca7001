//! `vigil serve --cluster`: three nodes on a three-server NATS cluster (JetStream, in a network
//! namespace of its own: another host), twelve continuous recordings of four real cameras. The
//! control API answers on every node; each pipeline is recorded by exactly one node; a node
//! killed with `kill -9` has its pipelines taken over by the others within the lease time (the
//! recording gap measured from each node's archive); a node whose link is cut stops before the
//! others take over; losing a NATS server changes nothing; a node that stops cleanly hands its
//! pipelines over at once; a node that comes back takes nothing away from the others; a
//! deactivation sent to any node stops the recording wherever it runs.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::{
    CAMERAS, Member, NAMES, NatsCluster, PIPELINES, Triggers, cvr_pipeline, nats_server, ranges,
    seconds, set_cvr_topology, ttl_s,
};
use support::peers::{Peer, camera, free_port};
use support::service::{call, wait_until};
use support::{clips, repo, temp_dir};

/// Where `pipeline`'s media stops in `before` (the node that lost it) and the hole until it
/// starts in `after` (the node that took it over), in ms; the recordings must not overlap and
/// the hole must be at most the lease time plus 2 s.
fn handover(pipeline: &str, before: &[(i64, i64)], after: &[(i64, i64)]) -> (i64, i64) {
    let last_end = before
        .iter()
        .map(|r| r.1)
        .max()
        .unwrap_or_else(|| panic!("{pipeline}: no media before the hand-over"));
    let first_start = after
        .iter()
        .map(|r| r.0)
        .min()
        .unwrap_or_else(|| panic!("{pipeline}: no media after the hand-over"));
    let gap_ms = first_start - last_end;
    assert!(
        gap_ms >= 0,
        "{pipeline}: recorded by two nodes for {} ms",
        -gap_ms
    );
    assert!(
        gap_ms <= (ttl_s() as i64 + 2) * 1000,
        "{pipeline}: {gap_ms} ms of media missing with a {} s lease",
        ttl_s()
    );
    (last_end, gap_ms)
}

fn states(port: u16) -> Vec<(String, String)> {
    let (status, payload) = call(port, "livePipelineList", &json!({}));
    assert_eq!(status, 200, "{payload}");
    let mut out: Vec<(String, String)> = payload["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["properties"]["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every pipeline in `state`, in the order `states` gives (by name).
fn all_in(state: &str) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = (0..PIPELINES)
        .map(|i| (format!("p{i}"), state.to_string()))
        .collect();
    all.sort();
    all
}

/// The cluster tests run one at a time: each starts three NATS servers, four cameras and three
/// members with twelve recordings, which is what two cores carry without starving the timing.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A three-server NATS cluster on another host (a network namespace), four looping cameras and
/// three members recording `PIPELINES` continuous pipelines, four each, with 3 s of media in
/// every video.
struct Fixture {
    // The triggers and members before the servers and cameras they use; the lock last.
    _triggers: Triggers,
    peers: Vec<Option<Peer>>,
    members: Vec<Member>,
    nats: NatsCluster,
    _cameras: Vec<Peer>,
    cam_ports: Vec<u16>,
    /// Where the pipelines' triggered clips go.
    clips: std::path::PathBuf,
    /// The members' lease time, seconds.
    ttl: u64,
    /// What each member recorded once all were placed.
    held: Vec<Vec<String>>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Fixture {
    fn start(name: &str) -> Self {
        Self::start_with_lease(name, ttl_s())
    }

    /// The same with leases of `ttl` seconds.
    fn start_with_lease(name: &str, ttl: u64) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = temp_dir(name);
        let nats = NatsCluster::start(&dir.join("nats"), 3);
        let cam_ports: Vec<u16> = (0..CAMERAS).map(|_| free_port()).collect();
        let cameras = cam_ports
            .iter()
            .map(|p| camera(&clips().join("camera-h264.mp4"), *p, "vigil", "vigil"))
            .collect();
        let members = Member::in_folders(&dir, 3);
        let peers = members
            .iter()
            .enumerate()
            .map(|(i, m)| Some(m.join(&nats, i, ttl)))
            .collect();
        // JetStream's meta leader is elected and every node's heartbeat is in before anything
        // is activated (fair shares of 4).
        std::thread::sleep(Duration::from_millis(2500));
        // Triggers every 2 s for every pipeline, wherever it runs (each writes a clip file).
        let triggers = Triggers::start(&nats.url_for(2), NAMES);
        let mut fixture = Self {
            _triggers: triggers,
            peers,
            members,
            nats,
            _cameras: cameras,
            cam_ports,
            clips: dir.join("clips"),
            ttl,
            held: Vec::new(),
            _turn: turn,
        };
        fixture.place();
        fixture
    }

    /// (Re)starts member `i`.
    fn start_member(&mut self, i: usize) {
        self.peers[i] = Some(self.members[i].join(&self.nats, i, self.ttl));
    }

    /// Sets the topology and the pipelines (calls spread over the nodes: any node answers for
    /// the cluster) and waits until each is recorded somewhere, with 3 s of media.
    fn place(&mut self) {
        let members = &self.members;
        set_cvr_topology(members[0].port);
        for i in 0..PIPELINES {
            let port = members[i % 3].port;
            let (status, payload) = call(port, "livePipelineSet", &self.pipeline(i));
            assert_eq!(status, 201, "{payload}");
            let (status, payload) = call(
                port,
                "livePipelineActivate",
                &json!({"name": format!("p{i}")}),
            );
            assert_eq!(status, 200, "{payload}");
        }
        wait_until(
            "every pipeline recorded by a node",
            Duration::from_secs(30),
            || members.iter().map(|m| m.holds().len()).sum::<usize>() == PIPELINES,
        );
        let held: Vec<Vec<String>> = members.iter().map(Member::holds).collect();
        assert!(
            held.iter().all(|h| h.len() == PIPELINES / 3),
            "fair shares: {held:?}"
        );
        for m in members {
            assert_eq!(states(m.port), all_in("Active"), "{}", m.node);
        }
        wait_until(
            "3 s of media in every video",
            Duration::from_secs(30),
            || {
                (0..PIPELINES).all(|i| {
                    let owner = held
                        .iter()
                        .position(|h| h.contains(&format!("p{i}")))
                        .unwrap_or(0);
                    seconds(&ranges(members[owner].port, &format!("v{i}"))) >= 3.0
                })
            },
        );
        self.held = held;
    }

    /// Live pipeline `p<i>` recording camera `i % CAMERAS` into video `v<i>`.
    fn pipeline(&self, i: usize) -> Value {
        cvr_pipeline(i, self.cam_ports[i % CAMERAS], &self.clips)
    }

    /// Sets one more pipeline (`p<PIPELINES>`) through member `set_via` and activates it
    /// through member `activate_via`; its name.
    fn add_pipeline(&self, set_via: usize, activate_via: usize) -> String {
        let name = format!("p{PIPELINES}");
        let (status, payload) = call(
            self.members[set_via].port,
            "livePipelineSet",
            &self.pipeline(PIPELINES),
        );
        assert_eq!(status, 201, "{payload}");
        let (status, payload) = call(
            self.members[activate_via].port,
            "livePipelineActivate",
            &json!({ "name": name }),
        );
        assert_eq!(status, 200, "{payload}");
        name
    }

    /// The member that records `pipeline` now, other than `except`.
    fn owner(&self, pipeline: &str, except: Option<usize>) -> Option<usize> {
        (0..self.members.len()).find(|i| {
            Some(*i) != except && self.members[*i].holds().contains(&pipeline.to_string())
        })
    }
}

#[test]
fn three_nodes_record_each_pipeline_once_and_take_over_a_dead_ones() {
    let mut fixture = Fixture::start("cluster-kill");
    let held = fixture.held.clone();
    let members = &fixture.members;
    let nats = &fixture.nats;
    let peers = &mut fixture.peers;

    // kill -9 of the node recording p0: the others take its four pipelines.
    let victim = held
        .iter()
        .position(|h| h.contains(&"p0".to_string()))
        .unwrap_or(0);
    let moved = held[victim].clone();
    let killed_at = jiff::Timestamp::now().as_millisecond();
    if let Some(mut peer) = peers[victim].take() {
        peer.kill9();
    }
    wait_until(
        "the dead node's pipelines taken over",
        Duration::from_secs(ttl_s() + 10),
        || {
            members
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != victim)
                .flat_map(|(_, m)| m.holds())
                .count()
                == PIPELINES
        },
    );
    std::thread::sleep(Duration::from_secs(4));
    // The triggers published every 2 s reach each moved pipeline on its new node: it writes
    // their clips.
    for name in &moved {
        let heir = (0..members.len())
            .find(|i| *i != victim && members[*i].holds().contains(name))
            .expect("a new owner");
        wait_until(
            "a triggered clip on the new owner",
            Duration::from_secs(10),
            || {
                members[heir]
                    .sink_kinds(name, "files")
                    .contains(&"RecordingStarted".to_string())
            },
        );
    }
    // The dead node's archive, read by a playback-only service (its crash repaired).
    let dead_port = free_port();
    let _dead_archive = support::archive::serve(&members[victim].dir.join("archive"), dead_port);
    let mut gaps = Vec::new();
    for name in &moved {
        let video = name.replace('p', "v");
        let before = ranges(dead_port, &video);
        let heir = members
            .iter()
            .position(|m| m.node != members[victim].node && m.holds().contains(name))
            .expect("a new owner");
        let after = ranges(members[heir].port, &video);
        let (last_end, gap_ms) = handover(name, &before, &after);
        assert!(
            last_end <= killed_at + 1500,
            "{name}: the dead node's media ends at the kill"
        );
        assert!(
            seconds(&after) >= 3.0,
            "{name}: the new owner records: {after:?}"
        );
        gaps.push(gap_ms);
    }
    eprintln!(
        "cluster: kill -9 with a {} s lease: recording gaps {gaps:?} ms",
        ttl_s()
    );
    // The pipelines the dead node did not hold never stopped.
    for (i, h) in held.iter().enumerate().filter(|(i, _)| *i != victim) {
        for name in h {
            let r = ranges(members[i].port, &name.replace('p', "v"));
            assert_eq!(r.len(), 1, "{name} on {}: {r:?}", members[i].node);
        }
    }

    // The dead node comes back: it takes nothing away from the others (sticky).
    peers[victim] = Some(members[victim].join(nats, victim, ttl_s()));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        members[victim].holds(),
        Vec::<String>::new(),
        "the returning node took a pipeline from a live node"
    );
    assert_eq!(states(members[victim].port), all_in("Active"));

    // A deactivation sent to the returned node stops p0 where it runs, and is answered once
    // it stopped.
    let owner = members
        .iter()
        .position(|m| m.holds().contains(&"p0".to_string()))
        .expect("p0's owner");
    let (status, payload) = call(
        members[victim].port,
        "livePipelineDeactivate",
        &json!({"name": "p0"}),
    );
    assert_eq!(status, 200, "{payload}");
    let stopped = members[owner]
        .kinds_of("p0")
        .iter()
        .filter(|k| *k == "LivePipelineDeactivated")
        .count();
    assert_eq!(stopped, 1, "p0 stopped on {}", members[owner].node);
    for m in members {
        wait_until("p0 Inactive everywhere", Duration::from_secs(5), || {
            states(m.port).contains(&("p0".to_string(), "Inactive".to_string()))
        });
    }

    // A node stopped cleanly hands its pipelines over at once, not after the lease time.
    let leaving = (0..3)
        .find(|i| *i != victim && !members[*i].holds().is_empty())
        .expect("a node with work");
    let handed = members[leaving].holds();
    let left_at = std::time::Instant::now();
    if let Some(mut peer) = peers[leaving].take() {
        peer.interrupt();
    }
    wait_until(
        "the leaving node's pipelines taken over",
        Duration::from_secs(ttl_s() + 10),
        || {
            handed.iter().all(|name| {
                members
                    .iter()
                    .enumerate()
                    .any(|(i, m)| i != leaving && m.holds().contains(name))
            })
        },
    );
    let handover = left_at.elapsed();
    eprintln!("cluster: clean stop: pipelines taken over after {handover:?}");
    assert!(
        handover < Duration::from_secs(ttl_s()),
        "a clean stop waited for the lease time: {handover:?}"
    );
    for peer in peers.iter_mut().flatten() {
        peer.interrupt();
    }
}

/// A node cut off from NATS stops recording its pipelines before their leases can expire, and
/// the others take them once they have: the two recordings of a pipeline never overlap. When the
/// link returns, the node records nothing twice and takes new work again.
#[test]
fn a_node_cut_off_stops_before_the_others_take_over() {
    let fixture = Fixture::start("cluster-partition");
    let members = &fixture.members;
    let moved = fixture.held[0].clone();
    let cut_at = std::time::Instant::now();
    fixture.nats.cut(0);
    wait_until(
        "the cut-off node stops its pipelines",
        Duration::from_secs(ttl_s() + 2),
        || {
            moved
                .iter()
                .all(|n| members[0].kinds_of(n).contains(&"LeaseLapsed".to_string()))
        },
    );
    let stopped_after = cut_at.elapsed();
    wait_until(
        "the others take its pipelines",
        Duration::from_secs(ttl_s() + 10),
        || moved.iter().all(|n| fixture.owner(n, Some(0)).is_some()),
    );
    let taken_after = cut_at.elapsed();
    assert!(
        stopped_after < Duration::from_secs(ttl_s()),
        "stopped {stopped_after:?} after the cut"
    );
    std::thread::sleep(Duration::from_secs(4));
    let mut gaps = Vec::new();
    let mut before_restore = Vec::new();
    for name in &moved {
        let video = name.replace('p', "v");
        let heir = fixture.owner(name, Some(0)).expect("a new owner");
        let before = ranges(members[0].port, &video);
        let after = ranges(members[heir].port, &video);
        let (_, gap_ms) = handover(name, &before, &after);
        gaps.push(gap_ms);
        before_restore.push(before);
    }
    eprintln!(
        "cluster: partition ({}) with a {} s lease: stopped after {stopped_after:?}, taken over after {taken_after:?}, gaps {gaps:?} ms",
        if fixture.nats.namespaced() {
            "link down"
        } else {
            "relays cut"
        },
        ttl_s()
    );

    fixture.nats.restore(0);
    let restored_at = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    // Back: it takes nothing from the others and its archive did not grow.
    assert_eq!(members[0].holds(), Vec::<String>::new());
    for (name, before) in moved.iter().zip(&before_restore) {
        assert_eq!(
            &ranges(members[0].port, &name.replace('p', "v")),
            before,
            "{name}"
        );
    }
    // New work goes to it (the others hold more than their fair share of 13, 5).
    fixture.add_pipeline(1, 1);
    wait_until(
        "the returned node takes the new pipeline",
        Duration::from_secs(15),
        || members[0].holds() == vec![format!("p{PIPELINES}")],
    );
    eprintln!(
        "cluster: partition healed: the node took new work {:?} after its link came back",
        restored_at.elapsed()
    );
    wait_until(
        "its states are the cluster's",
        Duration::from_secs(5),
        || states(members[0].port).len() == NAMES,
    );
    // The cut node reported the outage once and its end; the others had none.
    assert_eq!(
        members[0].cluster_kinds(),
        ["NetworkError", "ClusterReconnected"],
        "member 0's /cluster events"
    );
    for m in &members[1..] {
        assert!(!m.cluster_kinds().contains(&"NetworkError".to_string()));
    }
}

/// AVA's methods as NATS requests (answered by one member), a trigger published on NATS
/// reaching the pipeline on whichever member records it, and that pipeline's events on NATS.
#[test]
fn methods_triggers_and_events_travel_on_nats() {
    let dir = temp_dir("cluster-subjects");
    let (nats_port, cam_port) = (free_port(), free_port());
    let _nats = nats_server(&dir.join("nats"), nats_port);
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let members = Member::in_folders(&dir, 2);
    let _peers: Vec<Peer> = members.iter().map(|m| m.start(nats_port)).collect();
    let out = dir.join("clips");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(format!("127.0.0.1:{nats_port}"))
            .await
            .expect("NATS");
        let call = |method: &'static str, payload: Value| {
            let client = client.clone();
            async move {
                let reply = client
                    .request(
                        format!("vigil.methods.{method}"),
                        payload.to_string().into(),
                    )
                    .await
                    .expect("an answer");
                serde_json::from_slice::<Value>(&reply.payload).expect("JSON")
            }
        };
        let text = std::fs::read_to_string(repo().join("topologies/door-sensor-to-files.json"))
            .expect("topology");
        let topology: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(call("pipelineTopologySet", topology).await["status"], 201);
        let live = json!({"name": "door", "properties": {"topologyName": "DoorSensorToFiles", "parameters": [
            {"name": "rtspUrl", "value": format!("rtsp://127.0.0.1:{cam_port}/camera")},
            {"name": "outputDirectory", "value": out.display().to_string()},
            {"name": "minActivation", "value": "PT3S"}]}});
        assert_eq!(call("livePipelineSet", live).await["status"], 201);
        let unknown = call("pipelineTopologyRename", json!({})).await;
        assert_eq!(unknown["status"], 501, "{unknown}");
        let mut events = client.subscribe("vigil.events.door").await.expect("subscribe");
        assert_eq!(
            call("livePipelineActivate", json!({"name": "door"})).await["status"],
            200
        );
        next_event(&mut events, "MediaSessionEstablished").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        client
            .publish(
                "vigil.pipelines.door.inputs.recordingTrigger",
                json!({"body": {"door": "open"}}).to_string().into(),
            )
            .await
            .expect("publish");
        client.flush().await.expect("flush");
        let started = next_event(&mut events, "RecordingStarted").await;
        assert_eq!(started["properties"]["subject"], "/livePipelines/door/sinks/files");
        next_event(&mut events, "RecordingAvailable").await;

        // An HTTP trigger may reach either member: the one that does not record the pipeline
        // forwards it on NATS (202), and the recording member opens its gate.
        let records = |m: &Member| {
            m.kinds_of("door")
                .into_iter()
                .rfind(|k| k.starts_with("Lease"))
                .is_some_and(|k| k == "LeaseAcquired")
        };
        let other = members
            .iter()
            .find(|m| !records(m))
            .expect("a member that does not record door");
        let send = |pipeline: &str, body: &str| {
            post(
                &format!(
                    "http://127.0.0.1:{}/pipelines/{pipeline}/inputs/recordingTrigger",
                    other.port
                ),
                body,
            )
        };
        let trigger = |pipeline: &str| send(pipeline, r#"{"body": {"door": "open"}}"#);
        // A malformed body is forwarded too (the recording member reports it), and the caller
        // learns why, as from the recording member itself.
        let (status, body) = send("door", "not json");
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("not JSON"), "{body}");
        let (status, body) = trigger("door");
        assert_eq!(status, 202, "{body}");
        assert!(body.contains("forwarded to member"), "{body}");
        let started = next_event(&mut events, "RecordingStarted").await;
        assert_eq!(started["properties"]["subject"], "/livePipelines/door/sinks/files");
        next_event(&mut events, "RecordingAvailable").await;
        // A pipeline no member records: 404, saying so.
        let (status, body) = trigger("nobody");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("no member records 'nobody'"), "{body}");
    });
    let files = support::mp4_files(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        assert!(support::probe(file).frames > 0, "{file:?}");
    }
}

/// POSTs JSON `body` to `url` with curl: (status, answer).
fn post(url: &str, body: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            "content-type: application/json",
        ])
        .args(["--data-binary", body, url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (answer, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), answer.to_string())
}

/// The next event of kind `kind` on `events`, within 30 s.
async fn next_event(events: &mut async_nats::Subscriber, kind: &str) -> Value {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let message = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event on NATS in time"))
            .expect("a message");
        let event: Value = serde_json::from_slice(&message.payload).expect("JSON");
        if event["properties"]["eventType"]
            .as_str()
            .is_some_and(|t| t.ends_with(&format!(".{kind}")))
        {
            return event;
        }
    }
}

/// Three NATS servers in a JetStream cluster (buckets with three replicas): one of them killed,
/// the members connected to it move to the others, nothing stops recording and no lease is lost,
/// and the control API still places new work.
#[test]
fn losing_one_nats_server_of_three_changes_nothing() {
    // A lease must outlast the NATS cluster's election of a new leader for the streams the
    // dead server led (4–9 s in nats-server): 15 s leases do (README "Scale-out").
    let mut fixture = Fixture::start_with_lease("cluster-nats3", 15);
    let held = fixture.held.clone();
    fixture.nats.kill(0);
    // Past the moment the last lease written before the kill would have lapsed.
    std::thread::sleep(Duration::from_secs(15));
    let members = &fixture.members;
    let lease_events: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            (0..PIPELINES)
                .flat_map(|i| {
                    let kinds = m.kinds_of(&format!("p{i}"));
                    kinds
                        .into_iter()
                        .filter(|k| k.starts_with("Lease"))
                        .map(move |k| format!("p{i} {k}"))
                })
                .collect()
        })
        .collect();
    assert_eq!(
        members.iter().map(Member::holds).collect::<Vec<_>>(),
        held,
        "each member's lease events: {lease_events:?}"
    );
    for (i, owned) in held.iter().enumerate() {
        for name in owned {
            let r = ranges(members[i].port, &name.replace('p', "v"));
            assert_eq!(r.len(), 1, "{name} recorded without a break: {r:?}");
            assert!(seconds(&r) >= 15.0, "{name}: {r:?}");
        }
    }
    // The control API still writes (to the two servers left) and new work is placed; the set
    // goes to one node and the activation at once to another, which must see it.
    let name = fixture.add_pipeline(1, 2);
    wait_until("the new pipeline placed", Duration::from_secs(15), || {
        members.iter().any(|m| m.holds().contains(&name))
    });
}

/// Every node restarted in turn (SIGINT, then started again): each pipeline's recording, read
/// from all the nodes' archives together, has no overlap and no hole longer than a hand-over.
#[test]
fn a_rolling_restart_loses_only_the_handovers() {
    let mut fixture = Fixture::start("cluster-rolling");
    for i in 0..3 {
        if let Some(mut peer) = fixture.peers[i].take() {
            peer.interrupt();
        }
        fixture.start_member(i);
        std::thread::sleep(Duration::from_secs(3));
        wait_until(
            "every pipeline recorded again",
            Duration::from_secs(ttl_s() + 10),
            || (0..PIPELINES).all(|p| fixture.owner(&format!("p{p}"), None).is_some()),
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let mut worst = 0;
    for p in 0..PIPELINES {
        let video = format!("v{p}");
        let mut all: Vec<(i64, i64)> = fixture
            .members
            .iter()
            .flat_map(|m| ranges(m.port, &video))
            .collect();
        all.sort();
        for pair in all.windows(2) {
            let hole = pair[1].0 - pair[0].1;
            assert!(hole >= 0, "v{p} recorded twice for {} ms: {all:?}", -hole);
            assert!(hole <= 3000, "v{p}: a hole of {hole} ms: {all:?}");
            worst = worst.max(hole);
        }
    }
    eprintln!("cluster: rolling restart: longest hole {worst} ms");
}

/// `--capacity`: a node of capacity 1 beside one of 3 records one pipeline of four; a fifth,
/// beyond every node's room, is reported (`PipelineUnplaced`) and starts once room is made.
#[test]
fn a_node_records_no_more_than_its_capacity() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = temp_dir("cluster-capacity");
    let (nats_port, cam_port) = (free_port(), free_port());
    let _nats = nats_server(&dir.join("nats"), nats_port);
    let _camera = camera(&clips().join("camera-h264.mp4"), cam_port, "vigil", "vigil");
    let members = Member::in_folders(&dir, 2);
    let url = format!("nats://127.0.0.1:{nats_port}");
    let ttl = ttl_s().to_string();
    let _peers: Vec<Peer> = [("1", &members[0]), ("3", &members[1])]
        .iter()
        .map(|(capacity, m)| m.start_with(&url, &["--lease-ttl", &ttl, "--capacity", capacity]))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    set_cvr_topology(members[0].port);
    let activate = |i: usize| {
        let (status, payload) = call(
            members[i % 2].port,
            "livePipelineSet",
            &cvr_pipeline(i, cam_port, &dir.join("clips")),
        );
        assert_eq!(status, 201, "{payload}");
        let name = json!({"name": format!("p{i}")});
        let (status, payload) = call(members[i % 2].port, "livePipelineActivate", &name);
        assert_eq!(status, 200, "{payload}");
    };
    (0..4).for_each(activate);
    wait_until("four pipelines placed", Duration::from_secs(20), || {
        members[0].holds().len() + members[1].holds().len() == 4
    });
    assert_eq!((members[0].holds().len(), members[1].holds().len()), (1, 3));
    activate(4);
    wait_until(
        "the fifth reported by both",
        Duration::from_secs(10),
        || {
            members
                .iter()
                .all(|m| m.kinds_of("p4").contains(&"PipelineUnplaced".to_string()))
        },
    );
    assert!(
        members
            .iter()
            .all(|m| !m.holds().contains(&"p4".to_string()))
    );
    // A trigger for the fifth while nobody records it: every member holds it, and the one
    // that takes the pipeline delivers it (its clip is written).
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(&url).await.expect("NATS");
        let trigger = json!({"systemProperties": {"messageId": "held-for-p4"}}).to_string();
        client
            .publish("vigil.pipelines.p4.inputs.recordingTrigger", trigger.into())
            .await
            .expect("published");
        client.flush().await.expect("flushed");
    });
    // Over HTTP to either member: held as well (202, saying so).
    let (status, answer) = post(
        &format!(
            "http://127.0.0.1:{}/pipelines/p4/inputs/recordingTrigger",
            members[1].port
        ),
        &json!({"systemProperties": {"messageId": "held-over-http"}}).to_string(),
    );
    assert_eq!(status, 202, "{answer}");
    assert!(
        answer.starts_with("held: no member records 'p4'"),
        "{answer}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let (status, payload) = call(
        members[0].port,
        "livePipelineDeactivate",
        &json!({"name": "p0"}),
    );
    assert_eq!(status, 200, "{payload}");
    wait_until(
        "the fifth placed once room is made",
        Duration::from_secs(10),
        || {
            members
                .iter()
                .any(|m| m.holds().contains(&"p4".to_string()))
        },
    );
    let taker = members
        .iter()
        .position(|m| m.holds().contains(&"p4".to_string()))
        .expect("a member records p4");
    let delivered: Vec<Value> = members[taker]
        .events()
        .into_iter()
        .filter(|e| {
            e["properties"]["eventType"]
                .as_str()
                .is_some_and(|t| t.ends_with(".HeldTriggersDelivered"))
        })
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["properties"]["subject"], "/livePipelines/p4");
    assert_eq!(
        delivered[0]["body"]["count"], 2,
        "the NATS and the HTTP trigger"
    );
    assert_eq!(delivered[0]["body"]["refused"], 0);
    wait_until("the held trigger's clip", Duration::from_secs(15), || {
        members[taker]
            .sink_kinds("p4", "files")
            .contains(&"RecordingStarted".to_string())
    });
    assert!(
        !members[1 - taker]
            .kinds_of("p4")
            .contains(&"HeldTriggersDelivered".to_string())
    );
    assert_eq!(
        members[0].holds().len() + members[1].holds().len(),
        4,
        "{:?} {:?}",
        members[0].holds(),
        members[1].holds()
    );
}
