//! The queue from the gate to a sink's thread. Commands are handed over in bursts and the sink
//! thread is woken once per burst, after the lock is released: a thread woken while the sender
//! still holds the lock would wake only to sleep on it again, and each wake-up costs more CPU
//! than writing the burst.
//!
//! The queue is bounded by the media it holds ([`MAX_QUEUED_BYTES`]): when a sink falls behind
//! (a disk that stalls), further samples are dropped until the queue has drained to half and a
//! key frame comes (the file goes on decodable, the gap marked as a discontinuity); clip starts
//! and ends are never dropped. What was dropped is handed to the sink's thread to report.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::media::time::MediaTime;
use crate::nodes::gate_node::ClipCommand;

/// Most sample bytes one sink's queue holds.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Media the queue dropped because its sink fell behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Video samples dropped.
    pub samples: u64,
    /// Presentation time of the first dropped sample.
    pub from: Option<MediaTime>,
    /// Presentation time of the last dropped sample.
    pub to: Option<MediaTime>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    /// How many commands wait, for the metrics.
    depth: Option<crate::bus::metrics::Gauge>,
}

impl Shared {
    /// The queue's state; a panic while it was held leaves it as it was, not locked for ever.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
struct State {
    commands: VecDeque<ClipCommand>,
    closed: bool,
    /// Sample bytes queued.
    bytes: usize,
    /// Dropping until the queue has room and a key frame comes.
    dropping: bool,
    /// Dropped and not yet taken by the receiver.
    dropped: Dropped,
}

impl State {
    /// Queues `command`, or drops it when it is a sample the sink has no room for.
    fn push(&mut self, command: ClipCommand) {
        match command {
            ClipCommand::Sample(mut s) => {
                if self.dropping && s.key_frame && self.bytes + s.len() <= MAX_QUEUED_BYTES / 2 {
                    self.dropping = false;
                    s.discontinuity = true;
                } else if !self.dropping && self.bytes + s.len() > MAX_QUEUED_BYTES {
                    self.dropping = true;
                }
                if self.dropping {
                    self.dropped.samples += 1;
                    self.dropped.from.get_or_insert(s.pts);
                    self.dropped.to = Some(s.pts);
                    return;
                }
                self.bytes += s.len();
                self.commands.push_back(ClipCommand::Sample(s));
            }
            ClipCommand::Audio(a) if self.dropping => drop(a),
            ClipCommand::Audio(a) => {
                self.bytes += a.data.len();
                self.commands.push_back(ClipCommand::Audio(a));
            }
            other => self.commands.push_back(other),
        }
    }
}

/// The gate's end: sends bursts of commands; dropping it closes the queue.
pub struct SinkQueueSender {
    shared: Arc<Shared>,
}

/// The sink thread's end.
pub struct SinkQueueReceiver {
    shared: Arc<Shared>,
}

/// A new queue.
pub fn sink_queue() -> (SinkQueueSender, SinkQueueReceiver) {
    sink_queue_with_depth(None)
}

/// A new queue whose length is kept in `depth`.
pub fn sink_queue_with_depth(
    depth: Option<crate::bus::metrics::Gauge>,
) -> (SinkQueueSender, SinkQueueReceiver) {
    let shared = Arc::new(Shared {
        depth,
        ..Shared::default()
    });
    (
        SinkQueueSender {
            shared: shared.clone(),
        },
        SinkQueueReceiver { shared },
    )
}

impl SinkQueueSender {
    /// Appends `commands` in order and wakes the sink thread once.
    pub fn send(&self, commands: impl IntoIterator<Item = ClipCommand>) {
        {
            let mut state = self.shared.lock();
            for command in commands {
                state.push(command);
            }
            if let Some(depth) = &self.shared.depth {
                depth.set(state.commands.len() as i64);
            }
        }
        self.shared.ready.notify_one();
    }
}

impl Drop for SinkQueueSender {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.closed = true;
        }
        self.shared.ready.notify_one();
    }
}

