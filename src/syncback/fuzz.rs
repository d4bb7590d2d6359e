//! Fuzz harness for the syncback planner; the cargo-fuzz target in
//! `fuzz/fuzz_targets/` and `tests/fuzz_seeds.rs` both call it, as
//! [`crate::sync::fuzz`] explains. Not part of gohot's API.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use super::exclude::{is_vcs_name, Excludes};
use super::plan::{plan, symlink_allowed, FileRecord, LocalEntry, LocalTree, PlanOptions, State};
use crate::wayin::{EntryType, ListEntry, Listing, RelPath};

fn h(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// Fuzzes [`plan`]: it must never panic, and the plan it makes must keep
/// the developer's tree safe — nothing changed locally since the last
/// syncback is replaced or deleted without `--force`, nothing is deleted
/// without `--delete`, only directories syncback created are removed, no
/// version-control metadata is touched, each path gets one write, links
/// stay inside, and a reused file has the content it is reused for.
///
/// Input: a first line of flags (`delete`, `force`, `exclude=PATTERN`),
/// then one entry a line: `R|L|S` (the container, the local tree, the
/// state), a type (`f` file, `d` dir, `l` link, `o` other), a path, and
/// the content or link target, separated by spaces.
pub fn syncback_plan(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let flags = lines.next().unwrap_or("");
    let opts = PlanOptions { delete: flags.contains("delete"), force: flags.contains("force") };
    let patterns: Vec<&str> = flags.split(' ').filter_map(|f| f.strip_prefix("exclude=")).collect();
    let Ok(excludes) = Excludes::new(&patterns) else { return };
    let mut remote: Vec<ListEntry> = Vec::new();
    let mut local = LocalTree::default();
    let mut state = State::default();
    for line in lines.take(200) {
        let mut f = line.splitn(4, ' ');
        let (Some(side), Some(kind), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        let extra = f.next().unwrap_or("");
        let Ok(path) = RelPath::new(path) else { continue };
        match (side, kind) {
            ("R", k) => {
                let kind = match k {
                    "f" => EntryType::File,
                    "d" => EntryType::Dir,
                    "l" => EntryType::Symlink,
                    _ => EntryType::Other,
                };
                remote.push(ListEntry {
                    path,
                    kind,
                    size: extra.len() as u64,
                    mode: if extra.len() % 2 == 0 { 0o644 } else { 0o4755 },
                    mtime_ns: 1,
                    sha256: (kind == EntryType::File).then(|| h(extra)),
                    target: (kind == EntryType::Symlink && !extra.is_empty()).then(|| extra.to_string()),
                    error: None,
                });
            }
            ("L", k) => {
                let e = match k {
                    "f" => LocalEntry::File { size: extra.len() as u64, mode: 0o644, sha256: h(extra) },
                    "d" => LocalEntry::Dir,
                    "l" => LocalEntry::Symlink { target: extra.to_string() },
                    _ => LocalEntry::Other,
                };
                local.entries.insert(path, e);
            }
            ("S", "f") => {
                state.files.insert(path.to_string(), FileRecord { sha256: h(extra), size: 0, mtime_ns: 1 });
            }
            ("S", "l") => {
                state.links.insert(path.to_string(), extra.to_string());
            }
            ("S", _) => {
                state.dirs.insert(path.to_string());
            }
            _ => {}
        }
    }
    // As the listing parser and the local scan guarantee: unique paths,
    // sorted, nothing below a non-directory.
    remote.sort_by(|a, b| a.path.cmp(&b.path));
    remote.dedup_by(|a, b| a.path == b.path);
    let remote_kinds: std::collections::BTreeMap<RelPath, EntryType> =
        remote.iter().map(|e| (e.path.clone(), e.kind)).collect();
    let below_non_dir = |p: &RelPath, is_dir: &dyn Fn(&RelPath) -> Option<bool>| {
        let mut q = p.parent();
        while let Some(d) = q {
            if is_dir(&d) == Some(false) {
                return true;
            }
            q = d.parent();
        }
        false
    };
    remote.retain(|e| !below_non_dir(&e.path, &|d| remote_kinds.get(d).map(|k| *k == EntryType::Dir)));
    let local_dirs: std::collections::BTreeMap<RelPath, bool> =
        local.entries.iter().map(|(p, e)| (p.clone(), *e == LocalEntry::Dir)).collect();
    local.entries.retain(|p, _| !below_non_dir(p, &|d| local_dirs.get(d).copied()));
    local.entries.retain(|p, e| !excludes.is_excluded(p, *e == LocalEntry::Dir));
    let listing = Listing { root: "/data".into(), entries: remote, skipped: Vec::new() };

    let p = plan(&listing, &local, &state, &excludes, opts);

    let in_remote: BTreeSet<&RelPath> = listing.entries.iter().map(|e| &e.path).collect();
    // Is the local entry what syncback last left there (or absent)?
    let clean = |path: &RelPath| match local.entries.get(path) {
        None | Some(LocalEntry::Dir) => true,
        Some(LocalEntry::File { sha256, .. }) => state.files.get(path.as_str()).is_some_and(|r| &r.sha256 == sha256),
        Some(LocalEntry::Symlink { target }) => state.links.get(path.as_str()) == Some(target),
        Some(LocalEntry::Other) => false,
    };
    let written: Vec<&RelPath> = p
        .fetch
        .iter()
        .map(|f| &f.path)
        .chain(p.reuse.iter().map(|u| &u.to))
        .chain(p.links.iter().map(|(l, _)| l))
        .collect();
    let mut once = BTreeSet::new();
    for w in &written {
        assert!(once.insert(*w), "{w} written twice");
        assert!(in_remote.contains(w), "{w} written but not in the container");
    }
    let touched = written.iter().copied().chain(&p.remove_first).chain(&p.delete).chain(&p.mkdirs).chain(&p.rmdirs);
    for t in touched {
        assert!(!t.components().any(is_vcs_name), "VCS metadata touched: {t}");
    }
    if !opts.force {
        for t in written.iter().copied().chain(&p.remove_first).chain(&p.delete) {
            // A local file replaced or deleted must be what syncback left.
            if let Some(LocalEntry::File { .. } | LocalEntry::Symlink { .. }) = local.entries.get(t) {
                assert!(clean(t), "local changes to {t} overwritten without --force");
            }
        }
    }
    assert!(opts.delete || (p.delete.is_empty() && p.rmdirs.is_empty()), "deleted without --delete");
    for d in &p.rmdirs {
        assert!(state.dirs.contains(d.as_str()), "{d} removed but syncback did not create it");
        assert!(!in_remote.contains(d));
    }
    for (l, target) in &p.links {
        assert!(symlink_allowed(l, target), "{l} -> {target} leads outside");
    }
    for u in &p.reuse {
        assert!(
            matches!(local.entries.get(&u.from), Some(LocalEntry::File { sha256, .. }) if *sha256 == u.sha256),
            "{} reused for {} without that content",
            u.from,
            u.to
        );
        assert!(!u.rename || opts.delete, "{} moved away without --delete", u.from);
    }
    for (i, d) in p.mkdirs.iter().enumerate() {
        if let Some(parent) = d.parent() {
            assert!(!p.mkdirs[i..].contains(&parent), "{d} made before its parent");
        }
    }
}
