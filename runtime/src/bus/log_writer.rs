//! The event log's writer: one thread per log that writes the lines the bus hands it and
//! flushes whenever its queue is empty. Emitting an event only queues its line, so a slow or
//! stalled disk under the log never holds up a pipeline (before, every event was written and
//! flushed under the process-wide bus lock). The queue is bounded ([`EVENT_LOG_QUEUE`] lines);
//! lines that do not fit are counted, and the log gets a `DataDropped` event saying how many as
//! soon as it drains. [`flush_all`] (called before the process exits) waits for every queued
//! line to be written.

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::event::{Event, EventClass};

/// Most event lines waiting for the disk.
pub const EVENT_LOG_QUEUE: usize = 16_384;

enum Message {
    Line(String),
    Flush(std::sync::mpsc::Sender<()>),
}

/// A handle on one log's writer thread.
#[derive(Clone)]
pub struct LogWriter {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// Every writer of the process, for [`flush_all`].
static WRITERS: Mutex<Vec<SyncSender<Message>>> = Mutex::new(Vec::new());

impl LogWriter {
    /// Starts the writer thread for `out`.
    pub fn start(out: Box<dyn Write + Send>) -> std::io::Result<Self> {
        Self::start_with_queue(out, EVENT_LOG_QUEUE)
    }

    fn start_with_queue(out: Box<dyn Write + Send>, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("event log".into())
            .spawn(move || write_lines(out, &rx, &counted))?;
        if let Ok(mut all) = WRITERS.lock() {
            all.push(tx.clone());
        }
        Ok(Self { tx, dropped })
    }

    /// Queues `line` (one JSON object and its newline); counts it when the queue is full.
    pub fn write(&self, line: String) {
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits (up to `timeout`) until every line queued before this call is written.
    pub fn flush(&self, timeout: Duration) -> bool {
        flush_one(&self.tx, timeout)
    }
}

fn flush_one(tx: &SyncSender<Message>, timeout: Duration) -> bool {
    let (ack, done) = channel();
    tx.send(Message::Flush(ack)).is_ok() && done.recv_timeout(timeout).is_ok()
}

/// Waits until every log of the process has written what was queued (each up to `timeout`).
pub fn flush_all(timeout: Duration) {
    let writers: Vec<SyncSender<Message>> = WRITERS.lock().map(|w| w.clone()).unwrap_or_default();
    for tx in &writers {
        flush_one(tx, timeout);
    }
}

fn write_lines(out: Box<dyn Write + Send>, rx: &Receiver<Message>, dropped: &AtomicU64) {
    let mut out = BufWriter::new(out);
    let mut failing = false;
    while let Ok(first) = rx.recv() {
        let mut acks = Vec::new();
        let mut result = Ok(());
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    if result.is_ok() {
                        result = out.write_all(line.as_bytes());
                    }
                }
                Message::Flush(ack) => acks.push(ack),
            }
            next = rx.try_recv().ok();
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 && result.is_ok() {
            result = out.write_all(dropped_line(lost).as_bytes());
        }
        let result = result.and_then(|()| out.flush());
        match result {
            Err(e) if !failing => {
                failing = true;
                tracing::error!(
                    "cannot write the event log: {e} (reported once until it works again)"
                );
            }
            Err(_) => {}
            Ok(()) => failing = false,
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn dropped_line(lost: u64) -> String {
    let event = Event::new(
        EventClass::Diagnostics,
        "DataDropped",
        "/eventLog".to_string(),
        crate::nodes::rtsp_source::wall_now(),
        json!({"eventsNotLogged": lost, "detail": format!("the event log fell behind (a slow or stalled disk): {lost} events were not written to it (MQTT and GET /api/events still had them)")}),
    );
    format!("{}\n", event.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that blocks until released, then records what it got.
    struct Gate {
        open: Arc<Mutex<bool>>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            while !*self.open.lock().expect("lock") {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.got.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_log_never_blocks_and_reports_what_it_lost() {
        let open = Arc::new(Mutex::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let gate = Gate {
            open: open.clone(),
            got: got.clone(),
        };
        let log = LogWriter::start_with_queue(Box::new(gate), 4).expect("thread");
        // The thread takes the first line and stalls in write: 4 more fit, the rest do not.
        let started = std::time::Instant::now();
        for i in 0..20 {
            log.write(format!("{{\"n\":{i}}}\n"));
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never blocked");
        *open.lock().expect("lock") = true;
        assert!(log.flush(Duration::from_secs(10)));
        let text = String::from_utf8(got.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        let written = lines.iter().filter(|l| l.starts_with("{\"n\":")).count();
        // On a loaded machine the thread may take its first lines late, so the losses can come
        // in two reports: together they count every line not written.
        let reported: u64 = lines
            .iter()
            .filter(|l| l.contains("DataDropped"))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["body"]["eventsNotLogged"].as_u64().unwrap_or(0)
            })
            .sum();
        assert!(reported > 0, "{text}");
        assert_eq!(reported, 20 - written as u64, "{text}");
        assert!(written >= 5, "{text}");
    }
}
