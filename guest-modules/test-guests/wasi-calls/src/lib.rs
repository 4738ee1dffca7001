//! Test guest: an event filter that makes the WASI call its configuration names (`call`):
//! `stdout` (200 lines), `stderr`, `sleep` (30 s), `stdin` (a line), `udp` (a socket), `file`
//! (a write to /tmp), `clock` (the wall clock, returned as the event's time), `panic`. It
//! returns the event when the call ended as the host promises (refused, or at once).

#![allow(clippy::too_many_arguments)] // in the generated bindings

use std::io::{BufRead, Write};
use std::sync::Mutex;

wit_bindgen::generate!({ world: "event-filter", path: "../../../wit" });

static CALL: Mutex<String> = Mutex::new(String::new());

struct WasiCalls;

impl Guest for WasiCalls {
    fn init(config: Config) -> Result<(), String> {
        let call = config
            .iter()
            .find(|(k, _)| k == "call")
            .map(|(_, v)| v.clone())
            .ok_or("give the call")?;
        *CALL.lock().map_err(|e| e.to_string())? = call;
        Ok(())
    }

    fn process_event(event: Event) -> Vec<Event> {
        let call = CALL.lock().map(|c| c.clone()).unwrap_or_default();
        let ok = match call.as_str() {
            "stdout" => {
                for n in 0..200 {
                    println!("line {n} from the guest");
                }
                true
            }
            "stderr" => {
                let _ = writeln!(std::io::stderr(), "{}", "e".repeat(100_000));
                true
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(30));
                true
            }
            "stdin" => {
                let mut line = String::new();
                matches!(std::io::stdin().lock().read_line(&mut line), Ok(0) | Err(_))
            }
            "udp" => std::net::UdpSocket::bind("0.0.0.0:0").is_err(),
            "file" => std::fs::write("/tmp/vigil-guest-was-here", b"x").is_err(),
            "clock" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or(-1);
                return vec![Event {
                    timestamp_ns: now,
                    inferences: Vec::new(),
                }];
            }
            "panic" => panic!("the guest panics"),
            _ => false,
        };
        if ok { vec![event] } else { Vec::new() }
    }
}

export!(WasiCalls);