impl SinkQueueReceiver {
    /// Waits for commands and takes all of them, in order, with what was dropped since the
    /// last call (nothing: `samples` 0); `None` once the sender is gone and everything it sent
    /// has been taken.
    pub fn recv_all(&self) -> Option<(Vec<ClipCommand>, Dropped)> {
        let mut state = self.shared.lock();
        loop {
            if !state.commands.is_empty() || state.dropped.samples > 0 {
                if let Some(depth) = &self.shared.depth {
                    depth.set(0);
                }
                state.bytes = 0;
                let dropped = std::mem::take(&mut state.dropped);
                return Some((state.commands.drain(..).collect(), dropped));
            }
            if state.closed {
                return None;
            }
            state = self
                .shared
                .ready
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

#[cfg(test)]
impl SinkQueueReceiver {
    /// Takes what is queued now, without waiting.
    pub fn take_now(&self) -> Vec<ClipCommand> {
        let mut state = self.shared.lock();
        state.bytes = 0;
        state.commands.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::time::MediaTime;

    fn end(id: i64) -> ClipCommand {
        ClipCommand::end(
            id as u64,
            MediaTime::from_millis(id),
            crate::nodes::signal_gate::EndReason::Shutdown,
        )
    }

    fn ids(commands: &[ClipCommand]) -> Vec<i64> {
        commands
            .iter()
            .map(|c| match c {
                ClipCommand::End { activation, .. } => *activation as i64,
                _ => i64::MIN,
            })
            .collect()
    }

    #[test]
    fn bursts_arrive_in_order_and_the_close_comes_after_the_last_one() {
        let (tx, rx) = sink_queue();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some((burst, _)) = rx.recv_all() {
                seen.extend(ids(&burst));
            }
            seen
        });
        for b in 0..50i64 {
            tx.send((0..4).map(|i| end(b * 4 + i)));
        }
        drop(tx);
        let seen = reader.join().expect("reader thread");
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn a_closed_queue_still_delivers_what_was_sent() {
        let (tx, rx) = sink_queue();
        tx.send([end(7)]);
        drop(tx);
        assert_eq!(rx.recv_all().map(|(c, _)| ids(&c)), Some(vec![7]));
        assert!(rx.recv_all().is_none());
    }

    fn sample(second: i64, frame: i64, bytes: usize) -> ClipCommand {
        use crate::media::sample::{VideoCodec, VideoParams, VideoSample};
        let t = MediaTime::from_secs(second)
            + crate::media::time::MediaDuration::from_millis(frame * 100);
        ClipCommand::Sample(VideoSample {
            pts: t,
            dts: t,
            key_frame: frame == 0,
            data: bytes::Bytes::from(vec![0u8; bytes]),
            params: Arc::new(VideoParams {
                codec: VideoCodec::H264,
                width: 64,
                height: 64,
                rfc6381_codec: "avc1.42C00A".into(),
                sample_entry: Vec::new(),
            }),
            discontinuity: false,
        })
    }

    /// A sink that stalls (nobody takes from the queue): the queue stops at its budget, keeps
    /// clip ends, and once drained resumes at a key frame marked as a discontinuity; what was
    /// dropped is handed over once.
    #[test]
    fn a_stalled_sink_bounds_its_queue_and_hands_over_what_was_dropped() {
        let (tx, rx) = sink_queue();
        // 10 frames a second of 1 MiB: the 64 MiB budget fills in the 7th second.
        for second in 0..20 {
            tx.send((0..10).map(|f| sample(second, f, 1 << 20)));
        }
        tx.send([end(1)]);
        let (queued, dropped) = rx.recv_all().expect("open");
        let bytes: usize = queued
            .iter()
            .map(|c| match c {
                ClipCommand::Sample(s) => s.len(),
                _ => 0,
            })
            .sum();
        assert!(bytes <= MAX_QUEUED_BYTES, "{bytes} bytes queued");
        assert_eq!(
            queued.len() as u64 + dropped.samples,
            201,
            "every sample queued or counted"
        );
        assert_eq!(
            dropped.from,
            Some(MediaTime::from_secs(6) + crate::media::time::MediaDuration::from_millis(400))
        );
        assert_eq!(
            dropped.to,
            Some(MediaTime::from_secs(19) + crate::media::time::MediaDuration::from_millis(900))
        );
        assert!(
            matches!(queued.last(), Some(ClipCommand::End { .. })),
            "the clip's end is kept"
        );
        // Drained: the next key frame is queued again, marked as following a gap.
        tx.send((0..10).map(|f| sample(20, f, 1000)));
        let (queued, dropped) = rx.recv_all().expect("open");
        assert_eq!(dropped, Dropped::default());
        assert_eq!(queued.len(), 10);
        assert!(matches!(&queued[0], ClipCommand::Sample(s) if s.key_frame && s.discontinuity));
    }
}
