//! The dev variant of an image: what `gohot dev` needs inside the container
//! before the first hot reload — watchexec (in kodata) as the supervisor and
//! the way-in helper that writes new binaries atomically.

pub mod watchexec;
