//! Sync: what to send into a running container instead of rebuilding.
//!
//! [`rules`] holds Skaffold-style `manual` rules, [`dockerfile`] infers
//! destinations from a Dockerfile (`infer`). Both are pure: values in, values out.

pub mod dockerfile;
pub mod rules;
pub mod wayin;
