//! Fuzz target: vigil::fuzz_entry::mp4 on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil::fuzz_entry::mp4(data));
