//! How a pipeline's threads report a crash to its event loop: a panic on the camera's thread (in
//! the core), a sink's thread or the decoding thread is caught where it happens and sent as a
//! [`Fault`]; the event loop then stops the pipeline and the service restarts it. Nothing else
//! in the process is touched.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::mpsc;

/// A thread of the pipeline failed; the text says which and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault(pub String);

/// Where faults go.
pub type FaultSender = mpsc::UnboundedSender<Fault>;

/// The text of a panic's payload.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Spawns `body` on a named thread; a panic in it is reported on `faults`.
pub fn spawn_guarded<F>(
    name: String,
    faults: FaultSender,
    body: F,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(body)) {
                let _ = faults.send(Fault(format!(
                    "thread '{name}' panicked: {}",
                    panic_text(panic.as_ref())
                )));
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_thread_is_reported_by_name() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t = spawn_guarded("sink files".into(), tx, || panic!("disk on fire")).expect("spawn");
        t.join().expect("the panic is caught");
        assert_eq!(
            rx.try_recv(),
            Ok(Fault("thread 'sink files' panicked: disk on fire".into()))
        );
    }
}
