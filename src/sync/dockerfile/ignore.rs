//! `.dockerignore`: which context files Docker never sends to the builder.
//!
//! Docker's rules: one pattern a line, paths relative to the context root
//! (a leading `/` or `./` is dropped, the pattern is `path.Clean`ed), `#`
//! comment lines, `!` exceptions, and the last matching line wins. A
//! pattern that matches a folder also excludes everything under it, which
//! [`DockerIgnore::is_excluded`] checks by trying the path and each of its
//! parent folders. Wildcards are those of the [`super::glob`] engine with
//! `**` enabled; a pattern without any is compared as a plain string.

use super::error::DockerfileError;
use super::glob::{compile_pattern, glob_match, Tok};
use crate::sync::rules::normalize_rel_path;

/// A parsed `.dockerignore`, with Docker's matching rules.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<IgnorePattern>,
}

#[derive(Debug, Clone)]
struct IgnorePattern {
    exclusion: bool,
    tokens: Vec<Tok>,
    /// The pattern itself when it has no wildcard (compared directly).
    literal: Option<String>,
}

impl IgnorePattern {
    fn matches(&self, path: &[char], path_str: &str) -> bool {
        match &self.literal {
            Some(literal) => literal == path_str,
            None => glob_match(&self.tokens, path),
        }
    }
}

impl DockerIgnore {
    /// Parses `.dockerignore` text: one pattern a line, `#` comments, blank
    /// lines ignored, `!` for exceptions, leading `/` and `./` dropped.
    pub fn parse(text: &str) -> Result<Self, DockerfileError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            // As in Docker: a comment is a line starting with `#`, checked
            // before trimming.
            if raw.starts_with('#') {
                continue;
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let bad = |reason| DockerfileError::BadIgnorePattern { line, pattern: raw.to_owned(), reason };
            let (exclusion, rest) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            if exclusion && rest.is_empty() {
                return Err(bad("`!` must be followed by a pattern"));
            }
            let mut pattern = go_clean(rest);
            if pattern.len() > 1 && pattern.starts_with('/') {
                pattern.remove(0);
            }
            let tokens = compile_pattern(&pattern, true).map_err(bad)?;
            let literal = tokens
                .iter()
                .map(|t| match t {
                    Tok::Lit(c) => Some(*c),
                    _ => None,
                })
                .collect::<Option<String>>();
            patterns.push(IgnorePattern { exclusion, tokens, literal });
        }
        Ok(Self { patterns })
    }

    /// Whether `rel_path` (context-relative, file or folder) is excluded
    /// from the build context. The last matching pattern decides; a pattern
    /// also matches everything below a folder it matches. Invalid paths
    /// (absolute, with `..`) are never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let Ok(path) = normalize_rel_path(rel_path) else {
            return false;
        };
        let chars: Vec<char> = path.chars().collect();
        // Each parent folder of the path, as (end in chars, end in bytes).
        let parents: Vec<(usize, usize)> = path
            .char_indices()
            .enumerate()
            .filter(|(_, (_, c))| *c == '/')
            .map(|(char_end, (byte_end, _))| (char_end, byte_end))
            .collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // A pattern can only flip the current answer.
            if pattern.exclusion != excluded {
                continue;
            }
            let matched = pattern.matches(&chars, &path)
                || parents.iter().any(|&(c, b)| pattern.matches(&chars[..c], &path[..b]));
            if matched {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }
}

/// Go's `path.Clean` (for relative and absolute `/` paths).
fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::dockerfile::sync_map;
    use crate::sync::dockerfile::test_util::*;
    use std::collections::BTreeMap;

    #[test]
    fn dockerignore_with_exceptions_and_directories() {
        let ignore = "# comment\n*.md\n!README.md\nbuild\n**/*.tmp\n/secret\ndocs\n!docs/keep.txt\n";
        let ctx = files(&[
            "README.md",
            "CHANGES.md",
            "src/a.go",
            "src/x.tmp",
            "src/deep/y.tmp",
            "build/out.bin",
            "secret",
            "docs/keep.txt",
            "docs/drop.txt",
            "sub/NOTES.md",
        ]);
        let map = sync_map("FROM x\nCOPY . /app/\n", &BTreeMap::new(), &ctx, Some(ignore)).unwrap();
        assert_eq!(
            map,
            expect(&[
                ("README.md", &["/app/README.md"]),
                ("docs/keep.txt", &["/app/docs/keep.txt"]),
                ("src/a.go", &["/app/src/a.go"]),
                // `*.md` only matches at the top level, as in Docker.
                ("sub/NOTES.md", &["/app/sub/NOTES.md"]),
            ])
        );
        // An excluded literal source is not in the context.
        let err = sync_map("FROM x\nCOPY secret /\n", &BTreeMap::new(), &ctx, Some(ignore)).unwrap_err();
        assert!(matches!(err, DockerfileError::SourceNotFound { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn dockerignore_matching_rules() {
        let ig = DockerIgnore::parse("a/**/c\n**\n!keep/**\nkeep/x?z\n").unwrap();
        assert!(ig.is_excluded("anything"));
        assert!(!ig.is_excluded("keep/file"));
        assert!(ig.is_excluded("keep/xyz"));
        assert!(!ig.is_excluded("keep/xyzz"));
        let ig = DockerIgnore::parse("a/**/c\n").unwrap();
        assert!(ig.is_excluded("a/c"));
        assert!(ig.is_excluded("a/b/b/c"));
        assert!(ig.is_excluded("a/b/c/d")); // via its parent a/b/c
        assert!(!ig.is_excluded("a/cc"));
        let ig = DockerIgnore::parse("  spaced  \n./dot/slash\n[a-c]at\n").unwrap();
        assert!(ig.is_excluded("spaced"));
        assert!(ig.is_excluded("dot/slash/x"));
        assert!(ig.is_excluded("bat"));
        assert!(!ig.is_excluded("dat"));
        // Last match wins.
        let ig = DockerIgnore::parse("!x\nx\n").unwrap();
        assert!(ig.is_excluded("x"));
        let ig = DockerIgnore::parse("x\n!x\n").unwrap();
        assert!(!ig.is_excluded("x"));
    }

    #[test]
    fn dockerignore_errors_name_the_line() {
        let err = DockerIgnore::parse("ok\n\nbad[\n").unwrap_err();
        assert!(matches!(err, DockerfileError::BadIgnorePattern { line: 3, .. }), "{err:?}");
        let err = DockerIgnore::parse("!\n").unwrap_err();
        assert!(matches!(err, DockerfileError::BadIgnorePattern { line: 1, .. }), "{err:?}");
    }

    #[test]
    fn dockerignore_applies_to_wildcard_sources_and_crlf() {
        let ignore = "# generated\r\n**/*_test.go\r\n!keep_test.go\r\n";
        let ctx = files(&["a.go", "a_test.go", "keep_test.go", "pkg/b_test.go", "pkg/b.go"]);
        let map = sync_map("FROM x\nCOPY *.go pkg /src/\n", &BTreeMap::new(), &ctx, Some(ignore)).unwrap();
        assert_eq!(
            map,
            expect(
                &[("a.go", &["/src/a.go"]), ("keep_test.go", &["/src/keep_test.go"]), ("pkg/b.go", &["/src/b.go"]),]
            )
        );
    }

    #[test]
    fn go_clean_is_go_path_clean() {
        assert_eq!(go_clean("./a//b/../c/"), "a/c");
        assert_eq!(go_clean("/../a"), "/a");
        assert_eq!(go_clean("../a"), "../a");
        assert_eq!(go_clean(""), ".");
    }
}
