//! gohot builds Go container images the way ko does and hot-reloads the Go
//! binary into running containers.
//!
//! The pipeline follows ko's split, one module a stage, data flowing one way:
//! [`builder`] (go build → OCI image) → [`publish`] (registry, engine, disk) →
//! [`resolve`] (`ko://` references in manifests → digests).
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod atomic;
pub mod builder;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod debug;
pub mod deploy;
pub mod devimage;
pub mod devloop;
pub mod docker;
pub mod exec;
pub mod hosting;
pub mod layout;
pub mod oci;
pub mod platform;
pub mod progress;
pub mod publish;
pub mod reload;
pub mod resolve;
pub mod skaffold;
pub mod sync;
pub mod syncback;
pub mod wayin;
