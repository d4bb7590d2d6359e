//! gohot's integration tests: one binary, one module per area. They use the
//! real parts — the Go toolchain, Debian's docker-registry, the Docker engine,
//! skopeo and umoci — installed by `scripts/setup`.

mod util;

mod build;
mod config;
mod context_guard;
mod dap_client;
mod debug;
mod dev;
mod docs_claims;
mod engines;
mod errors;
mod exit_codes;
mod fuzz_seeds;
mod helper_files;
mod identity_token;
mod kind;
mod koflags;
mod kube;
mod link;
mod multi;
mod rbac;
mod registry_transport;
mod remote;
mod resolve;
mod skaffold;
mod skaffold_sync;
mod staticbase;
mod syncback;
mod wayin;
mod wayin_support;
