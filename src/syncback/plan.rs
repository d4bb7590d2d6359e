//! The comparison: a container listing, the local tree and what the last
//! syncback wrote, in; a plan of what to do, out. Pure except for
//! [`scan_local`], which reads the local tree (never following a symlink).
//!
//! # Three-way, per path
//!
//! The state file remembers the sha256 of each file (and the target of each
//! link) as syncback last left it — the common base of the local copy and
//! the container's. With `base`, `local` and `remote`:
//!
//! | case | action |
//! | --- | --- |
//! | local = remote | nothing (recorded as base if it was not) |
//! | local = base (or absent) | take remote |
//! | remote = base | local edit only: keep it (`--force` overwrites) |
//! | otherwise, or no base | conflict: keep local (`--force` overwrites) |
//!
//! A path the container no longer has is deleted only with `--delete`, and
//! only if the local copy is still what syncback wrote (else `--force`);
//! a directory only if syncback created it, and only once empty.
//! A wanted file whose content already exists locally under another path is
//! copied from there, or moved when that path is going away (a rename in
//! the container): its bytes do not travel again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::exclude::Excludes;
use super::SyncbackError;
use crate::wayin::{EntryType, ListEntry, Listing, RelPath};

/// Prefix of syncback's temporary files (skipped by the local scan).
pub use crate::atomic::TEMP_PREFIX;

/// What syncback last wrote, per local path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// Files: path → record.
    #[serde(default)]
    pub files: BTreeMap<String, FileRecord>,
    /// Symlinks: path → target.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// Directories syncback created (the only ones `--delete` removes).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub dirs: BTreeSet<String>,
    /// Files a round is about to write (path → sha256), saved before any is
    /// written, so `gohot dev` can tell syncback's writes from edits the
    /// moment they appear. Cleared when the round ends; never used for
    /// conflict decisions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending: BTreeMap<String, String>,
}

/// A file as syncback left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Content hash.
    pub sha256: String,
    /// Local size after the write (with `mtime_ns`, a hint that spares rehashing).
    pub size: u64,
    /// Local modification time after the write, unix nanoseconds.
    pub mtime_ns: i64,
}

impl State {
    /// Current format version.
    pub const VERSION: u32 = 1;

    /// Reads the state file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<State, SyncbackError> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => {
                return Err(SyncbackError::Io { about: "cannot read the syncback state", path: path.into(), source: e })
            }
        };
        let s: State = serde_json::from_slice(&data)
            .map_err(|e| SyncbackError::BadState { path: path.into(), reason: e.to_string() })?;
        if s.version != Self::VERSION {
            return Err(SyncbackError::BadState {
                path: path.into(),
                reason: format!("unknown version {}", s.version),
            });
        }
        Ok(s)
    }

    /// Writes the state file atomically.
    pub fn save(&self, path: &Path) -> Result<(), SyncbackError> {
        let mut s = self.clone();
        s.version = Self::VERSION;
        let data = serde_json::to_vec_pretty(&s).unwrap_or_default();
        crate::atomic::write(path, &data, None).map_err(|e| SyncbackError::Io {
            about: "cannot write the syncback state",
            path: path.into(),
            source: e,
        })
    }
}

/// Where the state of a local directory is kept: under gohot's cache,
/// keyed by the directory's canonical path, so the developer's tree gets no
/// extra file (and `gohot dev` no extra event).
pub fn state_path(cache_root: &Path, local_dir: &Path) -> PathBuf {
    let key = hex::encode(Sha256::digest(local_dir.as_os_str().as_encoded_bytes()));
    cache_root.join("syncback").join(format!("{}.json", &key[..32]))
}

/// A local entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalEntry {
    /// Regular file.
    File {
        /// Size.
        size: u64,
        /// Permission bits.
        mode: u32,
        /// Content hash.
        sha256: String,
    },
    /// Directory (a real one, not a link to one).
    Dir,
    /// Symbolic link (never followed).
    Symlink {
        /// Its target.
        target: String,
    },
    /// Anything else.
    Other,
}

