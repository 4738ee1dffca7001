//! A TCP relay between Vigil and a peer that the test can cut (every connection closed at once,
//! new ones refused) and restore on the same port: a network outage while both ends stay up,
//! which killing the peer cannot give (the broker would lose its sessions).

use std::io::ErrorKind;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The relay; stops when dropped.
pub struct Relay {
    /// The port Vigil connects to.
    pub port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays `port` on loopback to `upstream`.
    pub fn start(port: u16, upstream: u16) -> Self {
        let relay = Self {
            port,
            cut: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(Vec::new())),
        };
        let (cut, stop, open) = (relay.cut.clone(), relay.stop.clone(), relay.open.clone());
        std::thread::spawn(move || {
            let mut listener: Option<TcpListener> = None;
            while !stop.load(Ordering::SeqCst) {
                if cut.load(Ordering::SeqCst) {
                    listener = None;
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let Some(l) = &listener else {
                    listener = TcpListener::bind(("127.0.0.1", port)).ok();
                    if let Some(l) = &listener {
                        l.set_nonblocking(true).expect("nonblocking");
                    }
                    continue;
                };
                match l.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).expect("blocking");
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        pipe(&client, &server, &open);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => listener = None,
                }
            }
        });
        super::peers::wait_for_port(port);
        relay
    }

    /// Closes every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// Copies both ways between `a` and `b` on two threads; both are kept in `open` for a cut.
fn pipe(a: &TcpStream, b: &TcpStream, open: &Arc<Mutex<Vec<TcpStream>>>) {
    let mut kept = open.lock().expect("lock");
    for (from, to) in [(a, b), (b, a)] {
        let (mut from, mut to) = (
            from.try_clone().expect("clone"),
            to.try_clone().expect("clone"),
        );
        kept.push(from.try_clone().expect("clone"));
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}
