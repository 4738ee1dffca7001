//! Camera sessions shared by the pipelines of a process: pipelines whose RtspSources name the
//! same URL, credentials, transport and audio choice share one RTSP session (cameras allow few;
//! Frigate users put go2rtc in front for this). The session's thread hands each burst to every
//! subscribed pipeline's core in turn, and each pipeline's source node reports the session's
//! events under its own subject. A pipeline that joins a running session is told the session's
//! last event (so it knows the camera is connected, or failing) and gets media from the next
//! key frame on. The session reads at the pace of its most demanding pipeline, and ends with
//! its last subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::sync::watch;

use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::media::sample::MediaItem;
use crate::nodes::rtsp_source::{MediaOut, RtspSource, SourceReport, spawn_rtsp_source, wall_now};
use crate::topology::model::{Credentials, RtspSourceConfig};

/// One pipeline's side of a camera session.
pub struct Subscriber {
    /// Where its media goes (its core).
    pub out: Box<dyn MediaOut>,
    /// Its event handle.
    pub bus: EventBus,
    /// Its source node's subject.
    pub subject: String,
    /// The read interval it wants.
    pub read_interval: Duration,
}

struct Member {
    id: u64,
    subscriber: Subscriber,
    /// Joined a running session: media starts at the next key frame.
    waiting_for_key_frame: bool,
    counters: SourceCounters,
}

/// What a pipeline's source node received: `va_received_bytes_total`, and its frames and
/// bytes passed on.
struct SourceCounters {
    received: crate::bus::metrics::Counter,
    frames: crate::bus::metrics::Counter,
    bytes: crate::bus::metrics::Counter,
}

impl SourceCounters {
    fn count(&self, items: &[MediaItem]) {
        let mut bytes = 0;
        for item in items {
            match item {
                MediaItem::Video(v) => {
                    self.frames.inc();
                    bytes += v.data.len() as u64;
                }
                MediaItem::Audio(a) => bytes += a.data.len() as u64,
            }
        }
        if bytes > 0 {
            self.received.inc_by(bytes);
            self.bytes.inc_by(bytes);
        }
    }
}

#[derive(Default)]
struct Members {
    list: Vec<Member>,
    /// The session's last event, told to a pipeline that joins.
    last_event: Option<(EventClass, String, Value)>,
    /// Whether the session has delivered media yet.
    streaming: bool,
}

