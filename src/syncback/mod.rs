//! Syncback: files made inside a running container (generated code, test
//! snapshots, a migrated SQLite file, logs) copied back into the local tree.
//!
//! # Why it is built this way
//!
//! Tilt's syncback runs rsync over `kubectl exec`; gohot's dev images have
//! no rsync, no shell and no tar, but they do carry the way-in helper
//! ([`crate::wayin`]). So a round is two execs through the same
//! [`Target`] seam the dev loop uses — `helper list REMOTE_DIR` (path, type,
//! size, mode, mtime and sha256 of every entry) and `helper get REMOTE_DIR`
//! (one gzip stream of just the files that differ) — with all the deciding
//! done locally by pure functions ([`plan::plan`]) that tests drive with
//! crafted listings.
//!
//! * **Only what changed travels**: files are compared by size, mode and
//!   sha256 (mtime only spares rehashing local files), and a wanted file
//!   whose content is already here under another name is copied or moved
//!   locally ([`plan::Reuse`]), so a rename in the container costs no bytes.
//! * **The container is untrusted** (the `kubectl cp` CVEs are the
//!   cautionary tale): paths are [`RelPath`]s, links that lead outside are
//!   refused, and [`apply`] never writes through a local symlink.
//! * **Never half a file**: each file lands by temp + fsync + rename after
//!   its hash is checked.
//! * **Local edits win unless `--force`**: a state file under gohot's cache
//!   ([`plan::state_path`]) remembers what syncback last wrote, making every
//!   path a three-way comparison; the [`Report`] lists conflicts.
//! * **Deletions only with `--delete`**, exclusions in gitignore syntax
//!   ([`exclude`]), `--dry-run` plans without touching anything.
//!
//! `--watch` ([`Syncback::watch`]) repeats when the listing changes; the
//! paths syncback wrote ([`Syncback::written`], [`Syncback::is_own_write`])
//! let `gohot dev` ignore them instead of rebuilding.
//!
//! Sources: any [`Target`] — a Docker container by name
//! ([`crate::hosting::docker::ExistingContainer`]), or one pod of a pod or
//! deployment ([`crate::hosting::kube::KubeTarget::one_pod`], which picks a
//! running, ready pod that is not terminating).

pub mod apply;
pub mod exclude;
pub mod fuzz;
pub mod plan;
pub mod spec;

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::hosting::{ExecStream, Replica, Target, TargetError};
use crate::wayin::{self, GetLimits, ListLimits, Listing, RelPath, WayInError};
use apply::Expected;
use exclude::Excludes;
use plan::{Conflict, PlanOptions, Refusal, State};

pub use spec::{SourceSpec, TargetRef};

