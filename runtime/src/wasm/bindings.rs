//! Host bindings generated from `wit/filter.wit`. The event world reuses the frame world's
//! `types` and `host` interfaces, so both share one set of Rust types and one host implementation.

/// The `frame-filter` world, and the shared interfaces.
pub mod frame {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "frame-filter",
    });
}

/// The `event-filter` world.
pub mod event {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "event-filter",
        with: {
            "vigil:filter/types": super::frame::vigil::filter::types,
            "vigil:filter/host": super::frame::vigil::filter::host,
        },
    });
}

pub use frame::vigil::filter::types::{
    Entity, Event, Frame, FrameRequest, Inference, NamedEvent, Rect, Tag,
};
