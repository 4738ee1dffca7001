//! Fuzz target: vigil::fuzz_entry::extension_reply on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigil::fuzz_entry::extension_reply(data));
