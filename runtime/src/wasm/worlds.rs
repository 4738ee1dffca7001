//! Which contract a component implements, found by type-checking it against each world the host
//! knows (not by export names), and the pre-instantiated component for it: imports resolved once
//! per module, so a fresh instance after a fault or a swap is only the instantiation itself.

use std::sync::OnceLock;

use anyhow::{Result, anyhow};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

use super::bindings::{v1, v2};
use super::engine::engine;
use super::state::GuestState;

/// Which WIT world a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum World {
    /// `frame-filter`: called per decoded frame.
    Frame,
    /// `event-filter`: called per event.
    Event,
}

/// Which version of `vigil:filter` a component was built against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contract {
    /// `vigil:filter@0.1.0`: bare functions, string configuration.
    V0_1,
    /// `vigil:filter@0.2.0`: a `filter` resource per node, typed configuration.
    V0_2,
}

impl Contract {
    /// The version as WIT writes it.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

/// A component checked against its world, ready to instantiate.
#[derive(Clone)]
pub enum Prepared {
    /// 0.1.0 frame filter.
    FrameV1(v1::frame::FrameFilterPre<GuestState>),
    /// 0.1.0 event filter.
    EventV1(v1::event::EventFilterPre<GuestState>),
    /// 0.2.0 frame filter.
    FrameV2(v2::frame::FrameFilterPre<GuestState>),
    /// 0.2.0 event filter.
    EventV2(v2::event::EventFilterPre<GuestState>),
}

impl Prepared {
    /// The world.
    pub fn world(&self) -> World {
        match self {
            Prepared::FrameV1(_) | Prepared::FrameV2(_) => World::Frame,
            Prepared::EventV1(_) | Prepared::EventV2(_) => World::Event,
        }
    }

    /// The contract's version.
    pub fn contract(&self) -> Contract {
        match self {
            Prepared::FrameV1(_) | Prepared::EventV1(_) => Contract::V0_1,
            Prepared::FrameV2(_) | Prepared::EventV2(_) => Contract::V0_2,
        }
    }
}

/// The one linker: WASI (sandboxed, see [`super::sandbox`]) and both versions' host interfaces.
fn linker() -> Result<&'static Linker<GuestState>> {
    static LINKER: OnceLock<std::result::Result<Linker<GuestState>, String>> = OnceLock::new();
    LINKER
        .get_or_init(|| make_linker().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("cannot link the guest interfaces: {e}"))
}

fn make_linker() -> Result<Linker<GuestState>> {
    let mut linker = Linker::new(engine()?);
    super::sandbox::link_wasi(&mut linker)?;
    // The event worlds import the same interfaces as the frame worlds of their version.
    v1::frame::FrameFilter::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
        .map_err(|e| anyhow!("{e:#}"))?;
    v2::frame::FrameFilter::add_to_linker::<GuestState, HasSelf<GuestState>>(&mut linker, |s| s)
        .map_err(|e| anyhow!("{e:#}"))?;
    Ok(linker)
}

/// Checks `component` against every world, newest first; the first that fits.
pub fn prepare(origin: &str, component: &Component) -> Result<Prepared> {
    let pre: InstancePre<GuestState> = linker()?.instantiate_pre(component).map_err(|e| {
        anyhow!(
            "{origin}: imports what the sandbox does not offer: {e:#} (a filter may import vigil:filter/host and WASI preview 2 only)"
        )
    })?;
    if let Ok(p) = v2::frame::FrameFilterPre::new(pre.clone()) {
        return Ok(Prepared::FrameV2(p));
    }
    if let Ok(p) = v2::event::EventFilterPre::new(pre.clone()) {
        return Ok(Prepared::EventV2(p));
    }
    if let Ok(p) = v1::frame::FrameFilterPre::new(pre.clone()) {
        return Ok(Prepared::FrameV1(p));
    }
    if let Ok(p) = v1::event::EventFilterPre::new(pre) {
        return Ok(Prepared::EventV1(p));
    }
    let engine = engine()?;
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    Err(anyhow!(
        "{origin}: implements no vigil:filter world (it exports: {}); build it for the frame-filter or event-filter world of vigil:filter@0.2.0 (wit/0.2) or 0.1.0 (wit/filter.wit)",
        if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.join(", ")
        }
    ))
}
