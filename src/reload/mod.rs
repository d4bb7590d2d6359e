//! One reload for every caller: the binary pushed into every replica of one
//! app, files synced beside it, replicas that restarted brought current,
//! the new process probed — and a report of what happened. The dev loop
//! turns reports into events and status lines; the Skaffold sync hook into
//! its exit status. Nothing here prints or decides when to reload.
//!
//! # Theory of operation
//!
//! A [`Reloader`] serves one app on one [`Target`]. It keeps one way-in
//! session per replica (`sessions.rs`: one exec, many requests), the binary
//! every replica should run, and what each replica instance is known to
//! hold. [`Reloader::push_binary`] sends the binary to every replica in
//! parallel: a delta against the binary a replica holds (or is likely to
//! hold), the whole file when the helper refuses the delta's base, nothing
//! when the replica already has it. The helper renames the file into place
//! atomically and waits until watchexec has started a process from it, so
//! a reported reload always means the new code runs; the probe then waits
//! until it answers.
//!
//! [`Reloader::sync_files`] copies (or removes) files — kodata, `gohot.yaml`
//! sync rules — through the same sessions, and remembers them, so that
//! [`Reloader::check_replicas`] gives a replica that restarted or replaced
//! another the current binary *and* those files before it counts as current.

mod binary;
mod files;
mod health;
mod payload;
pub mod probe;
mod sessions;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

pub use binary::{PushReport, ReplicaOutcome};
pub use files::{FileItem, FilesReport};
pub use health::HealthReport;
pub use probe::{first_answer, ContainerProbe, Probe};

use crate::hosting::Target;
use sessions::Sessions;

/// How one app is reloaded.
#[derive(Clone, Debug)]
pub struct ReloadOptions {
    /// The app's name (the binary's), as reports name it.
    pub app: String,
    /// Where the binary lives in the container (`/ko-app/<name>`).
    pub dest: String,
    /// How long watchexec may take to start the new process, and the new
    /// process to answer the probe.
    pub restart_timeout: Duration,
    /// How gohot knows the new process serves.
    pub probe: Probe,
    /// One exec per request instead of a session per replica: for callers
    /// that make one request per replica and exit (the Skaffold hook).
    pub one_shot: bool,
}

/// A binary and its sha256.
#[derive(Clone, Debug)]
pub struct Binary {
    /// The bytes.
    pub bytes: Bytes,
    /// sha256, lowercase hex.
    pub sha256: String,
}

impl Binary {
    /// `bytes` with its hash computed.
    pub fn new(bytes: Bytes) -> Self {
        let sha256 = crate::wayin::sha256_hex(&bytes);
        Binary { bytes, sha256 }
    }
}

/// A file synced during the session, as it must be in a replica that
/// restarted: its local source (read again when re-sent), or removed.
#[derive(Clone, Debug)]
enum Synced {
    /// Copied from this local file with this mode.
    Copied { local: PathBuf },
    /// Removed.
    Removed,
}

/// Reloads one app on one target; see the module doc.
pub struct Reloader<'t> {
    target: &'t dyn Target,
    sessions: Sessions,
    opts: ReloadOptions,
    /// The binary every replica should run (None: not known yet).
    current: Option<Binary>,
    /// Replica instance → sha256 of the binary it holds.
    known: HashMap<String, String>,
    /// Container path → what this session put there.
    synced: BTreeMap<String, Synced>,
    /// How deltas are compressed for the link ([`payload`]).
    chooser: payload::Chooser,
    /// The seeds of `current` (its sha256), indexed off the critical path
    /// after a reload for the next one's delta (filled when done).
    seeds: Option<(String, Arc<OnceLock<crate::wayin::delta::SeedIndex>>)>,
}

impl<'t> Reloader<'t> {
    /// A reloader for the app on `target`; `current` is the binary its
    /// containers were started with, when known.
    pub fn new(target: &'t dyn Target, opts: ReloadOptions, current: Option<Binary>) -> Self {
        // A put waits up to restart_timeout for the restart; past that and a
        // margin for the transfer, a replica is hung and its session closed.
        let deadline = opts.restart_timeout + Duration::from_secs(10);
        let sessions = if opts.one_shot { Sessions::one_shot(deadline) } else { Sessions::new(deadline) };
        Reloader {
            target,
            sessions,
            opts,
            current,
            known: HashMap::new(),
            synced: BTreeMap::new(),
            chooser: payload::Chooser::default(),
            seeds: None,
        }
    }

    /// The options.
    pub fn options(&self) -> &ReloadOptions {
        &self.opts
    }

    /// Changes the probe (a port-forward that came up after start-up).
    pub fn set_probe(&mut self, probe: Probe) {
        self.opts.probe = probe;
    }

    /// The binary every replica should run.
    pub fn current(&self) -> Option<&Binary> {
        self.current.as_ref()
    }
}

/// 0755 for an executable file, else 0644.
fn file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| if m.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 }).unwrap_or(0o644)
}

#[cfg(test)]
mod tests;
