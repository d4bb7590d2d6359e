//! Fuzzes the Dockerfile parser, the `.dockerignore` matcher and sync-map
//! inference; the body is [`gohot::sync::fuzz::dockerfile`], which
//! `tests/fuzz_seeds.rs` also runs on every file of `fuzz/seeds/dockerfile/`.
//!
//! Input: `DOCKERFILE \0 CONTEXT FILES (one a line) \0 DOCKERIGNORE`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gohot::sync::fuzz::dockerfile(data));
