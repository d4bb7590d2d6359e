//! `infer` sync from a Dockerfile, on a real directory: read the Dockerfile
//! and its `.dockerignore`, walk the context ([`sync_map_of_dir`], the I/O
//! half of [`crate::sync::dockerfile::sync_map`], which `gohot syncmap`
//! prints), and decide what a batch of changed files means ([`plan`]).
//!
//! The rule for deletions is the Skaffold proposal's: a deleted file covered
//! by `infer` triggers a rebuild. For gohot the "image" that matters while
//! developing is the binary, so the binary is rebuilt; and because the
//! container would otherwise keep serving a file the next image would not
//! have, the deleted file is also removed at every destination it had been
//! copied to (from the sync map as it was before the deletion): no stale copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::dockerfile::{DockerfileError, SyncMap};

/// Errors reading a Dockerfile's context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The Dockerfile, `.dockerignore` or context could not be turned into a sync map.
    #[error("{path}: {source}")]
    Dockerfile {
        /// The Dockerfile (or `.dockerignore`).
        path: PathBuf,
        /// Why.
        source: DockerfileError,
    },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> InferError + '_ {
    move |source| InferError::Io { path: path.to_path_buf(), source }
}

/// Every file below `dir` (regular files and symlinks), relative to `root`,
/// `/`-separated; `.git` folders are skipped.
pub fn walk_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), InferError> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(io_err(dir))?.collect::<Result<_, _>>().map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ty = e.file_type().map_err(io_err(&path))?;
        if ty.is_dir() {
            if e.file_name() == ".git" {
                continue;
            }
            walk_files(root, &path, out)?;
        } else if ty.is_file() || ty.is_symlink() {
            if let Ok(rel) = path.strip_prefix(root) {
                let parts: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push(parts.join("/"));
            }
        }
    }
    Ok(())
}

/// Infers the sync map of the Dockerfile at `dockerfile` for the build
/// context `context`: the context's files (walked, `.git` skipped), filtered
/// by the `.dockerignore` that applies — `<Dockerfile>.dockerignore` next to
/// the Dockerfile if present (BuildKit's rule), else `.dockerignore` in the
/// context.
pub fn sync_map_of_dir(
    dockerfile: &Path,
    context: &Path,
    build_args: &BTreeMap<String, String>,
) -> Result<SyncMap, InferError> {
    let text = std::fs::read_to_string(dockerfile).map_err(io_err(dockerfile))?;
    let mut files = Vec::new();
    walk_files(context, context, &mut files)?;
    let specific = dockerfile.file_name().map(|n| {
        let mut n = n.to_os_string();
        n.push(".dockerignore");
        dockerfile.with_file_name(n)
    });
    let ignore_path = specific.filter(|p| p.is_file()).unwrap_or_else(|| context.join(".dockerignore"));
    let ignore = match std::fs::read_to_string(&ignore_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(&ignore_path)(e)),
    };
    super::dockerfile::sync_map(&text, build_args, &files, ignore.as_deref()).map_err(|source| {
        let path = if matches!(source, DockerfileError::BadIgnorePattern { .. }) {
            ignore_path.clone()
        } else {
            dockerfile.to_path_buf()
        };
        InferError::Dockerfile { path, source }
    })
}

/// What to do with a batch of changed files under `infer`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InferPlan {
    /// Files to copy (context-relative), each to every destination it has.
    pub copy: Vec<(String, Vec<String>)>,
    /// Deleted files (context-relative) and the destinations to remove them from.
    pub delete: Vec<(String, Vec<String>)>,
    /// A covered file was deleted: rebuild (the Skaffold proposal's rule).
    pub rebuild: bool,
}

/// Plans a batch: `changed` files that still exist are copied to their
/// destinations in `now` (the map of the context as it is now; a file the
/// Dockerfile does not copy has none and is left alone); `deleted` files are
/// removed from their destinations in `before` (the map before the batch)
/// and ask for a rebuild. Pure.
pub fn plan(before: &SyncMap, now: &SyncMap, changed: &[String], deleted: &[String]) -> InferPlan {
    let mut p = InferPlan::default();
    for f in changed {
        if let Some(dests) = now.get(f).filter(|d| !d.is_empty()) {
            p.copy.push((f.clone(), dests.clone()));
        }
    }
    for f in deleted {
        p.rebuild = true;
        if let Some(dests) = before.get(f).filter(|d| !d.is_empty()) {
            p.delete.push((f.clone(), dests.clone()));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposal_example_on_disk() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("static")).unwrap();
        std::fs::write(d.path().join("static/page1.html"), "<p>1</p>").unwrap();
        std::fs::write(d.path().join("nginx.conf"), "events {}").unwrap();
        std::fs::write(
            d.path().join("Dockerfile"),
            "FROM nginx\nWORKDIR /var\nCOPY static *.html www/\nADD nginx.conf .\nADD nginx.conf /etc/\n",
        )
        .unwrap();
        let map = sync_map_of_dir(&d.path().join("Dockerfile"), d.path(), &BTreeMap::new()).unwrap();
        assert_eq!(map["static/page1.html"], ["/var/www/page1.html"]);
        assert_eq!(map["nginx.conf"], ["/etc/nginx.conf", "/var/nginx.conf"]);
    }

    #[test]
    fn deletions_rebuild_and_leave_no_stale_copy() {
        let before: SyncMap = [("a.html".to_string(), vec!["/www/a.html".to_string()])].into();
        let now: SyncMap = [("b.html".to_string(), vec!["/www/b.html".to_string(), "/srv/b.html".to_string()])].into();
        let p = plan(&before, &now, &["b.html".into(), "notes.md".into()], &["a.html".into()]);
        assert_eq!(p.copy, [("b.html".to_string(), vec!["/www/b.html".to_string(), "/srv/b.html".to_string()])]);
        assert_eq!(p.delete, [("a.html".to_string(), vec!["/www/a.html".to_string()])]);
        assert!(p.rebuild);
        assert!(!plan(&before, &now, &["b.html".into()], &[]).rebuild);
    }
}
