//! What gohot reads from the user's files: `.ko.yaml` ([`ko`], ko's own
//! format: base images, platforms, build flags) and `gohot.yaml`
//! ([`gohot`]: sync rules, allowed cluster contexts). One parser each.

pub mod gohot;
pub mod ko;
