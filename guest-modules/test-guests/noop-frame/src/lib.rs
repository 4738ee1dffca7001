//! Test guest: a frame filter that looks at nothing and finds nothing, so a call costs only the
//! host→guest crossing (the frame's planes copied in, the empty list copied out). The frame width
//! comes from the `width` configuration key (default 320).

#![allow(clippy::too_many_arguments)] // in the generated bindings

wit_bindgen::generate!({ world: "frame-filter", path: "../../../wit" });

struct Noop;

impl Guest for Noop {
    fn init(config: Config) -> Result<FrameRequest, String> {
        let width = config
            .iter()
            .find(|(k, _)| k == "width")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(320);
        Ok(FrameRequest { width, rgb: false })
    }

    fn process_frame(_frame: Frame) -> Vec<Inference> {
        Vec::new()
    }
}

export!(Noop);
