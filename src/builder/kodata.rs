//! kodata: the files a package ships next to its binary (ko's convention:
//! `<package>/kodata` → `/var/run/ko`, `KO_DATA_PATH`), read as the image
//! builder needs them, and the files gohot itself places there for dev
//! images (watchexec, its record, their `.gitignore` lines), which a
//! production image never carries.

use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// watchexec, as the dev image carries it in kodata (the Skaffold ko
/// proposal's place: `/var/run/ko/watchexec`).
pub const BINARY_NAME: &str = "watchexec";

/// Name of the sidecar that records the verified binary's sha256 and origin.
pub const RECORD_NAME: &str = ".watchexec.sha256";

/// Lines gohot keeps in `<kodata>/.gitignore`.
pub const GITIGNORE_LINES: [&str; 2] = [BINARY_NAME, RECORD_NAME];

/// Whether a kodata path (relative to kodata) is a file gohot manages
/// itself there (watchexec, its record, the `.gitignore` it keeps them out
/// of git with): such changes are never the user's edits.
pub fn is_gohot_owned_kodata(rel: &str) -> bool {
    rel == BINARY_NAME || rel == RECORD_NAME || rel == ".gitignore"
}

/// Where an installed binary came from, as kept in the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// sha256 of the binary, lowercase hex.
    pub sha256: String,
    /// `release <version> <triple>` or `local`.
    pub origin: String,
}

impl Record {
    /// The record file's text.
    pub fn render(&self) -> String {
        format!(
            "# written by gohot: sha256 of ./{BINARY_NAME} as verified when it was installed.\n\
             # Delete this file (or the binary) to make gohot install watchexec again.\n\
             {}  {BINARY_NAME}\norigin {}\n",
            self.sha256, self.origin
        )
    }

    /// Reads a record file (None: not one).
    pub fn parse(text: &str) -> Option<Record> {
        let mut sha256 = None;
        let mut origin = None;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some(rest) = line.strip_prefix("origin ") {
                origin = Some(rest.trim().to_owned());
            } else if let Some((hash, name)) = line.split_once("  ") {
                if name.trim() == BINARY_NAME && is_sha256_hex(hash) {
                    sha256 = Some(hash.to_ascii_lowercase());
                }
            }
        }
        Some(Record { sha256: sha256?, origin: origin? })
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads a package's `kodata` directory: every regular file below it
/// (symlinks followed, as ko does), with `/`-separated relative paths.
/// A missing directory is empty kodata.
pub fn read_kodata(dir: &Path) -> std::io::Result<Vec<(String, u32, Bytes)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((path, rel, depth)) = stack.pop() {
        if depth > 64 {
            return Err(std::io::Error::other(format!("{}: kodata nested too deep (symlink loop?)", path.display())));
        }
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let meta = std::fs::metadata(entry.path())?;
            if meta.is_dir() {
                stack.push((entry.path(), child_rel, depth + 1));
            } else if meta.is_file() {
                let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
                out.push((child_rel, mode, Bytes::from(std::fs::read(entry.path())?)));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// kodata as a production image ships it: without what gohot itself placed
/// there for dev images.
///
/// `files` are kodata's files (relative path, mode, content), as
/// [`read_kodata`] reads them. Removed: `watchexec` when
/// gohot's record (`.watchexec.sha256`) vouches for it (same sha256), and the
/// record itself. `.gitignore` loses the lines gohot adds (`watchexec`,
/// `.watchexec.sha256`, also `/`-anchored) and ends with a newline; with no
/// line left it is left out. The result is the same before and after a
/// `gohot dev` session, whether or not gohot created or appended to the
/// `.gitignore`, so a production image's digest does not depend on whether
/// someone ran the dev loop. Pure.
pub fn production_kodata(files: Vec<(String, u32, Bytes)>) -> Vec<(String, u32, Bytes)> {
    let record = files
        .iter()
        .find(|(rel, _, _)| rel == RECORD_NAME)
        .and_then(|(_, _, data)| Record::parse(&String::from_utf8_lossy(data)));
    let Some(record) = record else {
        // gohot installed nothing here (or its record is gone): only the
        // .gitignore lines can be gohot's.
        return files.into_iter().filter_map(without_gohot_lines).collect();
    };
    files
        .into_iter()
        .filter(|(rel, _, data)| match rel.as_str() {
            RECORD_NAME => false,
            BINARY_NAME => hex::encode(Sha256::digest(data)) != record.sha256,
            _ => true,
        })
        .filter_map(without_gohot_lines)
        .collect()
}

/// `.gitignore` (at kodata's root) without gohot's lines; other files as they are.
fn without_gohot_lines(file: (String, u32, Bytes)) -> Option<(String, u32, Bytes)> {
    let (rel, mode, data) = file;
    if rel != ".gitignore" {
        return Some((rel, mode, data));
    }
    let text = String::from_utf8_lossy(&data);
    let mut kept = String::new();
    for line in text.lines() {
        let bare = line.trim_end_matches('\r').trim();
        let ours = GITIGNORE_LINES.iter().any(|l| bare == *l || bare.strip_prefix('/') == Some(*l));
        if !ours {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    if kept.trim().is_empty() {
        return None;
    }
    Some((rel, mode, Bytes::from(kept)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_kodata_is_the_same_before_and_after_a_dev_session() {
        use Bytes;
        let read = |dir: &Path| read_kodata(dir).unwrap();
        let bin = b"\x7fELF static watchexec".to_vec();
        for before in [None, Some("*.tmp\n"), Some("*.tmp"), Some("watchexec\n.watchexec.sha256\n"), Some("")] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("index.html"), "hi").unwrap();
            if let Some(text) = before {
                std::fs::write(dir.path().join(".gitignore"), text).unwrap();
            }
            let clean = production_kodata(read(dir.path()));
            crate::devimage::watchexec::install(dir.path(), &bin, "local").unwrap();
            let after = read(dir.path());
            assert!(after.iter().any(|(r, _, _)| r == "watchexec"), "installed");
            assert_eq!(production_kodata(after), clean, "before: {before:?}");
            assert!(clean.iter().any(|(r, _, d)| r == "index.html" && d == &Bytes::from_static(b"hi")));
            assert!(!clean.iter().any(|(r, _, _)| r == "watchexec" || r == RECORD_NAME));
        }
        // The user's own files are kept, including a watchexec gohot did not install.
        let own = vec![
            ("watchexec".to_string(), 0o755, Bytes::from_static(b"mine")),
            (".gitignore".to_string(), 0o644, Bytes::from_static(b"*.log\n/watchexec\r\n")),
        ];
        let kept = production_kodata(own);
        assert_eq!(kept[0].0, "watchexec");
        assert_eq!(kept[1].2, Bytes::from_static(b"*.log\n"));
    }
}
