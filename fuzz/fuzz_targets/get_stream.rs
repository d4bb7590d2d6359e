//! Fuzzes the get stream reader (what `helper get` sends); the body is
//! [`gohot::wayin::fuzz::get_stream`], which `tests/fuzz_seeds.rs` also runs on every file of
//! `fuzz/seeds/get_stream/`.
//!
//! Input: `REQUESTED PATHS (one a line) \0 FLAG STREAM`; FLAG `z` gzips the stream first.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gohot::wayin::fuzz::get_stream(data));
