//! Exclude patterns in gitignore syntax, matched with `globset`.
//!
//! Why not the `ignore` crate: its gitignore builder comes with a directory
//! walker, thread pools and more for one matcher; the subset that matters
//! for syncback (`*`, `**`, `?`, `[…]`, a leading `/` to anchor, a trailing
//! `/` for directories only, `!` to re-include, `#` comments and `\#`/`\!`
//! escapes, last match wins, an excluded directory excludes everything below
//! it) is a few lines over `globset`, which gohot already depends on.
//!
//! Version-control metadata (`.git`, `.hg`, `.svn`, `.jj`, file or
//! directory, at any depth) is always excluded, as Mutagen's VCS ignore
//! does, and no `!` pattern re-includes it: a container's
//! `.git/hooks/pre-commit` or `.git/config` landing in a checkout would run
//! the container's code at the next `git commit`, and a local repository's
//! metadata is never syncback's to replace or delete. The names match
//! whatever their case and trailing dots or spaces, which case-insensitive
//! and Windows file systems ignore.
//!
//! Patterns that the helper's `path.Match` reads the same way are also sent
//! to it ([`Excludes::helper_patterns`]), so that an excluded tree such as
//! `target` is pruned in the container instead of hashed and then dropped.
//! The local side always re-checks every path: the helper is only a shortcut.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::SyncbackError;
use crate::wayin::RelPath;

/// Version-control metadata directories (or files: a worktree's `.git`),
/// never synced back.
pub const VCS_NAMES: [&str; 4] = [".git", ".hg", ".svn", ".jj"];

/// Whether a path component names version-control metadata.
pub fn is_vcs_name(component: &str) -> bool {
    let name = component.trim_end_matches(['.', ' ']);
    VCS_NAMES.iter().any(|v| name.eq_ignore_ascii_case(v))
}

#[derive(Debug, Clone)]
struct Pattern {
    negate: bool,
    dir_only: bool,
}

/// A compiled list of gitignore-style patterns.
#[derive(Debug, Clone)]
pub struct Excludes {
    set: GlobSet,
    patterns: Vec<Pattern>,
    helper: Vec<String>,
}

impl Default for Excludes {
    fn default() -> Self {
        Excludes { set: GlobSet::empty(), patterns: Vec::new(), helper: vcs_helper_patterns() }
    }
}

/// The VCS names as the helper prunes them (exact base names: the local
/// side also catches other spellings).
fn vcs_helper_patterns() -> Vec<String> {
    VCS_NAMES.iter().map(|n| n.to_string()).collect()
}