/// The local tree below LOCAL_DIR, minus excluded paths and names that
/// cannot come from the container (not UTF-8, not a [`RelPath`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalTree {
    /// Entries by path.
    pub entries: BTreeMap<RelPath, LocalEntry>,
}

/// sha256 of a file's content, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(unix)]
fn mode_of(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(m: &std::fs::Metadata) -> u32 {
    if m.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// Modification time, unix nanoseconds (0 when unknown).
pub fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Reads the tree below `root` without following symlinks. A file whose
/// size and mtime are what the state recorded keeps the recorded hash (the
/// mtime is only a hint to spare rehashing); any other file is hashed.
pub fn scan_local(root: &Path, excludes: &Excludes, state: &State) -> Result<LocalTree, SyncbackError> {
    let mut tree = LocalTree::default();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SyncbackError::Io { about: "cannot read the local tree", path, source }
    };
    let mut stack: Vec<(PathBuf, Option<RelPath>)> = vec![(root.to_path_buf(), None)];
    while let Some((dir, rel)) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.is_none() => return Ok(tree),
            Err(e) => return Err(io(&dir)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(io(&dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let joined = match &rel {
                Some(r) => format!("{r}/{name}"),
                None => name.clone(),
            };
            let Ok(path) = RelPath::new(&joined) else { continue };
            let full = entry.path();
            let meta = match std::fs::symlink_metadata(&full) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&full)(e)),
            };
            let ft = meta.file_type();
            if excludes.is_excluded(&path, ft.is_dir()) {
                continue;
            }
            let local = if ft.is_dir() {
                stack.push((full, Some(path.clone())));
                LocalEntry::Dir
            } else if ft.is_symlink() {
                match std::fs::read_link(&full).map(|t| t.to_str().map(str::to_string)) {
                    Ok(Some(target)) => LocalEntry::Symlink { target },
                    Ok(None) => LocalEntry::Other,
                    Err(e) => return Err(io(&full)(e)),
                }
            } else if ft.is_file() {
                let size = meta.len();
                let known = state
                    .files
                    .get(path.as_str())
                    .filter(|r| r.size == size && r.mtime_ns == mtime_ns(&meta) && r.mtime_ns != 0);
                let sha256 = match known {
                    Some(r) => r.sha256.clone(),
                    None => match hash_file(&full) {
                        Ok(h) => h,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io(&full)(e)),
                    },
                };
                LocalEntry::File { size, mode: mode_of(&meta), sha256 }
            } else {
                LocalEntry::Other
            };
            tree.entries.insert(path, local);
        }
    }
    Ok(tree)
}

/// Whether a symlink at `path` pointing to `target` may be created: the
/// target is relative, climbs (`..`) only at its start — through the link's
/// own parents, which syncback knows are real directories — and never above
/// the root. A `..` after a name could climb out of wherever that name
/// leads if it is itself a link (`a -> ../..`, `b -> a/..`), so it is refused.
pub fn symlink_allowed(path: &RelPath, target: &str) -> bool {
    if !path.symlink_target_stays_inside(target) {
        return false;
    }
    let mut seen_name = false;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." if seen_name => return false,
            ".." => {}
            _ => seen_name = true,
        }
    }
    true
}

/// Options that change the plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Delete local paths the container no longer has.
    pub delete: bool,
    /// Overwrite (or delete) local changes.
    pub force: bool,
}

/// A file to fetch from the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Its path.
    pub path: RelPath,
    /// Size in the listing.
    pub size: u64,
    /// Permission bits to give it.
    pub mode: u32,
    /// sha256 in the listing.
    pub sha256: String,
}

/// Local content reused for a wanted file instead of fetching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reuse {
    /// Local file with the content.
    pub from: RelPath,
    /// Where it is wanted.
    pub to: RelPath,
    /// Move (the source is going away) rather than copy.
    pub rename: bool,
    /// The content hash.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// Permission bits to give the destination.
    pub mode: u32,
}

