//! `helper list`: a container's tree, parsed without trusting it.

use std::io::{self, BufRead, BufReader, Read};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{is_hex64, RelPath, WayInError, MAX_LIST_BYTES, MAX_LIST_ENTRIES, MAX_REL_PATH};
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

/// Caps on what `helper list` may send, so that gohot's memory stays
/// bounded whatever a container holds or a lying helper streams (see
/// `gohot syncback --help`): past either, the listing is refused with
/// [`WayInError::TooLarge`] and nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimits {
    /// Most entries (skipped ones included).
    pub max_entries: usize,
    /// Most bytes of listing.
    pub max_bytes: u64,
}

impl Default for ListLimits {
    fn default() -> Self {
        ListLimits { max_entries: MAX_LIST_ENTRIES, max_bytes: MAX_LIST_BYTES }
    }
}

/// Longest JSON string accepted in a listing: a path of 4096 bytes, each
/// escaped (`\u0001`: 6 bytes), fits; a string without end does not.
const MAX_JSON_STRING: u64 = 6 * MAX_REL_PATH as u64 + 64;

impl Listing {
    /// A digest of the whole listing: two listings with the same digest
    /// describe the same tree (`--watch` compares these, not listings).
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.root.as_bytes());
        for e in &self.entries {
            let line = format!(
                "\n{}\0{:?}\0{}\0{}\0{}\0{:?}\0{:?}\0{:?}",
                e.path, e.kind, e.size, e.mode, e.mtime_ns, e.sha256, e.target, e.error
            );
            h.update(line.as_bytes());
        }
        for s in &self.skipped {
            h.update(format!("\n{}\0{}", s.path, s.reason).as_bytes());
        }
        h.finalize().into()
    }
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

/// Parses and validates the stdout of `helper list DIR`, held whole (see
/// [`read_listing`]).
pub fn parse_listing(stdout: &[u8]) -> Result<Listing, WayInError> {
    read_listing(stdout, ListLimits::default())
}

/// Reads and validates the stdout of `helper list DIR` as it streams in,
/// keeping only validated entries: every path must be a relative path in
/// clean form, unique, and below directories only (an entry under a listed
/// symlink or file is refused: following it could lead outside); hashes
/// must be hex; a file without an error must have a hash. Any of these
/// broken means the container lies, and the whole listing is refused. A
/// well-formed name syncback will not reproduce ([`RelPath::odd_name`]) is
/// moved to [`Listing::skipped`] instead, by itself.
pub fn read_listing<R: Read>(stdout: R, limits: ListLimits) -> Result<Listing, WayInError> {
    let mut guard = JsonGuard::new(stdout, limits.max_bytes);
    let mut failure = None;
    let parsed = {
        let mut de = serde_json::Deserializer::from_reader(&mut guard);
        ListingSeed { limits, failure: &mut failure }.deserialize(&mut de).and_then(|raw| de.end().map(|()| raw))
    };
    let raw = match parsed {
        Ok(raw) => raw,
        Err(e) => {
            return Err(match (failure, guard.failure.take()) {
                (Some(f), _) | (None, Some(f)) => f,
                (None, None) if !guard.saw_data => WayInError::BadStatus {
                    reason: "no output (did the helper run at all?)".into(),
                    output: String::new(),
                },
                (None, None) => WayInError::BadListing(format!("not a listing: {e}")),
            })
        }
    };
    if raw.ok == Some(false) {
        return Err(WayInError::HelperFailed {
            code: raw.error.unwrap_or_else(|| "unknown".into()),
            message: raw.message.unwrap_or_default(),
        });
    }
    let RawListing { root, entries, mut odd, mut skipped, .. } = raw;
    let (Some(root), Some(mut entries)) = (root, entries) else {
        return Err(WayInError::BadListing("no root or entries".into()));
    };
    skipped.append(&mut odd);
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let bad = |m: String| WayInError::BadListing(m);
    for w in entries.windows(2) {
        if w[0].path == w[1].path {
            return Err(bad(format!("{}: listed twice", w[0].path)));
        }
    }
    for e in &entries {
        let mut p = e.path.parent();
        while let Some(dir) = p {
            match entries.binary_search_by(|x| x.path.cmp(&dir)) {
                Err(_) => {}
                Ok(i) if entries[i].kind == EntryType::Dir => {}
                Ok(_) => return Err(bad(format!("{}: listed below {dir}, which is not a directory", e.path))),
            }
            p = dir.parent();
        }
    }
    Ok(Listing { root, entries, skipped })
}

/// Validates one entry: `Ok(Err(skipped))` for an odd name (skipped by itself).
fn validate(e: RawEntry) -> Result<Result<ListEntry, SkippedEntry>, WayInError> {
    let bad = |m: String| WayInError::BadListing(m);
    if let Some(reason) = RelPath::malformed(&e.path) {
        return Err(WayInError::UnsafePath { path: e.path.chars().take(200).collect(), reason });
    }
    if let Some(reason) = RelPath::odd_name(&e.path) {
        let mut quoted = format!("{:?}", e.path);
        if quoted.len() > 300 {
            let cut = (0..=300).rev().find(|&i| quoted.is_char_boundary(i)).unwrap_or(0);
            quoted.truncate(cut);
            quoted.push('…');
        }
        return Ok(Err(SkippedEntry { path: quoted, reason: format!("{reason}: not reproduced locally") }));
    }
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
    let error = e.error.map(|m| m.chars().take(500).collect());
    Ok(Ok(ListEntry {
        path,
        kind,
        size: e.size,
        mode: e.mode,
        mtime_ns: e.mtime,
        sha256: e.sha256,
        target: e.target,
        error,
    }))
}