/// A running session and its subscribers.
struct Session {
    members: Mutex<Members>,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Session {
    fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The process's camera sessions, by camera; clone to share.
#[derive(Clone, Default)]
pub struct Cameras {
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

/// A pipeline's hold on a camera session; [`CameraSubscription::end`] (or dropping it) stops
/// the media to that pipeline, and the session when it was the last.
pub struct CameraSubscription {
    cameras: Cameras,
    key: String,
    session: Arc<Session>,
    id: u64,
    ended: bool,
}

/// What makes two RtspSources the same session.
fn key_of(config: &RtspSourceConfig, audio: bool) -> String {
    let credentials = match &config.endpoint.credentials {
        Some(Credentials::UsernamePassword { username, password }) => {
            format!("user:{username}:{password}")
        }
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    format!(
        "{}\n{credentials}\n{:?}\n{audio}",
        config.endpoint.url, config.transport
    )
}

impl Cameras {
    /// Subscribes `subscriber` to the session of `config`, starting it if none runs.
    pub fn subscribe(
        &self,
        config: &RtspSourceConfig,
        audio: bool,
        subscriber: Subscriber,
    ) -> Result<CameraSubscription> {
        let key = key_of(config, audio);
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = sessions.get(&key).cloned() {
            let mut members = session.members();
            if let Some((class, kind, body)) = members.last_event.clone() {
                subscriber.bus.emit(Event::new(
                    class,
                    &kind,
                    subscriber.subject.clone(),
                    wall_now(),
                    body,
                ));
            }
            let waiting_for_key_frame = members.streaming;
            members
                .list
                .push(member(id, subscriber, waiting_for_key_frame));
            drop(members);
            return Ok(CameraSubscription {
                cameras: self.clone(),
                key,
                session,
                id,
                ended: false,
            });
        }
        let read_interval = subscriber.read_interval;
        let (shutdown, stopped) = watch::channel(false);
        let session = Arc::new(Session {
            members: Mutex::new(Members {
                list: vec![member(id, subscriber, false)],
                ..Members::default()
            }),
            shutdown,
            thread: Mutex::new(None),
        });
        let source = RtspSource {
            config: config.clone(),
            read_interval,
            audio,
            report: Box::new(FanOutReport(session.clone())),
            out: Box::new(FanOut(session.clone())),
        };
        let thread =
            spawn_rtsp_source(source, stopped).context("cannot start the RTSP source's thread")?;
        *session.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        sessions.insert(key.clone(), session.clone());
        Ok(CameraSubscription {
            cameras: self.clone(),
            key,
            session,
            id,
            ended: false,
        })
    }

    /// How many sessions run (for metrics and tests).
    pub fn sessions(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }
}

fn member(id: u64, subscriber: Subscriber, waiting_for_key_frame: bool) -> Member {
    let metrics = subscriber.bus.metrics();
    let pipeline = subscriber.bus.pipeline();
    let node = subscriber.subject.rsplit('/').next().unwrap_or_default();
    let counters = SourceCounters {
        received: metrics.received_bytes(pipeline, node),
        frames: metrics.node_frames(pipeline, node),
        bytes: metrics.node_bytes(pipeline, node),
    };
    Member {
        id,
        subscriber,
        waiting_for_key_frame,
        counters,
    }
}

impl CameraSubscription {
    /// Stops the media to this pipeline (no burst reaches it once this returns); the last
    /// subscriber's end also ends the session and waits for its thread (up to one read pace).
    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let mut sessions = self
            .cameras
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let removed = {
            let mut members = self.session.members();
            let at = members.list.iter().position(|m| m.id == self.id);
            let removed = at.map(|i| members.list.remove(i));
            if members.list.is_empty() {
                sessions.remove(&self.key);
                let _ = self.session.shutdown.send(true);
            }
            removed
        };
        let last = sessions.get(&self.key).is_none();
        drop(sessions);
        // Dropped outside the locks: a core's input releases the pipeline's clock on drop.
        drop(removed);
        if last
            && let Some(thread) = self
                .session
                .thread
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for CameraSubscription {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The session's media, handed to every subscriber.
struct FanOut(Arc<Session>);

impl MediaOut for FanOut {
    fn deliver(&mut self, burst: Vec<MediaItem>, paced: bool) -> bool {
        let mut members = self.0.members();
        members.streaming |= !burst.is_empty();
        let count = members.list.len();
        let mut burst = Some(burst);
        let mut gone = Vec::new();
        for (i, member) in members.list.iter_mut().enumerate() {
            // The last one takes the burst itself; the others a copy (samples share their data).
            let mut items = if i + 1 == count {
                burst.take().unwrap_or_default()
            } else {
                burst.clone().unwrap_or_default()
            };
            if member.waiting_for_key_frame {
                match items
                    .iter()
                    .position(|m| matches!(m, MediaItem::Video(v) if v.key_frame))
                {
                    Some(at) => {
                        items.drain(..at);
                        member.waiting_for_key_frame = false;
                    }
                    None => items.clear(),
                }
            }
            member.counters.count(&items);
            if !member.subscriber.out.deliver(items, paced) {
                gone.push(member.id);
            }
        }
        let (removed, kept): (Vec<Member>, Vec<Member>) = std::mem::take(&mut members.list)
            .into_iter()
            .partition(|m| gone.contains(&m.id));
        members.list = kept;
        drop(members);
        drop(removed);
        // The session runs on until its last subscription ends, even with no one to feed for a
        // moment: a pipeline may join it meanwhile.
        true
    }

    fn pace(&self) -> Option<Duration> {
        self.0
            .members()
            .list
            .iter()
            .map(|m| m.subscriber.read_interval)
            .min()
    }
}

/// The session's events, reported by every subscriber's source node.
struct FanOutReport(Arc<Session>);

impl SourceReport for FanOutReport {
    fn report(&self, class: EventClass, kind: &str, body: Value) {
        let mut members = self.0.members();
        members.last_event = Some((class, kind.to_string(), body.clone()));
        if kind != "MediaSessionEstablished" {
            members.streaming = false;
            for m in members.list.iter_mut() {
                m.waiting_for_key_frame = false;
            }
        }
        for m in &members.list {
            m.subscriber.bus.emit(Event::new(
                class,
                kind,
                m.subscriber.subject.clone(),
                wall_now(),
                body.clone(),
            ));
        }
    }
}
