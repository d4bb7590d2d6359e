//! Sync: what to send into a running container instead of rebuilding.
//!
//! [`rules`] holds Skaffold-style `manual` rules, [`dockerfile`] infers
//! destinations from a Dockerfile (`infer`). Both are pure: values in, values
//! out. [`infer`] applies the inference to a directory on disk.

pub mod dockerfile;
#[doc(hidden)]
pub mod fuzz;
pub mod infer;
pub mod rules;
