//! Test guest: `process-frame` reports `motion(none)` for frames in even UTC seconds and traps
//! (panics, which is `unreachable` on wasm) on frames in odd seconds
//! (`timestamp-ns / 1_000_000_000` odd).

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "frame-filter", path: "../../../wit" });

struct Trap;

impl Guest for Trap {
    fn init(_config: Config) -> Result<FrameRequest, String> {
        Ok(FrameRequest {
            width: 160,
            rgb: false,
        })
    }

    fn process_frame(frame: Frame) -> Vec<Inference> {
        let second = frame.timestamp_ns.div_euclid(1_000_000_000);
        if second.rem_euclid(2) == 1 {
            panic!(
                "trap guest: frame at {} ns is in an odd second",
                frame.timestamp_ns
            );
        }
        vec![Inference::Motion(None)]
    }
}

export!(Trap);
