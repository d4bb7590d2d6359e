//! Paths that come from a container, made safe: relative, clean, no `..`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{WayInError, MAX_REL_PATH};

/// A relative path received from (or sent to) the container, validated so
/// that joining it under a local root can never leave that root: not empty,
/// at most 4096 bytes, `/`-separated, no leading `/`, no empty, `.` or `..`
/// component, no NUL, backslash or other control character (a newline would
/// also break the line-based `get` request), and on Windows no `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

impl RelPath {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<Self, WayInError> {
        match Self::malformed(s).or_else(|| Self::odd_name(s)) {
            Some(reason) => Err(WayInError::UnsafePath { path: s.chars().take(200).collect(), reason }),
            None => Ok(RelPath(s.to_string())),
        }
    }

    /// Why `s` is not a relative path in clean form (empty, absolute, an
    /// empty, `.` or `..` component), if so: no honest listing holds such a
    /// path, so it means the container lies.
    pub fn malformed(s: &str) -> Option<&'static str> {
        if s.is_empty() {
            return Some("empty path");
        }
        if s.starts_with('/') {
            return Some("absolute path");
        }
        s.split('/').find_map(|c| match c {
            "" => Some("empty path component"),
            "." => Some("`.` component"),
            ".." => Some("`..` component"),
            _ => None,
        })
    }

    /// Why a path in clean form still cannot be reproduced locally, if so:
    /// a name Linux allows but syncback will not write (a backslash, NUL or
    /// another control character — a newline would also break the
    /// line-based `get` request —, on Windows a `:`) or a path over 4096
    /// bytes. Such an entry is skipped by itself.
    pub fn odd_name(s: &str) -> Option<&'static str> {
        if s.len() > MAX_REL_PATH {
            Some("path longer than 4096 bytes")
        } else if s.contains('\\') {
            Some("backslash in path")
        } else if s.chars().any(|c| c.is_control()) {
            Some("NUL or control character in path")
        } else if cfg!(windows) && s.contains(':') {
            Some("colon in path (drive or stream on Windows)")
        } else {
            None
        }
    }

    /// The path as a `/`-separated string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Its parent, or `None` for a single component.
    pub fn parent(&self) -> Option<RelPath> {
        self.0.rsplit_once('/').map(|(p, _)| RelPath(p.to_string()))
    }

    /// `root` joined with each component (never escapes `root` lexically;
    /// the caller must still not follow symlinks below `root`).
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        for c in self.components() {
            p.push(c);
        }
        p
    }

    /// Whether a symlink at this path with this `target` stays inside the
    /// root, resolved lexically: the target must be relative and its `..`
    /// components must never climb above the root.
    pub fn symlink_target_stays_inside(&self, target: &str) -> bool {
        if target.is_empty()
            || target.starts_with('/')
            || target.contains('\\')
            || target.chars().any(|c| c.is_control())
            || (cfg!(windows) && target.contains(':'))
        {
            return false;
        }
        let mut depth = self.components().count() - 1;
        for c in target.split('/') {
            match c {
                "" | "." => {}
                ".." => match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => return false,
                },
                _ => depth += 1,
            }
        }
        true
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths() {
        for ok in ["a", "a/b", "a b/c.d", ".hidden", "a/..b", "...", "é/ü"] {
            assert!(RelPath::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/../b", "..", "../a", "a/..", ".", "./a", "a/./b", "a//b", "a/", "a\\b", "..\\a", "a\0b",
            "a\nb", "a\rb",
        ] {
            assert!(RelPath::new(bad).is_err(), "{bad:?}");
        }
        assert!(RelPath::new(&"a".repeat(5000)).is_err());
        let p = RelPath::new("a/b/link").expect("path");
        assert!(p.symlink_target_stays_inside("../c"));
        assert!(p.symlink_target_stays_inside("../../c"));
        assert!(!p.symlink_target_stays_inside("../../../c"));
        assert!(!p.symlink_target_stays_inside("/etc/passwd"));
        assert!(!p.symlink_target_stays_inside("x/../../../../c"));
        assert_eq!(p.under(Path::new("/r")), PathBuf::from("/r/a/b/link"));
    }
}
