//! Fuzzes the syncback listing parser (what `helper list` prints); the body is
//! [`gohot::wayin::fuzz::syncback_listing`], which `tests/fuzz_seeds.rs` also runs on every file of
//! `fuzz/seeds/syncback_listing/`.
//!
//! Input: the listing's bytes, as the helper would print them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gohot::wayin::fuzz::syncback_listing(data));
