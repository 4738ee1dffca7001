//! Host bindings generated from the WIT contracts: `vigil:filter@0.2.0` (`wit/0.2`), whose types
//! the host uses throughout, and `vigil:filter@0.1.0` (`wit/filter.wit`), kept so that components
//! built against it load and run unchanged ([`super::v1`] converts between the two). In each
//! version the event world reuses the frame world's `types` and `host` interfaces.

/// `vigil:filter@0.2.0`: a `filter` resource per node.
pub mod v2 {
    /// The `frame-filter` world, and the shared interfaces.
    pub mod frame {
        wasmtime::component::bindgen!({
            path: "../wit/0.2",
            world: "frame-filter",
        });
    }

    /// The `event-filter` world.
    pub mod event {
        wasmtime::component::bindgen!({
            path: "../wit/0.2",
            world: "event-filter",
            with: {
                "vigil:filter/types@0.2.0": super::frame::vigil::filter::types,
                "vigil:filter/host@0.2.0": super::frame::vigil::filter::host,
            },
        });
    }
}

/// `vigil:filter@0.1.0`: bare exported functions.
pub mod v1 {
    /// The `frame-filter` world, and the shared interfaces.
    pub mod frame {
        wasmtime::component::bindgen!({
            path: "../wit/filter.wit",
            world: "frame-filter",
        });
    }

    /// The `event-filter` world.
    pub mod event {
        wasmtime::component::bindgen!({
            path: "../wit/filter.wit",
            world: "event-filter",
            with: {
                "vigil:filter/types@0.1.0": super::frame::vigil::filter::types,
                "vigil:filter/host@0.1.0": super::frame::vigil::filter::host,
            },
        });
    }
}

pub use v2::frame::vigil::filter::types::{
    Attribute, Classification, Config, Entity, Event, Frame, FrameRequest, Inference, NamedEvent,
    Other, Payload, Plane, Rect, Tag, Text, Value,
};

impl Inference {
    /// An inference with only its payload.
    pub fn of(payload: Payload) -> Self {
        Self {
            payload,
            subtype: None,
            inference_id: None,
            related_inferences: Vec::new(),
            extensions: Vec::new(),
        }
    }
}
