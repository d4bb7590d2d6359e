//! Fuzzes a registry's `WWW-Authenticate` challenge and a token server's
//! answer as gohot reads them; the body is [`gohot::oci::fuzz::registry_auth`],
//! which `tests/fuzz_seeds.rs` also runs on every file of `fuzz/seeds/registry_auth/`.
//!
//! Input: `WWW-AUTHENTICATE HEADER \0 TOKEN RESPONSE BODY`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gohot::oci::fuzz::registry_auth(data));
