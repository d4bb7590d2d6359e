//! The build context as `COPY` and `ADD` see it: the files Docker sends to
//! the builder once `.dockerignore` has removed what it excludes, and the
//! folders that hold them.
//!
//! A folder is in the context when it holds a sent file, or when it holds
//! only excluded files but is not excluded itself (Docker still sends the
//! empty folder). The context root is always a folder.

use std::collections::BTreeSet;

use super::error::DockerfileError;
use super::glob::{glob_match, Tok};
use super::ignore::DockerIgnore;
use crate::sync::rules::normalize_rel_path;

/// The files and folders of the build context that Docker sends.
pub(super) struct Context {
    /// Files that are sent (not excluded by .dockerignore).
    pub(super) files: BTreeSet<String>,
    /// Folders that are sent (never the context root, which is "").
    dirs: BTreeSet<String>,
}

impl Context {
    /// The context of `context_files` once `ignore` has excluded its part.
    pub(super) fn new(context_files: &[String], ignore: &DockerIgnore) -> Result<Self, DockerfileError> {
        let mut files = BTreeSet::new();
        let mut all_dirs = BTreeSet::new();
        let mut dirs = BTreeSet::new();
        for raw in context_files {
            let path = normalize_rel_path(raw)
                .map_err(|reason| DockerfileError::InvalidContextPath { path: raw.clone(), reason })?;
            let included = !ignore.is_excluded(&path);
            for (i, _) in path.match_indices('/') {
                let dir = &path[..i];
                if included {
                    dirs.insert(dir.to_owned());
                } else {
                    all_dirs.insert(dir.to_owned());
                }
            }
            if included {
                files.insert(path);
            }
        }
        // A folder holding only excluded files is still sent unless the
        // folder itself is excluded.
        for dir in all_dirs {
            if !dirs.contains(&dir) && !ignore.is_excluded(&dir) {
                dirs.insert(dir);
            }
        }
        Ok(Self { files, dirs })
    }

    /// Whether `path` is a folder of the context ("" = the root).
    pub(super) fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || self.dirs.contains(path)
    }

    /// Files below folder `dir` ("" = the whole context), with their path
    /// relative to `dir`.
    pub(super) fn files_under<'a>(&'a self, dir: &str) -> Vec<(&'a str, &'a str)> {
        if dir.is_empty() {
            return self.files.iter().map(|f| (f.as_str(), f.as_str())).collect();
        }
        let prefix = format!("{dir}/");
        self.files
            .range(prefix.clone()..)
            .take_while(|f| f.starts_with(&prefix))
            .map(|f| (f.as_str(), &f[prefix.len()..]))
            .collect()
    }

    /// Files and folders matching a wildcard pattern, in lexical order.
    pub(super) fn glob(&self, tokens: &[Tok]) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = self
            .dirs
            .iter()
            .map(|d| (d, true))
            .chain(self.files.iter().map(|f| (f, false)))
            .filter(|(p, _)| glob_match(tokens, &p.chars().collect::<Vec<_>>()))
            .map(|(p, is_dir)| (p.clone(), is_dir))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_files_leave_their_folder_unless_it_is_excluded_too() {
        let files: Vec<String> = ["a/keep", "b/drop", "c/drop", "top"].iter().map(|s| s.to_string()).collect();
        let ignore = DockerIgnore::parse("b/drop\nc\n").unwrap();
        let ctx = Context::new(&files, &ignore).unwrap();
        assert_eq!(ctx.files.iter().map(String::as_str).collect::<Vec<_>>(), ["a/keep", "top"]);
        assert!(ctx.is_dir("") && ctx.is_dir("a") && ctx.is_dir("b"));
        assert!(!ctx.is_dir("c") && !ctx.is_dir("top"));
        assert_eq!(ctx.files_under("a"), [("a/keep", "keep")]);
        assert!(ctx.files_under("b").is_empty());
    }
}
