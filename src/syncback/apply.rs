//! Carrying out a [`Plan`] on the local tree, so that nothing lands outside
//! LOCAL_DIR and nothing lands half.
//!
//! # Theory of operation
//!
//! Every path comes from the container and is a [`RelPath`] (no `..`, not
//! absolute — checked when the listing and the stream were parsed). That is
//! not enough on its own: a directory on the way could be a *local* symlink
//! (`LOCAL_DIR/x -> /etc`), and writing `x/passwd` through it would land in
//! `/etc`. So each directory on the way is looked at with `lstat` and must be
//! a real directory (missing ones are created with `mkdir`, which never
//! follows a link); a symlink or file on the way stops the write. The last
//! component is never followed either: files land by `rename` of a
//! temporary file (which replaces a link rather than writing through it),
//! deletes `unlink` the entry itself.
//!
//! The threat here is the container's data, not a local process racing
//! syncback; a local user who can swap directories under LOCAL_DIR while it
//! runs can already write wherever syncback could.
//!
//! The plan was made from a scan of the local tree, and the developer may
//! save a file while the round runs: so right before each replace or
//! delete, the path is looked at again ([`Expected`]); one that is no
//! longer what the scan saw is a conflict, left alone.
//!
//! A path that cannot be written here (a name the local file system
//! refuses, a local symlink or file on its way) is refused by itself and
//! the round goes on; only a failure of the local tree as a whole (disk
//! full, read-only) stops it.
//!
//! Each file is written to a temporary file in its own directory, fsynced,
//! given its mode, and renamed over the destination only once its sha256 is
//! verified, so an interrupted syncback (a cut stream, a crash, Ctrl-C)
//! leaves every file either as it was or as the container has it; a dropped
//! temporary file removes itself.

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::plan::{
    hash_file, mtime_ns, Conflict, ConflictKind, Fetch, FileRecord, LocalEntry, LocalTree, Plan, Refusal, Reuse, State,
    Synced,
};
use super::{Report, SyncbackError};
use crate::atomic::AtomicFile;
use crate::wayin::{BodyOutcome, GetItem, GetLimits, GetReader, RelPath};

fn io(about: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SyncbackError {
    let path = path.to_path_buf();
    move |source| SyncbackError::Io { about, path, source }
}

/// `root` joined with `dir`, every component checked to be a real directory
/// (not a symlink), missing ones created when `create`.
pub fn real_dir(root: &Path, dir: Option<&RelPath>, create: bool) -> Result<PathBuf, SyncbackError> {
    let mut p = root.to_path_buf();
    let Some(dir) = dir else { return Ok(p) };
    let mut rel = String::new();
    for c in dir.components() {
        p.push(c);
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) => {
                let reason = if m.file_type().is_symlink() {
                    "a local symlink is on the way (syncback never writes through one)"
                } else {
                    "a local file is on the way"
                };
                return Err(SyncbackError::Unsafe { path: rel, reason });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => match std::fs::create_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Raced with something: look again, never follow.
                    if !std::fs::symlink_metadata(&p).map(|m| m.file_type().is_dir()).unwrap_or(false) {
                        return Err(SyncbackError::Unsafe { path: rel, reason: "not a directory" });
                    }
                }
                Err(e) => return Err(io("cannot create directory", &p)(e)),
            },
            Err(e) => return Err(io("cannot look at", &p)(e)),
        }
    }
    Ok(p)
}

/// The local path of `path`, its parent checked by [`real_dir`].
fn entry_path(root: &Path, path: &RelPath, create_parents: bool) -> Result<PathBuf, SyncbackError> {
    let dir = real_dir(root, path.parent().as_ref(), create_parents)?;
    let name = path.components().last().unwrap_or_default();
    Ok(dir.join(name))
}

#[cfg(unix)]
fn set_mode(f: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(f: &std::fs::File, mode: u32) -> std::io::Result<()> {
    let mut p = f.metadata()?.permissions();
    p.set_readonly(mode & 0o222 == 0);
    f.set_permissions(p)
}

/// Refuses to put a file where a directory is (rename would fail half-way
/// through the plan with a confusing error otherwise).
fn not_a_dir(path: &RelPath, dest: &Path) -> Result<(), SyncbackError> {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_dir() => {
            Err(SyncbackError::Unsafe { path: path.to_string(), reason: "a local directory is in the way" })
        }
        _ => Ok(()),
    }
}

/// What the scan saw at each path the plan replaces or deletes, checked
/// again right before it is (absent from the map: not checked).
#[derive(Debug, Clone, Default)]
pub struct Expected(HashMap<RelPath, Option<LocalEntry>>);