/// Errors of a syncback round.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncbackError {
    /// `TARGET:REMOTE_DIR` could not be parsed.
    #[error("invalid syncback source {spec:?}: {reason}")]
    BadSpec {
        /// What was given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// An exclude pattern is not valid.
    #[error("invalid exclude pattern {pattern:?}: {reason}")]
    BadExclude {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// A local file operation failed.
    #[error("{about} {}: {source}", path.display())]
    Io {
        /// What was being done.
        about: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing `path` would go through something that is not a real directory.
    #[error("refused to write {path}: {reason}")]
    Unsafe {
        /// The relative path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// The state file is unreadable.
    #[error("the syncback state {} is unreadable: {reason} (delete it to start afresh: local files then count as not synced before)", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The container has no running replica.
    #[error("{target} is not running (start it, or check the name with `docker ps`)")]
    NoReplica {
        /// Which target.
        target: String,
    },
    /// The helper could not list or send files.
    #[error("helper {what} in {replica} failed: {source}{stderr}")]
    Helper {
        /// `list` or `get`.
        what: &'static str,
        /// The replica.
        replica: String,
        /// The protocol-level error.
        source: Box<WayInError>,
        /// The helper's stderr (with a leading separator), if any.
        stderr: String,
    },
    /// The target failed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The listing or file stream from the container is malformed or hostile.
    #[error(transparent)]
    WayIn(Box<WayInError>),
}

impl From<WayInError> for SyncbackError {
    fn from(e: WayInError) -> Self {
        SyncbackError::WayIn(Box::new(e))
    }
}

/// How syncback behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Delete local paths the container no longer has.
    pub delete: bool,
    /// Overwrite local changes.
    pub force: bool,
    /// Plan and report only.
    pub dry_run: bool,
    /// gitignore-style exclude patterns.
    pub excludes: Vec<String>,
    /// Size limits on the files the container may send.
    pub limits: GetLimits,
    /// Size limits on the container's listing.
    pub list_limits: ListLimits,
    /// The source, for messages (`container web`, `deploy/web`).
    pub source: String,
}

/// What a round did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// The replica read from.
    pub replica: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Files fetched and their sizes.
    pub fetched: Vec<(RelPath, u64)>,
    /// Bytes that crossed the exec stream for the fetch (compressed).
    pub wire_bytes: u64,
    /// Local moves instead of fetches (from, to).
    pub renamed: Vec<(RelPath, RelPath)>,
    /// Local copies instead of fetches (from, to).
    pub copied: Vec<(RelPath, RelPath)>,
    /// Deleted files and links.
    pub deleted: Vec<RelPath>,
    /// Symlinks created.
    pub links: Vec<RelPath>,
    /// Directories created.
    pub dirs_created: Vec<RelPath>,
    /// Directories removed (empty ones, `--delete`).
    pub dirs_removed: Vec<RelPath>,
    /// Permission changes.
    pub chmodded: Vec<RelPath>,
    /// Paths left alone because of local changes.
    pub conflicts: Vec<Conflict>,
    /// Local edits kept (the container did not change those files).
    pub kept_local: Vec<RelPath>,
    /// Container entries not reproduced, and why.
    pub refused: Vec<Refusal>,
    /// Files that changed while being read (fetched next round).
    pub changed_while_read: Vec<RelPath>,
    /// Entries already in sync.
    pub unchanged: usize,
    /// Local paths created, replaced or removed (for the dev loop to ignore).
    pub written: Vec<PathBuf>,
}

impl Report {
    /// Sum of the sizes of the fetched files.
    pub fn fetched_bytes(&self) -> u64 {
        self.fetched.iter().map(|(_, n)| n).sum()
    }

    /// Whether local files were left differing from the container because
    /// of local changes (the CLI then exits 1).
    pub fn has_conflicts(&self) -> bool {
        !self.conflicts.is_empty()
    }

    /// One line per action, for `--dry-run` and `-v`.
    pub fn details(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (p, n) in &self.fetched {
            v.push(format!("fetch   {p} ({})", crate::progress::human_bytes(*n)));
        }
        for (a, b) in &self.renamed {
            v.push(format!("rename  {a} -> {b}"));
        }
        for (a, b) in &self.copied {
            v.push(format!("copy    {a} -> {b}"));
        }
        for p in &self.links {
            v.push(format!("link    {p}"));
        }
        for p in &self.chmodded {
            v.push(format!("chmod   {p}"));
        }
        for p in &self.deleted {
            v.push(format!("delete  {p}"));
        }
        for p in &self.dirs_removed {
            v.push(format!("rmdir   {p}"));
        }
        for c in &self.conflicts {
            v.push(format!("conflict {} ({})", c.path, c.reason()));
        }
        for r in &self.refused {
            v.push(format!("refused {} ({})", r.path, r.reason));
        }
        v
    }
}

impl fmt::Display for Report {
    /// `3 fetched (12.0 kB), 1 renamed, 1 deleted, 1 conflict: a.txt (local changes; --force to overwrite)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.fetched.is_empty() {
            parts.push(format!(
                "{} fetched ({})",
                self.fetched.len(),
                crate::progress::human_bytes(self.fetched_bytes())
            ));
        }
        for (n, what) in [
            (self.renamed.len(), "renamed"),
            (self.copied.len(), "copied"),
            (self.links.len(), "linked"),
            (self.chmodded.len(), "mode changed"),
            (self.deleted.len(), "deleted"),
            (self.kept_local.len(), "kept local edits"),
            (self.changed_while_read.len(), "changing (retry next round)"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if !self.refused.is_empty() {
            let first = &self.refused[0];
            let more =
                if self.refused.len() > 1 { format!(" and {} more", self.refused.len() - 1) } else { String::new() };
            parts.push(format!("{} refused: {} ({}){more}", self.refused.len(), first.path, first.reason));
        }
        if !self.conflicts.is_empty() {
            let n = self.conflicts.len();
            let list: Vec<String> =
                self.conflicts.iter().take(3).map(|c| format!("{} ({})", c.path, c.reason())).collect();
            let more = if n > 3 { format!(" and {} more", n - 3) } else { String::new() };
            parts.push(format!("{n} conflict{}: {}{more}", if n == 1 { "" } else { "s" }, list.join(", ")));
        }
        if parts.is_empty() {
            parts.push(format!("up to date ({} entries)", self.unchanged));
        }
        if self.dry_run {
            write!(f, "dry run, nothing changed; would be: ")?;
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// A syncback from one remote directory into one local directory, kept
/// across rounds (for `--watch` and for the dev loop's ignore list).
pub struct Syncback<'t> {
    target: &'t dyn Target,
    remote_dir: String,
    local_dir: PathBuf,
    state_path: PathBuf,
    opts: Options,
    excludes: Excludes,
    written: HashMap<PathBuf, Option<String>>,
    /// A digest of the last listing synced, for `--watch` to compare.
    last_listing: Option<[u8; 32]>,
}

impl<'t> Syncback<'t> {
    /// Prepares a syncback of `remote_dir` in `target` into `local_dir`,
    /// remembering what it wrote in `state_path` (see [`plan::state_path`]).
    /// `local_dir` is created unless this is a dry run.
    pub fn new(
        target: &'t dyn Target,
        remote_dir: &str,
        local_dir: &Path,
        state_path: PathBuf,
        opts: Options,
    ) -> Result<Self, SyncbackError> {
        let excludes = Excludes::new(&opts.excludes)?;
        if !opts.dry_run {
            std::fs::create_dir_all(local_dir).map_err(|source| SyncbackError::Io {
                about: "cannot create",
                path: local_dir.into(),
                source,
            })?;
        }
        // The root is the user's choice and may itself be a link: resolve it once.
        let local_dir = std::fs::canonicalize(local_dir).unwrap_or_else(|_| local_dir.to_path_buf());
        Ok(Syncback {
            target,
            remote_dir: remote_dir.to_string(),
            local_dir,
            state_path,
            opts,
            excludes,
            written: HashMap::new(),
            last_listing: None,
        })
    }

    /// The local directory (canonical).
    pub fn local_dir(&self) -> &Path {
        &self.local_dir
    }

    /// The first live replica of the target.
    pub async fn replica(&self) -> Result<Replica, SyncbackError> {
        self.target.replicas().await?.into_iter().next().ok_or_else(|| SyncbackError::NoReplica {
            target: if self.opts.source.is_empty() { "the container".into() } else { self.opts.source.clone() },
        })
    }

    /// Lists the remote directory through the helper, parsing the listing
    /// as it streams in (bounded by [`Options::list_limits`]).
    pub async fn list(&self, replica: &Replica) -> Result<Listing, SyncbackError> {
        let patterns: Vec<&str> = self.excludes.helper_patterns().iter().map(String::as_str).collect();
        let argv = wayin::list_argv(&self.remote_dir, &patterns);
        let ExecStream { stdout, stderr, keep } = self.target.exec_stream(replica, &argv, Bytes::new()).await?;
        let limits = self.opts.list_limits;
        let reader = tokio_util::io::SyncIoBridge::new(stdout);
        let parsed = tokio::task::spawn_blocking(move || wayin::read_listing(reader, limits)).await.map_err(|e| {
            SyncbackError::Target(TargetError::Exec { replica: replica.name.clone(), detail: e.to_string() })
        })?;
        drop(keep);
        parsed.map_err(|source| helper_error("list", replica, source, &stderr.get()))
    }

    /// One round: list, compare, apply (or only report, in a dry run).
    pub async fn round(&mut self, replica: &Replica) -> Result<Report, SyncbackError> {
        let listing = self.list(replica).await?;
        let digest = listing.digest();
        let report = self.sync_listing(replica, listing).await;
        if report.is_ok() {
            self.last_listing = Some(digest);
        }
        report
    }

    /// Brings the local tree in line with `listing`, fetching from `replica`.
    pub async fn sync_listing(&mut self, replica: &Replica, listing: Listing) -> Result<Report, SyncbackError> {
        let mut state = State::load(&self.state_path)?;
        let local = plan::scan_local(&self.local_dir, &self.excludes, &state)?;
        let plan = plan::plan(
            &listing,
            &local,
            &state,
            &self.excludes,
            PlanOptions { delete: self.opts.delete, force: self.opts.force },
        );
        // The plan is all that is needed from here on: what it replaces or
        // deletes is checked against the scan again right before.
        let expected = Expected::new(&plan, &local);
        drop((local, listing));
        let mut report = Report {
            replica: replica.name.clone(),
            conflicts: plan.conflicts.clone(),
            kept_local: plan.kept_local.clone(),
            refused: plan.refused.clone(),
            unchanged: plan.unchanged,
            ..Default::default()
        };
        if self.opts.dry_run {
            report.dry_run = true;
            report.fetched = plan.fetch.iter().map(|f| (f.path.clone(), f.size)).collect();
            for u in &plan.reuse {
                let pair = (u.from.clone(), u.to.clone());
                if u.rename {
                    report.renamed.push(pair)
                } else {
                    report.copied.push(pair)
                }
            }
            report.links = plan.links.iter().map(|(p, _)| p.clone()).collect();
            report.chmodded = plan.chmod.iter().map(|(p, _)| p.clone()).collect();
            report.deleted = plan.delete.clone();
            report.dirs_created = plan.mkdirs.clone();
            report.dirs_removed = plan.rmdirs.clone();
            return Ok(report);
        }
        state.pending = plan
            .fetch
            .iter()
            .map(|f| (f.path.as_str().to_string(), f.sha256.clone()))
            .chain(plan.reuse.iter().map(|r| (r.to.as_str().to_string(), r.sha256.clone())))
            .collect();
        state.save(&self.state_path)?;
        let result = self.apply(replica, &plan, expected, &mut state, &mut report).await;
        state.pending.clear();
        // Whatever happened, remember what did land (so it is no conflict next time).
        let saved = state.save(&self.state_path);
        for p in &report.written {
            let sha = plan::hash_file(p).ok();
            self.written.insert(p.clone(), sha);
        }
        result?;
        saved?;
        Ok(report)
    }

    async fn apply(
        &self,
        replica: &Replica,
        plan: &plan::Plan,
        mut expected: Expected,
        state: &mut State,
        report: &mut Report,
    ) -> Result<(), SyncbackError> {
        let fetch = apply::apply_local(&self.local_dir, plan, &mut expected, state, report)?;
        if !fetch.is_empty() {
            let paths: Vec<RelPath> = fetch.iter().map(|f| f.path.clone()).collect();
            let request = Bytes::from(wayin::get_request(&paths));
            let ExecStream { stdout, stderr, keep } =
                self.target.exec_stream(replica, &wayin::get_argv(&self.remote_dir), request).await?;
            // Each file goes from the stream to its temporary file as it
            // comes; the blocking reads and writes run off the runtime.
            let reader = CountingReader { inner: tokio_util::io::SyncIoBridge::new(stdout), count: 0 };
            let (root, limits, only) = (self.local_dir.clone(), self.opts.limits, expected.only(paths.into_iter()));
            let (mut st, mut rep) = (std::mem::take(state), std::mem::take(report));
            let joined = tokio::task::spawn_blocking(move || {
                let mut reader = reader;
                let r = apply::apply_stream(&root, &fetch, &mut reader, limits, &only, &mut st, &mut rep);
                rep.wire_bytes = reader.count;
                (r, st, rep)
            })
            .await;
            drop(keep);
            let (result, st, rep) = joined.map_err(|e| {
                SyncbackError::Target(TargetError::Exec { replica: replica.name.clone(), detail: e.to_string() })
            })?;
            (*state, *report) = (st, rep);
            result.map_err(|e| match e {
                SyncbackError::WayIn(w) => helper_error("get", replica, *w, &stderr.get()),
                other => other,
            })?;
        }
        apply::finish(&self.local_dir, plan, &expected, state, report)
    }

    /// Repeats rounds every `interval` when the container's listing changed
    /// (the first round always runs). `on_round` gets each round's outcome —
    /// errors included, they do not stop the loop — and returns whether to
    /// go on. A replaced container or pod is picked up on the next round.
    pub async fn watch<F>(&mut self, interval: Duration, mut on_round: F) -> Result<(), SyncbackError>
    where
        F: FnMut(Result<&Report, &SyncbackError>) -> ControlFlow<()>,
    {
        loop {
            let outcome = self.watch_tick().await;
            let flow = match &outcome {
                Ok(Some(r)) => on_round(Ok(r)),
                Ok(None) => ControlFlow::Continue(()),
                Err(e) => on_round(Err(e)),
            };
            if flow.is_break() {
                return Ok(());
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// One polling step of [`watch`](Self::watch): `None` if the listing did not change.
    pub async fn watch_tick(&mut self) -> Result<Option<Report>, SyncbackError> {
        let replica = self.replica().await?;
        let listing = self.list(&replica).await?;
        let digest = listing.digest();
        if self.last_listing == Some(digest) {
            return Ok(None);
        }
        let report = self.sync_listing(&replica, listing).await?;
        // A round with files changing mid-read, or local edits it had to
        // leave alone mid-round, is retried even if the listing stays.
        let retry = report.conflicts.iter().any(|c| c.kind == plan::ConflictKind::ChangedDuringRound);
        if report.changed_while_read.is_empty() && !retry {
            self.last_listing = Some(digest);
        }
        Ok(Some(report))
    }

    /// The local paths syncback created, replaced or removed so far.
    pub fn written(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.written.keys().cloned().collect();
        v.sort();
        v
    }

    /// Whether `path` is as syncback left it (its own write, or its own
    /// delete): a watcher should then not react to it. A file edited since
    /// is not.
    pub fn is_own_write(&self, path: &Path) -> bool {
        match self.written.get(path) {
            None => false,
            Some(sha) => plan::hash_file(path).ok() == *sha,
        }
    }
}

/// Counts the bytes that cross the exec stream (the report's `wire_bytes`).
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn helper_error(what: &'static str, replica: &Replica, source: WayInError, stderr: &[u8]) -> SyncbackError {
    let text = String::from_utf8_lossy(stderr).trim().chars().take(500).collect::<String>();
    let mut stderr = if text.is_empty() { String::new() } else { format!(" ({text})") };
    if matches!(source, WayInError::BadStatus { .. }) {
        stderr.push_str(&format!(
            "; is the gohot helper at {} in the container? syncback needs a gohot dev image",
            crate::layout::HELPER_PATH
        ));
    }
    SyncbackError::Helper { what, replica: replica.name.clone(), source: Box::new(source), stderr }
}

/// Whether `path` is exactly what a syncback into one of its ancestor
/// directories left there. `gohot dev` ignores such changes, so files synced
/// back from a container never trigger a rebuild loop; a later edit of the
/// file changes its hash and counts again.
pub fn written_by_syncback(cache_root: &Path, path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else { return false };
    let mut dir = path.parent();
    while let Some(d) = dir {
        let state_file = plan::state_path(cache_root, d);
        if state_file.is_file() {
            if let (Ok(state), Ok(rel)) = (plan::State::load(&state_file), path.strip_prefix(d)) {
                let rel = rel.to_str().unwrap_or_default();
                let expected: Vec<&String> =
                    state.files.get(rel).map(|r| &r.sha256).into_iter().chain(state.pending.get(rel)).collect();
                if !expected.is_empty() {
                    return plan::hash_file(&path).is_ok_and(|h| expected.contains(&&h));
                }
            }
        }
        dir = d.parent();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dev loop may run a round on another task.
    #[allow(dead_code)]
    fn round_is_send(sb: &mut Syncback<'_>, r: &Replica) {
        fn send<T: Send>(_: T) {}
        send(sb.round(r));
    }

    #[test]
    fn report_line() {
        let mut r = Report::default();
        assert_eq!(r.to_string(), "up to date (0 entries)");
        r.fetched = vec![(RelPath::new("a").expect("p"), 10_000), (RelPath::new("b").expect("p"), 2_000)];
        r.renamed = vec![(RelPath::new("x").expect("p"), RelPath::new("y").expect("p"))];
        r.deleted = vec![RelPath::new("d").expect("p")];
        r.conflicts = vec![Conflict { path: RelPath::new("a.txt").expect("p"), kind: plan::ConflictKind::BothChanged }];
        assert_eq!(
            r.to_string(),
            "2 fetched (12.0 kB), 1 renamed, 1 deleted, 1 conflict: a.txt (local changes; --force to overwrite)"
        );
        assert_eq!(crate::progress::human_bytes(1_900_000), "1.9 MB");
    }
}
