//! Test guest: `process-frame` never returns (a busy loop the optimiser cannot remove), so the
//! host's per-call deadline (epoch interruption / fuel) must stop it. With the configuration
//! key `spin-in-init`, `init` never returns either, so the init deadline must stop that.

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "frame-filter", path: "../../../wit" });

struct Spin;

impl Guest for Spin {
    fn init(config: Config) -> Result<FrameRequest, String> {
        if config.iter().any(|(key, _)| key == "spin-in-init") {
            spin(config.len() as u64);
        }
        Ok(FrameRequest {
            width: 160,
            rgb: false,
        })
    }

    fn process_frame(frame: Frame) -> Vec<Inference> {
        spin(frame.timestamp_ns as u64)
    }
}

/// Loops forever.
fn spin(seed: u64) -> ! {
    let mut n: u64 = core::hint::black_box(seed);
    loop {
        n = core::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

export!(Spin);