impl Expected {
    /// The scan's view of every path `plan` writes over or removes.
    pub fn new(plan: &Plan, local: &LocalTree) -> Self {
        let mut m = HashMap::new();
        let paths = plan
            .remove_first
            .iter()
            .chain(plan.fetch.iter().map(|f| &f.path))
            .chain(plan.reuse.iter().map(|u| &u.to))
            .chain(plan.links.iter().map(|(p, _)| p))
            .chain(plan.delete.iter());
        for p in paths {
            m.insert(p.clone(), local.entries.get(p).cloned());
        }
        Expected(m)
    }

    /// The scan's view restricted to `paths` (what a fetch needs).
    pub fn only(&self, paths: impl Iterator<Item = RelPath>) -> Self {
        Expected(paths.filter_map(|p| self.0.get(&p).map(|e| (p, e.clone()))).collect())
    }

    /// Records that `path` was removed by the round itself.
    fn removed(&mut self, path: &RelPath) {
        if let Some(e) = self.0.get_mut(path) {
            *e = None;
        }
    }

    /// Whether the entry at `dest` (`path`) is still what the scan saw.
    fn still(&self, path: &RelPath, dest: &Path) -> bool {
        let Some(want) = self.0.get(path) else { return true };
        let now = std::fs::symlink_metadata(dest);
        match (want, now) {
            (None, Err(e)) => e.kind() == std::io::ErrorKind::NotFound,
            (None, Ok(_)) | (Some(_), Err(_)) => false,
            (Some(LocalEntry::File { size, sha256, .. }), Ok(m)) => {
                m.file_type().is_file() && m.len() == *size && hash_file(dest).ok().as_ref() == Some(sha256)
            }
            (Some(LocalEntry::Symlink { target }), Ok(m)) => {
                m.file_type().is_symlink()
                    && std::fs::read_link(dest).ok().and_then(|t| t.to_str().map(str::to_string)).as_ref()
                        == Some(target)
            }
            (Some(LocalEntry::Dir), Ok(m)) => m.file_type().is_dir(),
            (Some(LocalEntry::Other), Ok(_)) => false,
        }
    }
}

fn changed_during_round(path: &RelPath, report: &mut Report) {
    report.conflicts.push(Conflict { path: path.clone(), kind: ConflictKind::ChangedDuringRound });
}

/// Whether `e` concerns one path only (its name, or what is on its way),
/// not the local tree as a whole: that path is refused, the round goes on.
fn only_this_path(e: &SyncbackError) -> bool {
    match e {
        SyncbackError::Unsafe { .. } => true,
        SyncbackError::Io { source, .. } => {
            matches!(source.kind(), std::io::ErrorKind::InvalidFilename | std::io::ErrorKind::InvalidInput)
                || source.raw_os_error() == Some(libc::EILSEQ)
        }
        _ => false,
    }
}

