//! One archive across the cluster: the segment index, a JetStream stream (`VIGIL_SEGMENTS`,
//! subjects `vigil.segments.<video>`). The members share one object store; each member's keeper
//! publishes a [`SegmentRecord`] for every segment it finished and again once it uploaded it
//! (the catalog remembers what the stream acknowledged), and every member imports the others'
//! records into the archive it plays back, so `availableMedia`, HLS and MP4 export answer for
//! any video on any node, the media read from the recording node until it is uploaded, then from
//! the store.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_nats::jetstream::{self, consumer::DeliverPolicy};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::archive::catalog::Catalog;
use crate::archive::segment_record::{SegmentPublisher, SegmentRecord};
use crate::bus::event::{Event, EventClass};
use crate::bus::event_log::EventBus;
use crate::nodes::rtsp_source::wall_now;

/// The stream.
pub const STREAM: &str = "VIGIL_SEGMENTS";
/// Its subjects' prefix (the video's name follows).
pub const SUBJECT_PREFIX: &str = "vigil.segments.";
/// How long a keeper waits for the stream to acknowledge a record before trying again later.
pub const PUBLISH_WAIT: Duration = Duration::from_secs(10);
/// How often a node catching up on the index keeps its position.
const POSITION_EVERY: Duration = Duration::from_secs(1);
/// The largest record the stream takes (a segment of [`crate::archive::segment_record::MAX_FRAGMENTS`]).
const MAX_RECORD: i32 = 1 << 20;

/// Creates the stream if no member made it yet (kept forever, `replicas` copies).
pub async fn ensure_stream(js: &jetstream::Context, replicas: usize) -> Result<()> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: STREAM.to_string(),
        subjects: vec![format!("{SUBJECT_PREFIX}>")],
        storage: jetstream::stream::StorageType::File,
        num_replicas: replicas,
        max_message_size: MAX_RECORD,
        ..Default::default()
    })
    .await
    .with_context(|| format!("cannot create the cluster's segment index {STREAM}"))?;
    Ok(())
}

type Request = (String, Bytes, std::sync::mpsc::Sender<Result<()>>);

/// A publisher for the keepers (plain threads) and the task that sends what it is given, each
/// record acknowledged by the stream before the keeper marks it published; records say that
/// this node serves its segments at `node_url` until they are uploaded.
pub fn publisher(
    js: jetstream::Context,
    node_url: Option<String>,
) -> (SegmentPublisher, impl Future<Output = ()>) {
    let (tx, mut rx) = mpsc::channel::<Request>(64);
    let task = async move {
        while let Some((subject, body, reply)) = rx.recv().await {
            let sent = async {
                js.publish(subject, body)
                    .await
                    .map_err(|e| anyhow!("{e}"))?
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                Ok(())
            };
            let outcome = tokio::time::timeout(PUBLISH_WAIT, sent)
                .await
                .unwrap_or_else(|_| Err(anyhow!("no acknowledgement within {PUBLISH_WAIT:?}")));
            let _ = reply.send(outcome);
        }
    };
    let publish: SegmentPublisher = std::sync::Arc::new(move |record: &SegmentRecord| {
        let mut record = record.clone();
        record.node_url = node_url.clone();
        let body = Bytes::from(serde_json::to_vec(&record)?);
        let subject = format!("{SUBJECT_PREFIX}{}", record.video.name);
        let (reply, answer) = std::sync::mpsc::channel();
        tx.try_send((subject, body, reply))
            .map_err(|_| anyhow!("the cluster's connection is busy or stopped"))?;
        answer
            .recv_timeout(PUBLISH_WAIT + Duration::from_secs(1))
            .map_err(|_| anyhow!("no answer from the cluster's connection"))?
    });
    (publish, task)
}

/// Imports the other members' records into the archive at `archive` until `shutdown`, from
/// where this archive's imports stopped (the stream's start the first time; an import is
/// idempotent); after a lost connection, from where it stopped.
/// A record that does not check out is reported on `bus` and skipped.
pub async fn follow(
    js: jetstream::Context,
    archive: PathBuf,
    bus: EventBus,
    mut shutdown: watch::Receiver<bool>,
) {
    let catalog = match tokio::task::block_in_place(|| Catalog::open(&archive)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("the segment index cannot be followed: {e:#}");
            return;
        }
    };
    let subject = crate::archive::subject(&archive);
    // Read on from where this archive's last import stopped (a node starting again does not
    // read the whole index again).
    let (mut next, mut stream_made) =
        tokio::task::block_in_place(|| catalog.index_position()).unwrap_or((1, None));
    let mut saved = (next, std::time::Instant::now());
    // The first record of the current stream not imported for a reason that may pass (the
    // disk, a busy catalog): the position kept never goes past it, so a restart reads it again.
    let mut retry_from: Option<u64> = None;
    loop {
        let messages = async {
            let mut stream = js.get_stream(STREAM).await?;
            let info = stream.info().await?;
            let made = info.created.to_string();
            let last = info.state.last_sequence;
            if stream_made.as_deref().is_some_and(|known| known != made) || next > last + 1 {
                // The stream was made anew (its numbers start again): read it from its start.
                tracing::warn!(
                    "the cluster's segment index was made anew ({made}, up to record {last}; \
                     this archive had read another one up to {next}): reading it from its start"
                );
                next = 1;
                retry_from = None;
            }
            stream_made = Some(made);
            let consumer = stream
                .create_consumer(jetstream::consumer::push::OrderedConfig {
                    deliver_subject: js.client().new_inbox(),
                    filter_subject: format!("{SUBJECT_PREFIX}>"),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: next,
                    },
                    ..Default::default()
                })
                .await?;
            Ok::<_, anyhow::Error>(consumer.messages().await?)
        };
        let mut messages = tokio::select! {
            _ = shutdown.changed() => return,
            m = messages => match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("the segment index: {e:#}; trying again in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        loop {
            let message = tokio::select! {
                _ = shutdown.changed() => return,
                m = messages.next() => m,
            };
            let Some(Ok(message)) = message else {
                break;
            };
            let (mut caught_up, mut sequence) = (false, next);
            if let Ok(info) = message.info() {
                sequence = info.stream_sequence;
                next = sequence + 1;
                caught_up = info.pending == 0;
            }
            // A record that does not parse or check out never will: reported and passed.
            let record = serde_json::from_slice::<SegmentRecord>(&message.payload)
                .map_err(anyhow::Error::from)
                .and_then(|r| r.validate().map(|()| r));
            let imported = record.and_then(|r| {
                let imported = tokio::task::block_in_place(|| catalog.import(&r, wall_now()));
                if imported.is_err() {
                    retry_from.get_or_insert(sequence);
                }
                imported
            });
            // The position is kept once a second while catching up, and whenever caught up
            // (records imported twice after a restart change nothing).
            let keep = retry_from.map_or(next, |s| s.min(next));
            if keep != saved.0 && (caught_up || saved.1.elapsed() >= POSITION_EVERY) {
                let made = stream_made.clone().unwrap_or_default();
                match tokio::task::block_in_place(|| catalog.set_index_position(keep, &made)) {
                    Ok(()) => saved = (keep, std::time::Instant::now()),
                    Err(e) => tracing::warn!("the segment index's position not kept: {e:#}"),
                }
            }
            if let Err(e) = imported {
                bus.emit(Event::new(
                    EventClass::Diagnostics,
                    "StorageError",
                    subject.clone(),
                    wall_now(),
                    json!({"detail": format!("a record of the cluster's segment index on {} was not imported: {e:#}", message.subject)}),
                ));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