/// What the state records for a path in sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// A file with this sha256.
    File(String),
    /// A symlink with this target.
    Link(String),
}

/// Why a path was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictKind {
    /// Changed locally and in the container since the last syncback.
    BothChanged,
    /// Exists locally, differs, and syncback never wrote it.
    NotFromSyncback,
    /// Gone from the container, but changed locally (or never synced).
    DeleteLocalChanges,
    /// A local directory (or special file) stands where the container has something else.
    InTheWay,
    /// Changed locally while the round ran (after the scan, before the write).
    ChangedDuringRound,
}

/// A path left alone because the local copy has changes of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Its path.
    pub path: RelPath,
    /// Why.
    pub kind: ConflictKind,
}

impl Conflict {
    /// Short reason for people.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ConflictKind::BothChanged => "local changes; --force to overwrite",
            ConflictKind::NotFromSyncback => "local file differs and was not synced back before; --force to overwrite",
            ConflictKind::DeleteLocalChanges => "deleted in the container, local changes; --force to delete",
            ConflictKind::InTheWay => "a local directory or special file is in the way; remove it",
            ConflictKind::ChangedDuringRound => "changed locally while syncback ran; kept, compared again next round",
        }
    }
}

/// A container entry syncback will not reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Its path (as listed).
    pub path: String,
    /// Why.
    pub reason: String,
}

/// What a syncback round will do, in the order it does it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Local files or links to remove first, because something else replaces them.
    pub remove_first: Vec<RelPath>,
    /// Directories to create (parents first).
    pub mkdirs: Vec<RelPath>,
    /// Local content to copy or move.
    pub reuse: Vec<Reuse>,
    /// Files to fetch.
    pub fetch: Vec<Fetch>,
    /// Symlinks to create.
    pub links: Vec<(RelPath, String)>,
    /// Files whose content is right but whose permission bits are not.
    pub chmod: Vec<(RelPath, u32)>,
    /// Local files and links to delete (`--delete`).
    pub delete: Vec<RelPath>,
    /// Local directories syncback created, to remove if empty (`--delete`), deepest first.
    pub rmdirs: Vec<RelPath>,
    /// Entries already identical, to record as synced (no I/O).
    pub adopt: Vec<(RelPath, Synced)>,
    /// Paths left alone.
    pub conflicts: Vec<Conflict>,
    /// Local edits kept because the container did not change the file.
    pub kept_local: Vec<RelPath>,
    /// Container entries refused or skipped.
    pub refused: Vec<Refusal>,
    /// Entries already in sync.
    pub unchanged: usize,
}

impl Plan {
    /// Whether the plan changes nothing locally.
    pub fn is_noop(&self) -> bool {
        self.remove_first.is_empty()
            && self.mkdirs.is_empty()
            && self.reuse.is_empty()
            && self.fetch.is_empty()
            && self.links.is_empty()
            && self.chmod.is_empty()
            && self.delete.is_empty()
            && self.rmdirs.is_empty()
    }
}

/// Permission bits syncback gives local files: never setuid, setgid or sticky.
pub fn local_mode(remote: u32) -> u32 {
    remote & 0o777
}

