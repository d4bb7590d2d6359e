//! `helper list`: a container's tree, parsed without trusting it.

use std::collections::HashMap;

use serde::Deserialize;

use super::{is_hex64, RelPath, WayInError, MAX_LIST_ENTRIES};
use crate::layout::HELPER_PATH;

/// Type of a listed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (never followed by the helper).
    Symlink,
    /// Device, socket or FIFO: never transferred.
    Other,
}

/// One entry of a container directory listing, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Path relative to the listed directory.
    pub path: RelPath,
    /// Its type.
    pub kind: EntryType,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Permission bits, including setuid/setgid/sticky (at most `0o7777`).
    pub mode: u32,
    /// Modification time, unix nanoseconds.
    pub mtime_ns: i64,
    /// Content hash (files that could be read).
    pub sha256: Option<String>,
    /// Link target (symlinks); check with [`RelPath::symlink_target_stays_inside`].
    pub target: Option<String>,
    /// Why the entry could not be fully described (unreadable, changed while hashed).
    pub error: Option<String>,
}

/// An entry the helper could not put in the listing (e.g. a non-UTF-8 name).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SkippedEntry {
    /// The name, Go-quoted.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// A validated listing of a container directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The directory as the helper was asked for it.
    pub root: String,
    /// Entries, sorted by path, each path unique.
    pub entries: Vec<ListEntry>,
    /// Entries that could not be listed.
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    mode: u32,
    #[serde(default)]
    mtime: i64,
    sha256: Option<String>,
    target: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RawListing {
    root: Option<String>,
    entries: Option<Vec<RawEntry>>,
    #[serde(default)]
    skipped: Vec<SkippedEntry>,
    ok: Option<bool>,
    error: Option<String>,
    message: Option<String>,
}

/// Parses and validates the stdout of `helper list DIR`. Every path must be a
/// [`RelPath`], unique, and below directories only (an entry under a listed
/// symlink or file is refused: following it could lead outside); hashes must
/// be hex; a file without an error must have a hash. The caller bounds the
/// size of `stdout`.
pub fn parse_listing(stdout: &[u8]) -> Result<Listing, WayInError> {
    let bad = |m: String| WayInError::BadListing(m);
    let raw: RawListing = serde_json::from_slice(stdout).map_err(|e| {
        if stdout.iter().all(u8::is_ascii_whitespace) {
            WayInError::BadStatus { reason: "no output (did the helper run at all?)".into(), output: String::new() }
        } else {
            bad(format!("not a listing: {e}"))
        }
    })?;
    if raw.ok == Some(false) {
        return Err(WayInError::HelperFailed {
            code: raw.error.unwrap_or_else(|| "unknown".into()),
            message: raw.message.unwrap_or_default(),
        });
    }
    let (Some(root), Some(raw_entries)) = (raw.root, raw.entries) else {
        return Err(bad("no root or entries".into()));
    };
    if raw_entries.len() > MAX_LIST_ENTRIES {
        return Err(bad(format!("more than {MAX_LIST_ENTRIES} entries")));
    }
    let mut kinds: HashMap<String, EntryType> = HashMap::with_capacity(raw_entries.len());
    let mut entries = Vec::with_capacity(raw_entries.len());
    for e in raw_entries {
        let path = RelPath::new(&e.path)?;
        let kind = match e.kind.as_str() {
            "file" => EntryType::File,
            "dir" => EntryType::Dir,
            "symlink" => EntryType::Symlink,
            "other" => EntryType::Other,
            k => return Err(bad(format!("{path}: unknown type {k:?}"))),
        };
        if e.mode > 0o7777 {
            return Err(bad(format!("{path}: mode {:o} out of range", e.mode)));
        }
        if let Some(h) = &e.sha256 {
            if kind != EntryType::File || !is_hex64(h) {
                return Err(bad(format!("{path}: bad sha256")));
            }
        }
        if kind == EntryType::File && e.sha256.is_none() && e.error.is_none() {
            return Err(bad(format!("{path}: file without sha256")));
        }
        if e.target.is_some() && kind != EntryType::Symlink {
            return Err(bad(format!("{path}: link target on a non-symlink")));
        }
        if let Some(t) = &e.target {
            if t.is_empty() || t.contains('\0') {
                return Err(bad(format!("{path}: bad link target")));
            }
        }
        if kinds.insert(e.path.clone(), kind).is_some() {
            return Err(bad(format!("{path}: listed twice")));
        }
        entries.push(ListEntry {
            path,
            kind,
            size: e.size,
            mode: e.mode,
            mtime_ns: e.mtime,
            sha256: e.sha256,
            target: e.target,
            error: e.error,
        });
    }
    for e in &entries {
        let mut p = e.path.parent();
        while let Some(dir) = p {
            match kinds.get(dir.as_str()) {
                None | Some(EntryType::Dir) => {}
                Some(_) => return Err(bad(format!("{}: listed below {dir}, which is not a directory", e.path))),
            }
            p = dir.parent();
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Listing { root, entries, skipped: raw.skipped })
}

/// argv for `list DIR` with `-exclude` patterns (path.Match syntax; without a
/// `/` a pattern matches base names, with one the whole relative path).
pub fn list_argv(dir: &str, excludes: &[&str]) -> Vec<String> {
    let mut v = vec![HELPER_PATH.to_string(), "list".into()];
    for e in excludes {
        v.push("-exclude".into());
        v.push((*e).into());
    }
    v.push("--".into());
    v.push(dir.into());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_listings_are_refused() {
        let h = "0".repeat(64);
        let good = format!(
            r#"{{"root":"/d","entries":[{{"path":"a","type":"dir","mode":493}},{{"path":"a/f","type":"file","size":1,"mode":420,"mtime":5,"sha256":"{h}"}},{{"path":"l","type":"symlink","target":"a/f"}}],"skipped":[]}}"#
        );
        let l = parse_listing(good.as_bytes()).expect("listing");
        assert_eq!(l.entries.len(), 3);
        assert_eq!(l.entries[1].sha256.as_deref(), Some(h.as_str()));
        for bad in [
            r#"{"root":"/d","entries":[{"path":"../x","type":"dir"}]}"#.to_string(),
            r#"{"root":"/d","entries":[{"path":"/etc","type":"dir"}]}"#.to_string(),
            r#"{"root":"/d","entries":[{"path":"a","type":"dir"},{"path":"a","type":"dir"}]}"#.to_string(),
            r#"{"root":"/d","entries":[{"path":"l","type":"symlink","target":"/"},{"path":"l/x","type":"dir"}]}"#
                .to_string(),
            r#"{"root":"/d","entries":[{"path":"f","type":"file"}]}"#.to_string(),
            r#"{"root":"/d","entries":[{"path":"f","type":"block"}]}"#.to_string(),
            format!(r#"{{"root":"/d","entries":[{{"path":"f","type":"file","sha256":"{}"}}]}}"#, "Z".repeat(64)),
        ] {
            assert!(parse_listing(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_listing(br#"{"ok":false,"error":"io","message":"no such dir"}"#),
            Err(WayInError::HelperFailed { .. })
        ));
    }
}
