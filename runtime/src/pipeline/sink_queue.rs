//! The queue from the gate to a sink's thread. Commands are handed over in bursts and the sink
//! thread is woken once per burst, after the lock is released: a thread woken while the sender
//! still holds the lock would wake only to sleep on it again, and each wake-up costs more CPU
//! than writing the burst.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::nodes::gate_node::ClipCommand;

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
            state.commands.extend(commands);
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
    /// Waits for commands and takes all of them, in order; `None` once the sender is gone and
    /// everything it sent has been taken.
    pub fn recv_all(&self) -> Option<Vec<ClipCommand>> {
        let mut state = self.shared.lock();
        loop {
            if !state.commands.is_empty() {
                if let Some(depth) = &self.shared.depth {
                    depth.set(0);
                }
                return Some(state.commands.drain(..).collect());
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
        self.shared.lock().commands.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::time::MediaTime;

    fn end(id: i64) -> ClipCommand {
        ClipCommand::End {
            activation: id as u64,
            end: MediaTime::from_millis(id),
            reason: crate::nodes::signal_gate::EndReason::Shutdown,
        }
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
            while let Some(burst) = rx.recv_all() {
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
        assert_eq!(rx.recv_all().map(|c| ids(&c)), Some(vec![7]));
        assert!(rx.recv_all().is_none());
    }
}
