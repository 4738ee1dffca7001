//! Node implementations, one file per node type.

pub mod signal_gate;
