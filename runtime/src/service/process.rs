//! The process around a [`Service`]: one tokio runtime, the object store, the event log, one MQTT
//! connection (triggers and method calls in, events out), one HTTP listener (triggers, methods,
//! metrics, playback and the web page), and SIGINT/SIGTERM, on which every pipeline closes its
//! clips before the process exits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::{mpsc, watch};

use super::archives::Archives;
use super::documents::Documents;
use super::inputs::InputRouter;
use super::registry::{PipelineEntry, PipelineState, SystemData, TopologyEntry, now_text};
use super::{Limits, Service};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::bus::mqtt::{
    HomeAssistantLink, Inbound, MqttSetup, method_response_topic, parse_broker, run_mqtt,
};
use crate::nodes::rtsp_source::wall_now;
use crate::pipeline::live::{LiveContext, LiveOptions};

/// How the process is set up.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// Address of the HTTP listener.
    pub http: String,
    /// MQTT broker, `HOST[:PORT]`.
    pub mqtt: Option<String>,
    /// MQTT user name and password.
    pub mqtt_credentials: Option<(String, String)>,
    /// MQTT client id (the broker's session key); none: `vigil-<host>-<pipeline>`.
    pub mqtt_client_id: Option<String>,
    /// Home Assistant's discovery prefix; none: no discovery.
    pub home_assistant: Option<String>,
    /// The event log (JSON lines); none: standard output.
    pub event_log: Option<PathBuf>,
    /// `s3://bucket/prefix` for the archives' uploads.
    pub store: Option<String>,
    /// Settings of every live pipeline.
    pub options: LiveOptions,
    /// The data directory; none: documents live in memory only.
    pub data_dir: Option<PathBuf>,
    /// The cluster this node joins: documents and ownership live there.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// The archive the playback API serves.
    pub playback_archive: Option<PathBuf>,
    /// Resource limits.
    pub limits: Limits,
    /// Who may call the HTTP listener.
    pub access: crate::api::auth::AccessPolicy,
    /// The HTTPS listener's certificate and key; none: plain HTTP.
    pub tls: Option<crate::tls::server::CertificateFiles>,
}

/// What the service holds when it starts.
pub enum Startup {
    /// What the data directory holds (nothing without one); Active pipelines are activated.
    Restore,
    /// Follows a folder of topology and live-pipeline documents (declarative mode).
    Follow(PathBuf),
    /// One topology and one live pipeline, activated (`vigil run`).
    Single {
        /// The topology document as read from its file.
        topology: serde_json::Value,
        /// Its name.
        topology_name: String,
        /// The live pipeline's name.
        pipeline: String,
        /// Its parameter values.
        parameters: Vec<(String, String)>,
    },
}

/// Runs the service until SIGINT or SIGTERM.
pub fn run_process(config: ProcessConfig, startup: Startup) -> Result<()> {
    // The store's blocking HTTP client must be made, and dropped last, outside the runtime.
    let store = crate::archive::open_store(config.store.as_deref())?;
    // A cluster member reads the others' segments that are not in the store yet from their
    // nodes, with a blocking client made (and dropped last) here, outside the runtime.
    let peers = match (&config.cluster, &store) {
        (Some(_), Some(_)) => Some(Arc::new(crate::archive::PeerReader::new()?)),
        _ => None,
    };
    // Two workers: the pipelines' event loops do little (their cameras' threads drive them);
    // blocking control calls (validation compiles modules, fsyncs) run beside them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // As a spawned task, not block_on's own future: it runs on a worker, where blocking control
    // calls may use block_in_place.
    let task = runtime.spawn(serve(config, startup, store.clone(), peers.clone()));
    let result = runtime
        .block_on(task)
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the service's task failed: {e}")));
    drop(runtime);
    drop(peers);
    drop(store);
    result
}