/// Runs `op` for `path`; an error that concerns only this path becomes a
/// refusal in the report.
fn per_path<T>(
    path: &RelPath,
    report: &mut Report,
    op: impl FnOnce(&mut Report) -> Result<T, SyncbackError>,
) -> Result<Option<T>, SyncbackError> {
    match op(report) {
        Ok(v) => Ok(Some(v)),
        Err(e) if only_this_path(&e) => {
            report.refused.push(Refusal { path: path.to_string(), reason: format!("cannot be written here: {e}") });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn record(state: &mut State, path: &RelPath, dest: &Path, sha256: String) {
    let (size, mtime) = std::fs::symlink_metadata(dest).map(|m| (m.len(), mtime_ns(&m))).unwrap_or((0, 0));
    state.links.remove(path.as_str());
    state.files.insert(path.to_string(), FileRecord { sha256, size, mtime_ns: mtime });
}

/// How a [`land`] ended.
enum Landed {
    /// In place, with this hash.
    Written(PathBuf, String),
    /// `fill` discarded the content.
    Discarded,
    /// The destination changed since the scan: left alone.
    Changed,
}

/// Writes what `fill` produces to a temporary file next to `path`, and
/// renames it into place only if `fill` returns `Some(sha256)` and the
/// destination is still what the scan saw.
fn land(
    root: &Path,
    path: &RelPath,
    mode: u32,
    expected: &Expected,
    fill: impl FnOnce(&mut dyn Write) -> Result<Option<String>, SyncbackError>,
) -> Result<Landed, SyncbackError> {
    let dest = entry_path(root, path, true)?;
    not_a_dir(path, &dest)?;
    let mut tmp = AtomicFile::create(&dest).map_err(io("cannot create a file beside", &dest))?;
    let done = {
        let mut w = BufWriter::with_capacity(64 << 10, tmp.file_mut());
        let done = fill(&mut w)?;
        w.flush().map_err(io("cannot write", &dest))?;
        done
    };
    let Some(sha) = done else { return Ok(Landed::Discarded) };
    if !expected.still(path, &dest) {
        return Ok(Landed::Changed);
    }
    tmp.commit(Some(mode)).map_err(io("cannot write", &dest))?;
    Ok(Landed::Written(dest, sha))
}

/// Reuses local content for `u`: verifies the source still has the
/// expected hash, then moves or copies it. `Ok(false)`: the source changed
/// meanwhile, fetch instead.
fn reuse(
    root: &Path,
    u: &Reuse,
    expected: &Expected,
    state: &mut State,
    report: &mut Report,
) -> Result<bool, SyncbackError> {
    let src = entry_path(root, &u.from, false)?;
    match std::fs::symlink_metadata(&src) {
        Ok(m) if m.file_type().is_file() => {}
        _ => return Ok(false),
    }
    if u.rename {
        if hash_file(&src).ok().as_deref() != Some(u.sha256.as_str()) {
            return Ok(false);
        }
        let dest = entry_path(root, &u.to, true)?;
        not_a_dir(&u.to, &dest)?;
        if !expected.still(&u.to, &dest) {
            changed_during_round(&u.to, report);
            return Ok(true);
        }
        let f = std::fs::File::open(&src).map_err(io("cannot open", &src))?;
        set_mode(&f, u.mode).map_err(io("cannot set the mode of", &src))?;
        std::fs::rename(&src, &dest).map_err(io("cannot rename into", &dest))?;
        state.files.remove(u.from.as_str());
        record(state, &u.to, &dest, u.sha256.clone());
        report.renamed.push((u.from.clone(), u.to.clone()));
        report.written.push(src);
        report.written.push(dest);
        return Ok(true);
    }
    let mut input = std::fs::File::open(&src).map_err(io("cannot open", &src))?;
    let landed = land(root, &u.to, u.mode, expected, |w| {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = input.read(&mut buf).map_err(io("cannot read", &src))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            w.write_all(&buf[..n]).map_err(io("cannot write a copy of", &src))?;
        }
        let got = hex::encode(h.finalize());
        Ok((got == u.sha256).then_some(got))
    })?;
    match landed {
        Landed::Written(dest, sha) => {
            record(state, &u.to, &dest, sha);
            report.copied.push((u.from.clone(), u.to.clone()));
            report.written.push(dest);
            Ok(true)
        }
        Landed::Changed => {
            changed_during_round(&u.to, report);
            Ok(true)
        }
        Landed::Discarded => Ok(false),
    }
}

/// Reads the helper's `get` stream for `fetch` (requested in that order)
/// and lands each complete, verified file. Stops at the first error: files
/// landed before it stay (and are recorded in `state`), the one being read
/// is discarded, the rest are untouched.
pub fn apply_stream<R: Read>(
    root: &Path,
    fetch: &[Fetch],
    stream: R,
    limits: GetLimits,
    expected: &Expected,
    state: &mut State,
    report: &mut Report,
) -> Result<(), SyncbackError> {
    let requested: Vec<RelPath> = fetch.iter().map(|f| f.path.clone()).collect();
    let modes: HashMap<&RelPath, u32> = fetch.iter().map(|f| (&f.path, f.mode)).collect();
    let mut reader = GetReader::new(stream, &requested, limits);
    while let Some(item) = reader.next_item()? {
        let header = match item {
            GetItem::Refused { path, error } => {
                report.refused.push(Refusal {
                    path: path.to_string(),
                    reason: format!("the container refused or could not read it: {error}"),
                });
                continue;
            }
            GetItem::File(h) => h,
        };
        let mode = modes.get(&header.path).copied().unwrap_or(0o644);
        let mut changed = false;
        // (A path refused here leaves its body unread: the reader skips it.)
        let landed = per_path(&header.path, report, |_| {
            land(root, &header.path, mode, expected, |w| match reader.read_body(w)? {
                BodyOutcome::Complete { sha256 } => Ok(Some(sha256)),
                BodyOutcome::Changed { .. } => {
                    changed = true;
                    Ok(None)
                }
            })
        })?;
        match landed {
            Some(Landed::Written(dest, sha)) => {
                record(state, &header.path, &dest, sha);
                report.fetched.push((header.path.clone(), header.size));
                report.written.push(dest);
            }
            Some(Landed::Changed) => changed_during_round(&header.path, report),
            Some(Landed::Discarded) if changed => report.changed_while_read.push(header.path.clone()),
            Some(Landed::Discarded) | None => {}
        }
    }
    Ok(())
}

/// Applies everything in `plan` except the fetches, which it returns
/// (plus any reuse whose source changed meanwhile) for the caller to fetch
/// with [`apply_stream`]; then call [`finish`].
pub fn apply_local(
    root: &Path,
    plan: &Plan,
    expected: &mut Expected,
    state: &mut State,
    report: &mut Report,
) -> Result<Vec<Fetch>, SyncbackError> {
    // Paths left alone from here on: what is planned for them is skipped.
    let mut skip: std::collections::HashSet<RelPath> = std::collections::HashSet::new();
    for path in &plan.remove_first {
        let removed = per_path(path, report, |report| {
            let p = entry_path(root, path, false)?;
            match std::fs::symlink_metadata(&p) {
                Ok(m) if !m.file_type().is_dir() => {
                    if !expected.still(path, &p) {
                        changed_during_round(path, report);
                        return Ok(false);
                    }
                    std::fs::remove_file(&p).map_err(io("cannot remove", &p))?;
                    state.files.remove(path.as_str());
                    state.links.remove(path.as_str());
                    report.written.push(p);
                    Ok(true)
                }
                _ => Ok(true),
            }
        })?;
        match removed {
            Some(true) => expected.removed(path),
            _ => {
                skip.insert(path.clone());
            }
        }
    }
    for d in &plan.mkdirs {
        if skip.contains(d) {
            continue;
        }
        let made = per_path(d, report, |_| {
            let p = entry_path(root, d, false)?;
            let existed = std::fs::symlink_metadata(&p).is_ok();
            let p = real_dir(root, Some(d), true)?;
            Ok((p, existed))
        })?;
        match made {
            Some((p, existed)) => {
                if !existed {
                    state.dirs.insert(d.to_string());
                }
                report.dirs_created.push(d.clone());
                report.written.push(p);
            }
            None => {
                skip.insert(d.clone());
            }
        }
    }
    for (path, synced) in &plan.adopt {
        match synced {
            Synced::File(sha) => {
                let p = entry_path(root, path, false)?;
                record(state, path, &p, sha.clone());
            }
            Synced::Link(t) => {
                state.files.remove(path.as_str());
                state.links.insert(path.to_string(), t.clone());
            }
        }
    }
    let mut fetch: Vec<Fetch> = plan.fetch.iter().filter(|f| !skip.contains(&f.path)).cloned().collect();
    for u in plan.reuse.iter().filter(|u| !skip.contains(&u.to)) {
        let done = per_path(&u.to, report, |report| reuse(root, u, expected, state, report))?;
        if done == Some(false) {
            fetch.push(Fetch { path: u.to.clone(), size: u.size, mode: u.mode, sha256: u.sha256.clone() });
        }
    }
    fetch.sort_by(|a, b| a.path.cmp(&b.path));
    fetch.dedup_by(|a, b| a.path == b.path);
    Ok(fetch)
}

/// The rest of the plan, after the fetches: links, modes, deletions.
pub fn finish(
    root: &Path,
    plan: &Plan,
    expected: &Expected,
    state: &mut State,
    report: &mut Report,
) -> Result<(), SyncbackError> {
    for (path, target) in &plan.links {
        per_path(path, report, |report| {
            let p = entry_path(root, path, true)?;
            if !expected.still(path, &p) {
                changed_during_round(path, report);
                return Ok(());
            }
            make_symlink(target, &p).map_err(io("cannot create symlink", &p))?;
            state.files.remove(path.as_str());
            state.links.insert(path.to_string(), target.clone());
            report.links.push(path.clone());
            report.written.push(p);
            Ok(())
        })?;
    }
    for (path, mode) in &plan.chmod {
        let p = entry_path(root, path, false)?;
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_file() => {
                let f = std::fs::File::open(&p).map_err(io("cannot open", &p))?;
                set_mode(&f, *mode).map_err(io("cannot set the mode of", &p))?;
                report.chmodded.push(path.clone());
            }
            _ => {}
        }
    }
    for path in &plan.delete {
        per_path(path, report, |report| {
            let p = entry_path(root, path, false)?;
            match std::fs::symlink_metadata(&p) {
                Ok(m) if !m.file_type().is_dir() => {
                    if !expected.still(path, &p) {
                        changed_during_round(path, report);
                        return Ok(());
                    }
                    std::fs::remove_file(&p).map_err(io("cannot delete", &p))?;
                    report.deleted.push(path.clone());
                    report.written.push(p);
                }
                _ => {}
            }
            state.files.remove(path.as_str());
            state.links.remove(path.as_str());
            Ok(())
        })?;
    }
    for d in &plan.rmdirs {
        let Ok(p) = entry_path(root, d, false) else { continue };
        match std::fs::symlink_metadata(&p) {
            // Only if empty: what is left in it (excluded, conflicts) stays.
            Ok(m) if m.file_type().is_dir() => {
                if std::fs::remove_dir(&p).is_ok() {
                    state.dirs.remove(d.as_str());
                    report.dirs_removed.push(d.clone());
                    report.written.push(p);
                }
            }
            Ok(_) => {}
            Err(_) => {
                state.dirs.remove(d.as_str());
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_symlink(target: &str, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(not(unix))]
fn make_symlink(_target: &str, _at: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "symlinks are only recreated on Unix"))
}
