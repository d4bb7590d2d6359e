//! Exclude patterns in gitignore syntax, matched with `globset`.
//!
//! Why not the `ignore` crate: its gitignore builder comes with a directory
//! walker, thread pools and more for one matcher; the subset that matters
//! for syncback (`*`, `**`, `?`, `[…]`, a leading `/` to anchor, a trailing
//! `/` for directories only, `!` to re-include, `#` comments and `\#`/`\!`
//! escapes, last match wins, an excluded directory excludes everything below
//! it) is a few lines over `globset`, which gohot already depends on.
//!
//! Patterns that the helper's `path.Match` reads the same way are also sent
//! to it ([`Excludes::helper_patterns`]), so that an excluded tree such as
//! `target` is pruned in the container instead of hashed and then dropped.
//! The local side always re-checks every path: the helper is only a shortcut.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::SyncbackError;
use crate::wayin::RelPath;

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
        Excludes { set: GlobSet::empty(), patterns: Vec::new(), helper: Vec::new() }
    }
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
        // With a negation, pruning in the helper could hide a re-included file.
        let helper = if any_negation { Vec::new() } else { helper };
        Ok(Excludes { set, patterns, helper })
    }

    /// Patterns safe to pass to `helper list -exclude` (same meaning there).
    pub fn helper_patterns(&self) -> &[String] {
        &self.helper
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
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

    /// Whether `path` is excluded: an excluded parent directory excludes it
    /// whatever later patterns say (as in git), else the last match decides.
    pub fn is_excluded(&self, path: &RelPath, is_dir: bool) -> bool {
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
        assert_eq!(e.helper_patterns(), ["*.log", "docs/*.md"]);
        let e = Excludes::new(&["*.log", "!keep.log"]).expect("patterns");
        assert!(e.helper_patterns().is_empty());
    }
}