async fn serve(
    config: ProcessConfig,
    startup: Startup,
    store: Option<Arc<crate::archive::store::ObjectStore>>,
    peers: Option<Arc<crate::archive::PeerReader>>,
) -> Result<()> {
    let bus =
        EventBus::new("vigil", config.event_log.as_deref()).context("cannot open the event log")?;
    let cluster = match &config.cluster {
        Some(c) => {
            let cluster = Arc::new(crate::cluster::Cluster::connect(c, bus.clone()).await?);
            tracing::info!("node '{}' joined the cluster at {}", c.node, c.url);
            Some(cluster)
        }
        None => None,
    };
    let mut archives = Archives::new(store.clone(), bus.clone());
    let mut index_publisher = None;
    if let (Some(cluster), Some(_)) = (&cluster, &store) {
        // One archive across the members: segments keyed per member in the shared store, each
        // one given to the segment index once uploaded.
        let node_url = config
            .cluster
            .as_ref()
            .map(|c| c.playback_url(&config.http, config.tls.is_some()));
        let (publisher, task) = crate::cluster::segments::publisher(cluster.js.clone(), node_url);
        archives = archives.shared(publisher);
        index_publisher = Some(tokio::spawn(task));
    }
    let context = LiveContext {
        bus: bus.clone(),
        archives,
        inputs: InputRouter::default(),
        cameras: super::cameras::Cameras::default(),
        options: config.options.clone(),
    };
    let documents = config
        .data_dir
        .as_deref()
        .map(Documents::open)
        .transpose()?;
    let mut service = Service::new(context, documents, config.limits);
    if let Some(cluster) = &cluster {
        service = service.in_cluster(cluster.clone());
    }
    let service = Arc::new(service);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut tasks = Vec::new();
    super::memory::start_trimming();
    super::review::index().follow(&bus);
    let stale = crate::grpc::shared_memory::remove_stale();
    if stale > 0 {
        tracing::info!(
            "removed {stale} gRPC shared-memory files that a Vigil process no longer running left in /dev/shm"
        );
    }
    if let Some(broker) = &config.mqtt {
        let broker = parse_broker(broker).map_err(anyhow::Error::msg)?;
        let (pub_tx, pub_rx) = mpsc::channel(crate::bus::mqtt::PUBLICATION_QUEUE);
        bus.attach_mqtt(pub_tx);
        let (inbound_tx, inbound_rx) = mpsc::channel::<Inbound>(256);
        let client_id = config
            .mqtt_client_id
            .clone()
            .unwrap_or_else(|| crate::bus::mqtt::default_client_id(bus.pipeline()));
        let home_assistant = config.home_assistant.as_ref().map(|prefix| {
            let discovery = crate::bus::home_assistant::Discovery {
                prefix: prefix.clone(),
                node: crate::bus::home_assistant::id_part(&client_id),
            };
            let link = HomeAssistantLink {
                availability_topic: discovery.availability_topic(),
                connections: Default::default(),
            };
            tasks.push(super::home_assistant::Bridge::start(
                service.clone(),
                discovery,
                link.connections.clone(),
                shutdown.clone(),
            ));
            link
        });
        let setup = MqttSetup {
            broker,
            credentials: config.mqtt_credentials.clone(),
            client_id: Some(client_id),
            home_assistant,
        };
        tasks.push(tokio::spawn(run_mqtt(
            setup,
            bus.clone(),
            inbound_tx,
            pub_rx,
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(route_inbound(service.clone(), inbound_rx)));
    }
    let listener = tokio::net::TcpListener::bind(&config.http)
        .await
        .with_context(|| format!("cannot listen on {}", config.http))?;
    let address = listener.local_addr()?;
    crate::api::auth::check_listener(&address, &config.access)?;
    let listener = match &config.tls {
        Some(files) => {
            let reports = bus.clone();
            let tls = crate::tls::server::TlsListener::bind(listener, files.clone(), move |r| {
                report_certificate(&reports, r)
            })?;
            tracing::info!("HTTPS listener on https://{address}");
            Listener::Https(tls)
        }
        None => {
            if !config.access.tokens.is_empty() && !address.ip().is_loopback() {
                tracing::warn!(
                    "the listener on {address} is plain HTTP: tokens and video cross the network in clear; give --tls-cert and --tls-key"
                );
            }
            tracing::info!("HTTP listener on http://{address}");
            Listener::Http(listener)
        }
    };

    let drain_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut playback_archive = config.playback_archive.clone();
    let mut follower = None;
    let mut member = None;
    match startup {
        Startup::Restore if cluster.is_some() => {
            let (stop, stopped) = watch::channel(false);
            if let Some(cluster) = cluster.clone() {
                tasks.push(tokio::spawn(crate::cluster::subjects::serve(
                    service.clone(),
                    cluster.client.clone(),
                    shutdown.clone(),
                )));
                // The other members' segments, listed in the archive this node plays back;
                // what it recorded before a restart, uploaded and published.
                if let (Some(archive), Some(_)) = (&config.options.archive, &store) {
                    service
                        .context()
                        .archives
                        .drain(archive, drain_stop.clone())?;
                    tasks.push(tokio::spawn(crate::cluster::segments::follow(
                        cluster.js.clone(),
                        archive.clone(),
                        bus.clone(),
                        shutdown.clone(),
                    )));
                }
                member = Some((
                    stop,
                    tokio::spawn(crate::cluster::ownership::run(
                        service.clone(),
                        cluster,
                        stopped,
                    )),
                ));
            }
        }
        Startup::Restore => {
            for name in service.restore()? {
                let answer = service.activate(&name).await;
                if answer.status >= 400 {
                    service.context().bus.for_pipeline(&name).emit(Event::new(
                        EventClass::Diagnostics,
                        "RuntimeError",
                        format!("/livePipelines/{name}"),
                        wall_now(),
                        serde_json::json!({"code": "pipelineRestoreFailed", "detail": "the pipeline was Active when the service stopped and cannot be activated again", "answer": answer.to_json()}),
                    ));
                }
            }
        }
        Startup::Follow(dir) => {
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(super::declarative::follow(service.clone(), dir, stopped));
            follower = Some((stop, task));
        }
        Startup::Single {
            topology,
            topology_name,
            pipeline,
            parameters,
        } => {
            let entry = single_pipeline(&pipeline, &topology_name, parameters);
            let topology = TopologyEntry {
                name: topology_name,
                document: topology,
                secrets: Vec::new(),
                system: SystemData::read(&serde_json::Value::Null),
            };
            let plan = super::registry::bind(&topology, &entry)
                .map_err(|e| anyhow::anyhow!("{}", crate::topology::TopologyErrors(e)))?;
            if playback_archive.is_none() {
                playback_archive = config.options.archive.clone().or(plan.archive.clone());
            }
            service.insert(topology, entry);
            let answer = service.activate(&pipeline).await;
            if answer.status >= 400 {
                bail!("cannot start the pipeline: {}", answer.payload);
            }
        }
    }
    let playback = crate::api::playback::PlaybackState::new(
        playback_archive,
        bus.clone(),
        crate::archive::remote_reader(store.clone(), peers),
    )?;
    let routes = crate::api::playback::routes(playback);
    let policy = Arc::new(crate::api::auth::AccessPolicy {
        events: Some(bus.clone()),
        ..config.access.clone()
    });
    let http = match listener {
        Listener::Http(l) => tokio::spawn(crate::api::http::serve(
            l,
            service.clone(),
            routes,
            policy,
            shutdown.clone(),
        )),
        Listener::Https(l) => tokio::spawn(crate::api::http::serve(
            l,
            service.clone(),
            routes,
            policy,
            shutdown.clone(),
        )),
    };

    wait_for_signal().await?;
    tracing::info!("stopping: closing open files");
    // The folder's follower first, so that it starts nothing while the pipelines stop.
    if let Some((stop, task)) = follower {
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    // A cluster member stops its pipelines and gives their leases up for others to take.
    if let Some((stop, task)) = member {
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    drain_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    service.shutdown().await;
    // After the keepers' last passes, which publish what they uploaded.
    if let Some(task) = index_publisher {
        task.abort();
    }
    let _ = shutdown_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), http).await;
    Ok(())
}

fn single_pipeline(name: &str, topology: &str, parameters: Vec<(String, String)>) -> PipelineEntry {
    PipelineEntry {
        name: name.to_string(),
        topology: topology.to_string(),
        description: None,
        parameters,
        desired_active: false,
        state: PipelineState::Inactive,
        system: SystemData {
            created_at: now_text(),
            last_modified_at: now_text(),
        },
        status: Default::default(),
    }
}

/// Triggers go to their pipelines at once; method calls are run one after the other (AVA's
/// model), on a task of their own so that a long deactivation holds up no trigger.
async fn route_inbound(service: Arc<Service>, mut inbound: mpsc::Receiver<Inbound>) {
    let (calls_tx, mut calls_rx) = mpsc::channel::<(String, String, Vec<u8>)>(64);
    let caller = service.clone();
    let calls = tokio::spawn(async move {
        while let Some((name, request_id, payload)) = calls_rx.recv().await {
            let answer = caller.call(&name, &payload).await;
            caller.context().bus.publish_raw(
                method_response_topic(answer.status, &request_id),
                answer.to_json().to_string().into_bytes(),
            );
        }
    });
    while let Some(message) = inbound.recv().await {
        match message {
            Inbound::Input { pipeline, message } => {
                service.deliver_or_hold("MQTT", &pipeline, message);
            }
            Inbound::Method {
                name,
                request_id,
                payload,
            } => {
                let _ = calls_tx.send((name, request_id, payload)).await;
            }
            Inbound::Switch { pipeline, on } => {
                // Home Assistant's switch: the method a client would call; its answer is logged.
                let caller = service.clone();
                tokio::spawn(async move {
                    let method = if on {
                        "livePipelineActivate"
                    } else {
                        "livePipelineDeactivate"
                    };
                    let payload = serde_json::json!({"name": pipeline}).to_string();
                    let answer = caller.call(method, payload.as_bytes()).await;
                    if answer.status >= 300 {
                        tracing::warn!(
                            "Home Assistant switch of {pipeline}: {method} answered {}",
                            answer.status
                        );
                    }
                });
            }
        }
    }
    drop(calls_tx);
    let _ = calls.await;
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// The API's listener: plain HTTP or HTTPS.
enum Listener {
    Http(tokio::net::TcpListener),
    Https(crate::tls::server::TlsListener),
}

/// Reports what became of a changed certificate: `CertificateReloaded`, or a
/// `CertificateRefused` diagnostics event naming the fault (the previous one stays in force).
fn report_certificate(bus: &crate::bus::event_log::EventBus, reload: crate::tls::server::Reload) {
    let (class, kind, body) = match reload {
        crate::tls::server::Reload::Loaded => (
            EventClass::Operational,
            "CertificateReloaded",
            serde_json::json!({"detail": "the HTTPS listener serves the changed certificate"}),
        ),
        crate::tls::server::Reload::Refused(e) => (
            EventClass::Diagnostics,
            "CertificateRefused",
            serde_json::json!({"detail": format!("{e}; the previous certificate stays in force")}),
        ),
    };
    bus.emit(Event::new(
        class,
        kind,
        "/listener".to_string(),
        wall_now(),
        body,
    ));
}
