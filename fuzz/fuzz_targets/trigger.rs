//! Fuzz target: vigil::fuzz_entry::trigger on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil::fuzz_entry::trigger(data));
