//! Write Vigil filter components in Rust, against `vigil:filter@0.2.0`, without touching
//! wit-bindgen.
//!
//! A frame filter (called with decoded frames) implements [`FrameFilter`]; an event filter
//! (called with inference events) implements [`EventFilter`]. One instance of the type is created
//! per node, from the node's [`Settings`], and keeps its state in `self`. Export it once per
//! crate, and build for `wasm32-wasip2`:
//!
//! ```ignore
//! use vigil_guest::{Event, EventFilter, Settings};
//!
//! struct Trucks { minimum: f32 }
//!
//! impl EventFilter for Trucks {
//!     fn new(settings: &Settings) -> Result<Self, String> {
//!         Ok(Self { minimum: settings.number_or("minimumConfidence", 0.5)? as f32 })
//!     }
//!     fn process_event(&mut self, mut event: Event) -> Vec<Event> {
//!         event.inferences.retain(|i| i.as_entity().is_some_and(|e| e.tag.value == "truck" && e.tag.confidence >= self.minimum));
//!         if event.inferences.is_empty() { vec![] } else { vec![event] }
//!     }
//! }
//!
//! vigil_guest::export_event_filter!(Trucks);
//! ```
//!
//! The crate builds natively too (the host functions then do nothing), so a filter's logic can
//! have plain `cargo test` unit tests.

mod geometry;
mod inference;
pub mod log;
mod settings;
pub mod time;

#[allow(clippy::all, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/0.2",
        world: "guest-library",
        generate_unused_types: true,
        additional_derives: [PartialEq],
    });
}

/// The host functions (logging, the stream clock); [`log`] and [`time`] wrap them.
pub use bindings::vigil::filter::host;
/// The WIT types of `vigil:filter@0.2.0` (records and variants of AVA's inference schema).
pub use bindings::vigil::filter::types;

pub use geometry::Region;
pub use settings::Settings;
pub use types::{
    Attribute, Classification, Entity, Event, Frame, FrameRequest, Inference, NamedEvent, Other,
    Payload, Plane, Rect, Tag, Text, Value,
};
pub use vigil_guest_macro::{export_event_filter, export_frame_filter};

/// A filter called per decoded frame (motion detection, custom vision).
pub trait FrameFilter: Sized + 'static {
    /// One instance per node, from its configuration; an error stops the node with that message.
    fn new(settings: &Settings) -> Result<Self, String>;

    /// The pixels this instance wants: by default a 320-pixel-wide luma plane.
    fn frame_request(&self) -> FrameRequest {
        FrameRequest {
            width: 320,
            luma: true,
            rgb: false,
        }
    }

    /// The inferences found in a frame; empty when nothing was (the frame is not forwarded).
    fn process_frame(&mut self, frame: &Frame) -> Vec<Inference>;
}

/// A filter called per inference event (decision logic: "is this a truck?").
pub trait EventFilter: Sized + 'static {
    /// One instance per node, from its configuration; an error stops the node with that message.
    fn new(settings: &Settings) -> Result<Self, String>;

    /// The events to pass on; empty to drop the event.
    fn process_event(&mut self, event: Event) -> Vec<Event>;
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    /// A guest's filter as the `filter` resource holds it: the component model calls a
    /// resource's methods through `&self`; one call runs at a time.
    pub struct Instance<T>(std::cell::RefCell<T>);

    impl<T> Instance<T> {
        /// Wraps a new filter.
        pub fn new(filter: T) -> Self {
            Self(std::cell::RefCell::new(filter))
        }

        /// The filter, to read.
        pub fn get(&self) -> std::cell::Ref<'_, T> {
            self.0.borrow()
        }

        /// The filter, to change.
        pub fn get_mut(&self) -> std::cell::RefMut<'_, T> {
            self.0.borrow_mut()
        }
    }
}
