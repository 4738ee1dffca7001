//! WebAssembly filter components: one engine per process, compiled code cached on disk, one
//! sandboxed instance per node with a call deadline and a memory limit, fresh instances after a
//! fault, backoff for a module that keeps failing, and hot swap between two calls. Components
//! built against `vigil:filter@0.2.0` (`wit/0.2`) and `@0.1.0` (`wit/filter.wit`) both run.

pub mod bindings;
pub mod convert;
pub mod engine;
pub mod filter;
pub mod module;
pub mod sandbox;
pub mod state;
pub mod v1;
pub mod worlds;