/// The listing's top level, with its entries already validated.
#[derive(Default)]
struct RawListing {
    root: Option<String>,
    entries: Option<Vec<ListEntry>>,
    odd: Vec<SkippedEntry>,
    skipped: Vec<SkippedEntry>,
    ok: Option<bool>,
    error: Option<String>,
    message: Option<String>,
}

/// Deserializes the top-level object, validating entries one by one as
/// they arrive; a validation failure is kept in `failure` (typed) while
/// serde unwinds with a placeholder.
struct ListingSeed<'a> {
    limits: ListLimits,
    failure: &'a mut Option<WayInError>,
}

impl<'de> DeserializeSeed<'de> for ListingSeed<'_> {
    type Value = RawListing;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawListing, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListingSeed<'_> {
    type Value = RawListing;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a listing object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawListing, A::Error> {
        let mut raw = RawListing::default();
        let mut count = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "root" => raw.root = map.next_value()?,
                "entries" => {
                    let seed = EntriesSeed { limits: self.limits, count: &mut count, failure: self.failure };
                    let (entries, odd) = map.next_value_seed(seed)?;
                    raw.entries = Some(entries);
                    raw.odd = odd;
                }
                "skipped" => {
                    let seed = SkippedSeed { limits: self.limits, count: &mut count, failure: self.failure };
                    raw.skipped = map.next_value_seed(seed)?;
                }
                "ok" => raw.ok = map.next_value()?,
                "error" => raw.error = map.next_value()?,
                "message" => raw.message = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

fn too_many(limits: &ListLimits) -> WayInError {
    WayInError::TooLarge {
        what: "the container's listing (entries)".into(),
        size: limits.max_entries as u64 + 1,
        limit: limits.max_entries as u64,
    }
}

struct EntriesSeed<'a> {
    limits: ListLimits,
    count: &'a mut usize,
    failure: &'a mut Option<WayInError>,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = (Vec<ListEntry>, Vec<SkippedEntry>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = (Vec<ListEntry>, Vec<SkippedEntry>);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (mut entries, mut odd) = (Vec::new(), Vec::new());
        while let Some(raw) = seq.next_element::<RawEntry>()? {
            *self.count += 1;
            if *self.count > self.limits.max_entries {
                *self.failure = Some(too_many(&self.limits));
                return Err(serde::de::Error::custom("too many entries"));
            }
            match validate(raw) {
                Ok(Ok(e)) => entries.push(e),
                Ok(Err(s)) => odd.push(s),
                Err(e) => {
                    *self.failure = Some(e);
                    return Err(serde::de::Error::custom("invalid entry"));
                }
            }
        }
        Ok((entries, odd))
    }
}

struct SkippedSeed<'a> {
    limits: ListLimits,
    count: &'a mut usize,
    failure: &'a mut Option<WayInError>,
}

impl<'de> DeserializeSeed<'de> for SkippedSeed<'_> {
    type Value = Vec<SkippedEntry>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SkippedSeed<'_> {
    type Value = Vec<SkippedEntry>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of skipped entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(s) = seq.next_element::<SkippedEntry>()? {
            *self.count += 1;
            if *self.count > self.limits.max_entries {
                *self.failure = Some(too_many(&self.limits));
                return Err(serde::de::Error::custom("too many entries"));
            }
            v.push(s);
        }
        Ok(v)
    }
}

/// The listing's bytes on their way to the JSON parser: counted against
/// the listing cap, and every JSON string against [`MAX_JSON_STRING`] —
/// the parser holds a string whole before it is checked, so a string
/// without end must stop here.
struct JsonGuard<R> {
    inner: BufReader<R>,
    read: u64,
    max: u64,
    in_string: bool,
    escaped: bool,
    string_len: u64,
    saw_data: bool,
    failure: Option<WayInError>,
}

impl<R: Read> JsonGuard<R> {
    fn new(inner: R, max: u64) -> Self {
        JsonGuard {
            inner: BufReader::with_capacity(64 << 10, inner),
            read: 0,
            max,
            in_string: false,
            escaped: false,
            string_len: 0,
            saw_data: false,
            failure: None,
        }
    }

    fn refuse(&mut self, e: WayInError) -> io::Error {
        let text = e.to_string();
        self.failure = Some(e);
        io::Error::other(text)
    }
}

impl<R: Read> Read for JsonGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.inner.fill_buf()?;
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.inner.consume(n);
        for &c in &buf[..n] {
            self.read += 1;
            if self.in_string {
                self.string_len += 1;
                match c {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
            } else if c == b'"' {
                (self.in_string, self.string_len) = (true, 0);
            }
            self.saw_data |= !c.is_ascii_whitespace();
        }
        if self.read > self.max {
            let (size, limit) = (self.read, self.max);
            return Err(self.refuse(WayInError::TooLarge { what: "the container's listing".into(), size, limit }));
        }
        if self.in_string && self.string_len > MAX_JSON_STRING {
            let (size, limit) = (self.string_len, MAX_JSON_STRING);
            return Err(self.refuse(WayInError::TooLarge {
                what: "a string in the container's listing".into(),
                size,
                limit,
            }));
        }
        Ok(n)
    }
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
