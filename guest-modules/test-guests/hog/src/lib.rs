//! Test guest: `process-frame` allocates without bound (1 MiB blocks kept forever), so the
//! host's memory limit must stop it.

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "frame-filter", path: "../../../wit" });

use std::sync::Mutex;

static HOARD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

struct Hog;

impl Guest for Hog {
    fn init(_config: Config) -> Result<FrameRequest, String> {
        Ok(FrameRequest {
            width: 160,
            rgb: false,
        })
    }

    fn process_frame(frame: Frame) -> Vec<Inference> {
        let mut hoard = HOARD.lock().unwrap_or_else(|e| e.into_inner());
        let mut i: usize = 0;
        loop {
            // Touch every page so the memory is really committed, not just reserved.
            let mut block = vec![0u8; 1 << 20];
            for b in block.iter_mut().step_by(4096) {
                *b = (frame.timestamp_ns as u8).wrapping_add(i as u8);
            }
            hoard.push(core::hint::black_box(block));
            i = i.wrapping_add(1);
        }
    }
}

export!(Hog);