impl Excludes {
    /// Compiles `lines` as in a `.gitignore` (blank lines and `#` comments are skipped).
    pub fn new<S: AsRef<str>>(lines: &[S]) -> Result<Self, SyncbackError> {
        let mut builder = GlobSetBuilder::new();
        let mut patterns = Vec::new();
        let mut helper = Vec::new();
        let mut any_negation = false;
        for line in lines {
            let raw = line.as_ref();
            let bad = |reason: String| SyncbackError::BadExclude { pattern: raw.to_string(), reason };
            let mut p = raw.trim_end_matches([' ', '\t', '\r', '\n']).to_string();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let negate = p.starts_with('!');
            if negate {
                p.remove(0);
                any_negation = true;
            } else if p.starts_with("\\!") || p.starts_with("\\#") {
                p.remove(0);
            }
            let dir_only = p.ends_with('/');
            let body = p.trim_end_matches('/');
            // A slash anywhere but at the end anchors the pattern to the root.
            let anchored = body.contains('/');
            let body = body.trim_start_matches('/');
            if body.is_empty() {
                return Err(bad("empty pattern".into()));
            }
            let glob_text = if anchored || body.starts_with("**/") { body.to_string() } else { format!("**/{body}") };
            let glob = GlobBuilder::new(&glob_text)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| bad(e.kind().to_string()))?;
            builder.add(glob);
            patterns.push(Pattern { negate, dir_only });
            // path.Match agrees with gitignore on `*` and `?` within one
            // component, on a base name (no slash) or a whole anchored path.
            let simple =
                body.chars().all(|c| c.is_ascii_alphanumeric() || "._-*?/ ".contains(c)) && !body.contains("**");
            // (`/build` anchored to the root has no path.Match equivalent.)
            if !negate && !dir_only && simple && (!anchored || body.contains('/')) {
                helper.push(body.to_string());
            }
        }
        let set =
            builder.build().map_err(|e| SyncbackError::BadExclude { pattern: String::new(), reason: e.to_string() })?;
        // With a negation, pruning in the helper could hide a re-included
        // file; VCS metadata can never be re-included.
        let mut helper = if any_negation { Vec::new() } else { helper };
        helper.splice(0..0, vcs_helper_patterns());
        Ok(Excludes { set, patterns, helper })
    }

    /// Patterns safe to pass to `helper list -exclude` (same meaning there).
    pub fn helper_patterns(&self) -> &[String] {
        &self.helper
    }

    /// Last matching pattern's verdict for `path` itself.
    fn verdict(&self, path: &str, is_dir: bool) -> Option<bool> {
        self.set
            .matches(path)
            .into_iter()
            .rev()
            .find(|&i| is_dir || !self.patterns[i].dir_only)
            .map(|i| !self.patterns[i].negate)
    }

    /// Whether `path` is excluded: VCS metadata and what is below it always;
    /// an excluded parent directory excludes it whatever later patterns say
    /// (as in git), else the last match decides.
    pub fn is_excluded(&self, path: &RelPath, is_dir: bool) -> bool {
        if path.components().any(is_vcs_name) {
            return true;
        }
        if self.patterns.is_empty() {
            return false;
        }
        let s = path.as_str();
        for (i, _) in s.match_indices('/') {
            if self.verdict(&s[..i], true) == Some(true) {
                return true;
            }
        }
        self.verdict(s, is_dir) == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(pats: &[&str], path: &str, dir: bool) -> bool {
        Excludes::new(pats).expect("patterns").is_excluded(&RelPath::new(path).expect("path"), dir)
    }

    #[test]
    fn gitignore_semantics() {
        assert!(ex(&["*.log"], "a.log", false));
        assert!(ex(&["*.log"], "deep/er/a.log", false));
        assert!(!ex(&["*.log"], "a.logx", false));
        // anchored
        assert!(ex(&["/build"], "build", true));
        assert!(ex(&["/build"], "build/x/y", false));
        assert!(!ex(&["/build"], "src/build", true));
        assert!(ex(&["docs/*.md"], "docs/a.md", false));
        assert!(!ex(&["docs/*.md"], "docs/sub/a.md", false));
        assert!(!ex(&["docs/*.md"], "x/docs/a.md", false));
        // ** and directory-only
        assert!(ex(&["docs/**/*.md"], "docs/sub/deeper/a.md", false));
        assert!(ex(&["tmp/"], "x/tmp", true));
        assert!(ex(&["tmp/"], "x/tmp/file", false));
        assert!(!ex(&["tmp/"], "x/tmp", false));
        // negation: last match wins, but not below an excluded directory
        assert!(!ex(&["*.log", "!keep.log"], "keep.log", false));
        assert!(ex(&["*.log", "!keep.log", "keep.log"], "keep.log", false));
        assert!(ex(&["out/", "!out/keep"], "out/keep", false));
        // comments, blanks, escapes, character classes
        assert!(!ex(&["# c", "", "   "], "# c", false));
        assert!(ex(&["\\#lit"], "#lit", false));
        assert!(ex(&["\\!bang"], "!bang", false));
        assert!(ex(&["file[0-9].txt"], "a/file7.txt", false));
        assert!(ex(&["?.o"], "x.o", false));
        assert!(!ex(&["?.o"], "xy.o", false));
        assert!(Excludes::new(&["a[", "x"]).is_err());
    }

    #[test]
    fn helper_gets_only_patterns_it_reads_the_same_way() {
        let e = Excludes::new(&["*.log", "/build", "tmp/", "a/**/b", "x[0-9]", "docs/*.md"]).expect("patterns");
        assert_eq!(e.helper_patterns(), [".git", ".hg", ".svn", ".jj", "*.log", "docs/*.md"]);
        let e = Excludes::new(&["*.log", "!keep.log"]).expect("patterns");
        assert_eq!(
            e.helper_patterns(),
            [".git", ".hg", ".svn", ".jj"],
            "VCS metadata is pruned whatever the negations"
        );
    }

    #[test]
    fn vcs_metadata_is_always_excluded() {
        for pats in [&[][..], &["!.git", "!.git/**", "!**"][..]] {
            let e = Excludes::new(pats).expect("patterns");
            for (path, dir) in [
                (".git", true),
                (".git", false),
                (".git/hooks/pre-commit", false),
                ("sub/.hg/hgrc", false),
                ("a/b/.svn", true),
                (".jj/repo", true),
                (".GIT/config", false),
                (".Git. /config", false),
            ] {
                assert!(e.is_excluded(&RelPath::new(path).expect("path"), dir), "{pats:?}: {path}");
            }
            for path in [".gitignore", ".github/workflows/ci.yml", "git/x", ".gitx", "a.git"] {
                assert!(!e.is_excluded(&RelPath::new(path).expect("path"), false), "{pats:?}: {path}");
            }
        }
    }
}