/// Compares `listing` (the container) with `local` given `state` (the last
/// syncback) and returns what to do. Pure.
pub fn plan(listing: &Listing, local: &LocalTree, state: &State, excludes: &Excludes, opts: PlanOptions) -> Plan {
    let mut p = Plan::default();
    for s in &listing.skipped {
        p.refused.push(Refusal { path: s.path.clone(), reason: s.reason.clone() });
    }
    let remote: BTreeMap<&RelPath, &ListEntry> = listing
        .entries
        .iter()
        .filter(|e| !excludes.is_excluded(&e.path, e.kind == EntryType::Dir))
        .map(|e| (&e.path, e))
        .collect();
    // Is the local entry at `path` what syncback left there (or absent)?
    let clean = |path: &RelPath| match local.entries.get(path) {
        None | Some(LocalEntry::Dir) => true,
        Some(LocalEntry::File { sha256, .. }) => state.files.get(path.as_str()).is_some_and(|r| &r.sha256 == sha256),
        Some(LocalEntry::Symlink { target }) => state.links.get(path.as_str()) == Some(target),
        Some(LocalEntry::Other) => false,
    };
    // Paths whose local counterpart cannot hold children: skip what is below.
    let mut blocked: BTreeSet<&RelPath> = BTreeSet::new();
    let under_blocked = |path: &RelPath, blocked: &BTreeSet<&RelPath>| {
        let mut q = path.parent();
        while let Some(d) = q {
            if blocked.contains(&d) {
                return true;
            }
            q = d.parent();
        }
        false
    };
    let mut wanted: Vec<&ListEntry> = Vec::new();
    for (&path, &r) in &remote {
        if under_blocked(path, &blocked) {
            if r.kind == EntryType::Dir {
                blocked.insert(path);
            }
            continue;
        }
        let l = local.entries.get(path);
        // May the local entry at `path` (a file or link) be replaced?
        let replaceable = || clean(path) || opts.force;
        match r.kind {
            EntryType::Dir => match l {
                None => p.mkdirs.push(path.clone()),
                Some(LocalEntry::Dir) => p.unchanged += 1,
                Some(LocalEntry::File { .. } | LocalEntry::Symlink { .. }) if replaceable() => {
                    p.remove_first.push(path.clone());
                    p.mkdirs.push(path.clone());
                }
                Some(LocalEntry::Other) => {
                    p.conflicts.push(Conflict { path: path.clone(), kind: ConflictKind::InTheWay });
                    blocked.insert(path);
                }
                Some(_) => {
                    let kind = if state.files.contains_key(path.as_str()) || state.links.contains_key(path.as_str()) {
                        ConflictKind::BothChanged
                    } else {
                        ConflictKind::NotFromSyncback
                    };
                    p.conflicts.push(Conflict { path: path.clone(), kind });
                    blocked.insert(path);
                }
            },
            EntryType::File => {
                let Some(sha) = r.sha256.as_deref().filter(|_| r.error.is_none()) else {
                    let why = r.error.clone().unwrap_or_else(|| "no hash".into());
                    p.refused.push(Refusal {
                        path: path.to_string(),
                        reason: format!("unreadable in the container: {why}"),
                    });
                    continue;
                };
                let base = state.files.get(path.as_str()).map(|f| f.sha256.as_str());
                match l {
                    Some(LocalEntry::File { sha256, mode, .. }) if sha256 == sha => {
                        if *mode & 0o777 != local_mode(r.mode) {
                            p.chmod.push((path.clone(), local_mode(r.mode)));
                        } else {
                            p.unchanged += 1;
                        }
                        if base != Some(sha) {
                            p.adopt.push((path.clone(), Synced::File(sha.to_string())));
                        }
                    }
                    None => wanted.push(r),
                    Some(LocalEntry::File { .. }) if clean(path) || opts.force => wanted.push(r),
                    Some(LocalEntry::File { .. }) if base == Some(sha) => p.kept_local.push(path.clone()),
                    Some(LocalEntry::File { .. }) => {
                        let kind =
                            if base.is_some() { ConflictKind::BothChanged } else { ConflictKind::NotFromSyncback };
                        p.conflicts.push(Conflict { path: path.clone(), kind });
                    }
                    Some(LocalEntry::Symlink { .. }) if replaceable() => {
                        p.remove_first.push(path.clone());
                        wanted.push(r);
                    }
                    Some(LocalEntry::Symlink { .. }) => {
                        p.conflicts.push(Conflict { path: path.clone(), kind: ConflictKind::NotFromSyncback })
                    }
                    Some(LocalEntry::Dir | LocalEntry::Other) => {
                        p.conflicts.push(Conflict { path: path.clone(), kind: ConflictKind::InTheWay })
                    }
                }
            }
            EntryType::Symlink => {
                let Some(target) = r.target.as_deref().filter(|_| r.error.is_none()) else {
                    p.refused
                        .push(Refusal { path: path.to_string(), reason: "unreadable link in the container".into() });
                    continue;
                };
                if !symlink_allowed(path, target) {
                    p.refused.push(Refusal {
                        path: path.to_string(),
                        reason: format!(
                            "symlink to {target:?} points outside LOCAL_DIR (or climbs through another link)"
                        ),
                    });
                    continue;
                }
                match l {
                    Some(LocalEntry::Symlink { target: t }) if t == target => {
                        p.unchanged += 1;
                        if state.links.get(path.as_str()).map(String::as_str) != Some(target) {
                            p.adopt.push((path.clone(), Synced::Link(target.to_string())));
                        }
                    }
                    None => p.links.push((path.clone(), target.to_string())),
                    Some(LocalEntry::File { .. } | LocalEntry::Symlink { .. }) if replaceable() => {
                        p.remove_first.push(path.clone());
                        p.links.push((path.clone(), target.to_string()));
                    }
                    Some(LocalEntry::File { .. } | LocalEntry::Symlink { .. }) => {
                        let kind = if state.files.contains_key(path.as_str()) || state.links.contains_key(path.as_str())
                        {
                            ConflictKind::BothChanged
                        } else {
                            ConflictKind::NotFromSyncback
                        };
                        p.conflicts.push(Conflict { path: path.clone(), kind });
                    }
                    Some(LocalEntry::Dir | LocalEntry::Other) => {
                        p.conflicts.push(Conflict { path: path.clone(), kind: ConflictKind::InTheWay })
                    }
                }
            }
            EntryType::Other => p
                .refused
                .push(Refusal { path: path.to_string(), reason: "not a regular file, directory or symlink".into() }),
        }
    }

    // Local paths the container does not have.
    let mut deletable: BTreeSet<&RelPath> = BTreeSet::new();
    if opts.delete {
        for (path, l) in &local.entries {
            if remote.contains_key(path) {
                continue;
            }
            match l {
                LocalEntry::Dir if state.dirs.contains(path.as_str()) => p.rmdirs.push(path.clone()),
                LocalEntry::Dir => {}
                LocalEntry::File { .. } | LocalEntry::Symlink { .. } if clean(path) || opts.force => {
                    deletable.insert(path);
                }
                _ => p.conflicts.push(Conflict { path: path.clone(), kind: ConflictKind::DeleteLocalChanges }),
            }
        }
        p.rmdirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    }

    // Renames and copies: content already here under another path.
    let mut by_hash: HashMap<&str, Vec<&RelPath>> = HashMap::new();
    let replaced: BTreeSet<&RelPath> = p.remove_first.iter().collect();
    for (path, l) in &local.entries {
        if replaced.contains(path) {
            continue;
        }
        if let LocalEntry::File { sha256, .. } = l {
            by_hash.entry(sha256.as_str()).or_default().push(path);
        }
    }
    let mut reuse_index: HashMap<&RelPath, usize> = HashMap::new(); // source → last reuse using it
    for r in wanted {
        let sha = r.sha256.as_deref().unwrap_or_default();
        let source = by_hash.get(sha).and_then(|c| {
            // Prefer a source that is going away (a rename), then any other.
            c.iter().find(|s| deletable.contains(**s) && **s != &r.path).or_else(|| c.iter().find(|s| **s != &r.path))
        });
        match source {
            Some(&from) => {
                reuse_index.insert(from, p.reuse.len());
                p.reuse.push(Reuse {
                    from: from.clone(),
                    to: r.path.clone(),
                    rename: false,
                    sha256: sha.to_string(),
                    size: r.size,
                    mode: local_mode(r.mode),
                });
            }
            None => p.fetch.push(Fetch {
                path: r.path.clone(),
                size: r.size,
                mode: local_mode(r.mode),
                sha256: sha.to_string(),
            }),
        }
    }
    // A source that is being deleted is moved by its last use instead.
    for (from, i) in reuse_index {
        if deletable.remove(from) {
            p.reuse[i].rename = true;
        }
    }
    p.delete = deletable.into_iter().cloned().collect();
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(s: &str) -> RelPath {
        RelPath::new(s).expect("path")
    }

    fn h(s: &str) -> String {
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    fn remote_file(path: &str, content: &str, mode: u32) -> ListEntry {
        ListEntry {
            path: rp(path),
            kind: EntryType::File,
            size: content.len() as u64,
            mode,
            mtime_ns: 1,
            sha256: Some(h(content)),
            target: None,
            error: None,
        }
    }

    fn listing(entries: Vec<ListEntry>) -> Listing {
        Listing { root: "/d".into(), entries, skipped: Vec::new() }
    }

    fn local(files: &[(&str, &str)]) -> LocalTree {
        let mut t = LocalTree::default();
        for (p, c) in files {
            t.entries.insert(rp(p), LocalEntry::File { size: c.len() as u64, mode: 0o644, sha256: h(c) });
        }
        t
    }

    fn state(files: &[(&str, &str)]) -> State {
        let mut s = State::default();
        for (p, c) in files {
            s.files.insert(p.to_string(), FileRecord { sha256: h(c), size: c.len() as u64, mtime_ns: 1 });
        }
        s
    }

    fn paths(v: &[Fetch]) -> Vec<&str> {
        v.iter().map(|f| f.path.as_str()).collect()
    }

    const NONE: PlanOptions = PlanOptions { delete: false, force: false };

    #[test]
    fn three_way_per_file() {
        let remote = listing(vec![
            remote_file("taken", "remote v2", 0o644),
            remote_file("kept", "base", 0o644),
            remote_file("both", "remote v2", 0o644),
            remote_file("never", "remote", 0o644),
            remote_file("new", "fresh", 0o644),
            remote_file("same", "same", 0o644),
        ]);
        let here = local(&[
            ("taken", "base"),
            ("kept", "local edit"),
            ("both", "local edit"),
            ("never", "mine"),
            ("same", "same"),
        ]);
        let base = state(&[("taken", "base"), ("kept", "base"), ("both", "base")]);
        let ex = Excludes::default();
        let p = plan(&remote, &here, &base, &ex, NONE);
        assert_eq!(paths(&p.fetch), ["new", "taken"]);
        assert_eq!(p.kept_local, [rp("kept")]);
        let c: Vec<(&str, ConflictKind)> = p.conflicts.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(c, [("both", ConflictKind::BothChanged), ("never", ConflictKind::NotFromSyncback)]);
        assert_eq!(p.adopt, [(rp("same"), Synced::File(h("same")))]);
        assert_eq!(p.unchanged, 1);
        // --force takes the container's version everywhere
        let p = plan(&remote, &here, &base, &ex, PlanOptions { force: true, ..NONE });
        assert_eq!(paths(&p.fetch), ["both", "never", "new", "taken"]);
        // kept's container content is what `taken` holds locally: copied before taken is replaced.
        assert_eq!((p.reuse[0].from.as_str(), p.reuse[0].to.as_str(), p.reuse[0].rename), ("taken", "kept", false));
        assert!(p.conflicts.is_empty());
    }

    #[test]
    fn deletes_only_with_delete_and_only_what_syncback_wrote() {
        let remote = listing(vec![remote_file("stay", "s", 0o644)]);
        let here = local(&[("stay", "s"), ("gone", "g"), ("gone-edited", "edited"), ("local-only", "l")]);
        let base = state(&[("stay", "s"), ("gone", "g"), ("gone-edited", "g2")]);
        let ex = Excludes::default();
        assert!(plan(&remote, &here, &base, &ex, NONE).delete.is_empty());
        let p = plan(&remote, &here, &base, &ex, PlanOptions { delete: true, force: false });
        assert_eq!(p.delete, [rp("gone")]);
        let c: Vec<&str> = p.conflicts.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(c, ["gone-edited", "local-only"]);
        assert!(p.conflicts.iter().all(|c| c.kind == ConflictKind::DeleteLocalChanges));
        let p = plan(&remote, &here, &base, &ex, PlanOptions { delete: true, force: true });
        assert_eq!(p.delete.len(), 3);
    }

    #[test]
    fn renames_move_and_copies_reuse_local_content() {
        // The container renamed old → new (and made a second copy, twin).
        let remote = listing(vec![remote_file("new", "content", 0o755), remote_file("twin", "content", 0o644)]);
        let here = local(&[("old", "content")]);
        let base = state(&[("old", "content")]);
        let ex = Excludes::default();
        let p = plan(&remote, &here, &base, &ex, NONE);
        assert!(p.fetch.is_empty());
        assert!(p.reuse.iter().all(|u| !u.rename && u.from == rp("old")), "without --delete: copies");
        let p = plan(&remote, &here, &base, &ex, PlanOptions { delete: true, force: false });
        assert!(p.fetch.is_empty() && p.delete.is_empty());
        let r: Vec<(&str, &str, bool, u32)> =
            p.reuse.iter().map(|u| (u.from.as_str(), u.to.as_str(), u.rename, u.mode)).collect();
        assert_eq!(r, [("old", "new", false, 0o755), ("old", "twin", true, 0o644)], "the last use moves");
        // A source with local edits is never moved away (nor deleted): copy, and a conflict for it.
        let here = local(&[("old", "content")]);
        let p = plan(&remote, &here, &state(&[("old", "other")]), &ex, PlanOptions { delete: true, force: false });
        assert!(p.reuse.iter().all(|u| !u.rename));
        assert_eq!(p.conflicts.len(), 1);
    }

    #[test]
    fn modes_exclusions_and_type_clashes() {
        let mut dir = remote_file("d", "", 0o755);
        dir.kind = EntryType::Dir;
        dir.sha256 = None;
        let remote = listing(vec![
            remote_file("suid", "x", 0o4755),
            remote_file("build.log", "log", 0o644),
            dir,
            remote_file("d/f", "f", 0o644),
            remote_file("clash", "file", 0o644),
        ]);
        let mut here = local(&[("suid", "x")]);
        here.entries.insert(rp("clash"), LocalEntry::Dir);
        here.entries.insert(rp("d"), LocalEntry::Symlink { target: "/etc".into() });
        let ex = Excludes::new(&["*.log"]).expect("ex");
        let p = plan(&remote, &here, &State::default(), &ex, NONE);
        assert_eq!(p.chmod, [(rp("suid"), 0o755)], "never setuid locally");
        assert!(p.fetch.is_empty(), "{:?}", p.fetch);
        let c: Vec<(&str, ConflictKind)> = p.conflicts.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(c, [("clash", ConflictKind::InTheWay), ("d", ConflictKind::NotFromSyncback)]);
        // --force replaces the local link by a directory (never writing through it).
        let p = plan(&remote, &here, &State::default(), &ex, PlanOptions { force: true, ..NONE });
        assert_eq!(p.remove_first, [rp("d")]);
        assert_eq!(p.mkdirs, [rp("d")]);
        assert_eq!(paths(&p.fetch), ["d/f"]);
    }

    #[test]
    fn symlink_rules() {
        assert!(symlink_allowed(&rp("a/l"), "../b"));
        assert!(symlink_allowed(&rp("a/l"), "x/y"));
        assert!(symlink_allowed(&rp("a/b/l"), "../../c/d"));
        assert!(!symlink_allowed(&rp("l"), "../x"));
        assert!(!symlink_allowed(&rp("l"), "/etc"));
        // climbing through a name that may itself be a link
        assert!(!symlink_allowed(&rp("a/b/l"), "c/../d"));
        assert!(!symlink_allowed(&rp("y"), "deep/a/b/c/.."));
    }
}
