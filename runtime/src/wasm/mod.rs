//! WebAssembly filter components: one engine per process, compiled code cached on disk, one
//! sandboxed instance per node with a call deadline and a memory limit, fresh instances after a
//! fault, backoff for a module that keeps failing, and hot swap between two calls.

pub mod bindings;
pub mod convert;
pub mod engine;
pub mod filter;
pub mod module;
pub mod sandbox;
pub mod state;
