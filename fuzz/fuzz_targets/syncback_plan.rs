//! Fuzzes the syncback planner; the body is
//! [`gohot::syncback::fuzz::syncback_plan`], which `tests/fuzz_seeds.rs` also runs on every file of
//! `fuzz/seeds/syncback_plan/`.
//!
//! Input: a flags line, then `R|L|S TYPE PATH CONTENT` lines (the container, the local tree, the state).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gohot::syncback::fuzz::syncback_plan(data));
