//! Fuzzes manual-rule validation and glob matching; the body is
//! [`gohot::sync::fuzz::glob_rules`], which `tests/fuzz_seeds.rs` also runs
//! on every file of `fuzz/seeds/glob_rules/`.
//!
//! Input: `RULES (src \t dest [\t strip], one a line) \0 PATHS (one a line) \0 WORKDIR`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gohot::sync::fuzz::glob_rules(data));
