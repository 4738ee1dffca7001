//! Test guest: `process-frame` never returns (a busy loop the optimiser cannot remove), so the
//! host's per-call deadline (epoch interruption / fuel) must stop it.

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "frame-filter", path: "../../../wit" });

struct Spin;

impl Guest for Spin {
    fn init(_config: Config) -> Result<FrameRequest, String> {
        Ok(FrameRequest {
            width: 160,
            rgb: false,
        })
    }

    fn process_frame(frame: Frame) -> Vec<Inference> {
        let mut n: u64 = core::hint::black_box(frame.timestamp_ns as u64);
        loop {
            n = core::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export!(Spin);
