//! Watching the sources of one binary: the directories of the Go packages it
//! depends on (from `go list -deps`), the module's go.mod/go.sum, and kodata.
//!
//! notify delivers raw events on its own thread; this module turns them into
//! [`Change`]s on a tokio channel, dropping editor noise (swap files, `~`
//! backups) and gohot's own files in kodata (watchexec, its checksum record).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// What a changed path means for the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A source file: rebuild.
    Source(PathBuf),
    /// A kodata file (path relative to kodata): sync it, no rebuild.
    Kodata(String),
    /// A file a `gohot.yaml` sync rule covers (path relative to the module root).
    Rule(String),
}

/// Decides whether a module-relative path is covered by sync rules.
pub type RuleMatcher = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Files in kodata that gohot manages itself.
const KODATA_OWN: &[&str] = &["watchexec", ".watchexec.sha256", ".gitignore"];

/// Whether a kodata path (relative to kodata) is a file gohot manages itself.
pub fn is_gohot_owned_kodata(rel: &str) -> bool {
    KODATA_OWN.contains(&rel)
}

/// Whether a file name is editor or tool noise, never a real edit.
fn is_noise(name: &str) -> bool {
    name.starts_with(".#")
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
        || name.starts_with(".gohot")
        // Temp files of gohot's own atomic writes (`.NAME.gohot-XXXX`).
        || name.contains(".gohot-")
}

/// Classifies a path against the watched roots; files covered by sync rules
/// are synced rather than rebuilt, so rules come first.
pub fn classify(
    path: &Path,
    kodata: &Path,
    module_root: &Path,
    package_dirs: &BTreeSet<PathBuf>,
    rules: Option<&RuleMatcher>,
) -> Option<Change> {
    let name = path.file_name()?.to_str()?;
    if is_noise(name) {
        return None;
    }
    if let (Some(rules), Ok(rel)) = (rules, path.strip_prefix(module_root)) {
        let rel = rel.to_str()?;
        if !rel.starts_with(".git/") && rules(rel) {
            return Some(Change::Rule(rel.to_string()));
        }
    }
    if let Ok(rel) = path.strip_prefix(kodata) {
        let rel = rel.to_str()?.to_string();
        if rel.is_empty() || KODATA_OWN.contains(&rel.as_str()) {
            return None;
        }
        return Some(Change::Kodata(rel));
    }
    let parent = path.parent()?;
    if parent == module_root && (name == "go.mod" || name == "go.sum" || name == "go.work") {
        return Some(Change::Source(path.to_path_buf()));
    }
    // Any file of a package directory can matter (.go files, //go:embed
    // assets), but not subdirectories: those are other packages.
    if package_dirs.contains(parent) && !name.starts_with('.') {
        return Some(Change::Source(path.to_path_buf()));
    }
    None
}

/// A live watcher; dropping it stops watching.
pub struct SourceWatcher {
    watcher: notify::RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
    kodata: PathBuf,
    module_root: PathBuf,
    package_dirs: std::sync::Arc<std::sync::RwLock<BTreeSet<PathBuf>>>,
    recursive_root: bool,
}

impl SourceWatcher {
    /// Starts watching; changes arrive on the returned channel.
    /// With `rules`, the whole module is watched (recursively) for files they cover.
    pub fn start(
        kodata: PathBuf,
        module_root: PathBuf,
        package_dirs: BTreeSet<PathBuf>,
        rules: Option<RuleMatcher>,
    ) -> notify::Result<(Self, mpsc::UnboundedReceiver<Change>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let dirs = std::sync::Arc::new(std::sync::RwLock::new(BTreeSet::new()));
        let recursive_root = rules.is_some();
        let (k, m, d) = (kodata.clone(), module_root.clone(), dirs.clone());
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            let dirs = d.read().unwrap_or_else(|p| p.into_inner());
            for p in &event.paths {
                if let Some(c) = classify(p, &k, &m, &dirs, rules.as_ref()) {
                    let _ = tx.send(c);
                }
            }
        })?;
        let mut w = SourceWatcher {
            watcher,
            watched: BTreeSet::new(),
            kodata,
            module_root,
            package_dirs: dirs,
            recursive_root,
        };
        if w.recursive_root {
            w.watcher.watch(&w.module_root, RecursiveMode::Recursive)?;
        }
        w.update(package_dirs)?;
        Ok((w, rx))
    }

    /// Replaces the package directories (after imports changed).
    pub fn update(&mut self, package_dirs: BTreeSet<PathBuf>) -> notify::Result<()> {
        if self.recursive_root {
            // Everything below the module root is already watched.
            *self.package_dirs.write().unwrap_or_else(|p| p.into_inner()) = package_dirs;
            return Ok(());
        }
        let mut want: BTreeSet<PathBuf> = package_dirs.clone();
        want.insert(self.module_root.clone());
        for gone in self.watched.difference(&want).cloned().collect::<Vec<_>>() {
            let _ = self.watcher.unwatch(&gone);
            self.watched.remove(&gone);
        }
        for new in want.difference(&self.watched).cloned().collect::<Vec<_>>() {
            self.watcher.watch(&new, RecursiveMode::NonRecursive)?;
            self.watched.insert(new);
        }
        if self.kodata.is_dir() && !self.watched.contains(&self.kodata) {
            self.watcher.watch(&self.kodata, RecursiveMode::Recursive)?;
            self.watched.insert(self.kodata.clone());
        }
        *self.package_dirs.write().unwrap_or_else(|p| p.into_inner()) = package_dirs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        let dirs: BTreeSet<PathBuf> = [PathBuf::from("/m"), PathBuf::from("/m/lib")].into();
        let (k, m) = (Path::new("/m/kodata"), Path::new("/m"));
        assert_eq!(classify(Path::new("/m/main.go"), k, m, &dirs, None), Some(Change::Source("/m/main.go".into())));
        assert_eq!(classify(Path::new("/m/go.mod"), k, m, &dirs, None), Some(Change::Source("/m/go.mod".into())));
        assert_eq!(classify(Path::new("/m/lib/x.go"), k, m, &dirs, None), Some(Change::Source("/m/lib/x.go".into())));
        assert_eq!(classify(Path::new("/m/kodata/a/b.txt"), k, m, &dirs, None), Some(Change::Kodata("a/b.txt".into())));
        assert_eq!(classify(Path::new("/m/kodata/watchexec"), k, m, &dirs, None), None);
        assert_eq!(classify(Path::new("/m/.main.go.swp"), k, m, &dirs, None), None);
        assert_eq!(classify(Path::new("/m/main.go~"), k, m, &dirs, None), None);
        assert_eq!(classify(Path::new("/m/kodata/..watchexec.sha256.gohot-fX0VU2"), k, m, &dirs, None), None);
        assert_eq!(classify(Path::new("/m/other/x.go"), k, m, &dirs, None), None);
        let rules: RuleMatcher = std::sync::Arc::new(|rel: &str| rel.starts_with("static/"));
        assert_eq!(
            classify(Path::new("/m/static/a.html"), k, m, &dirs, Some(&rules)),
            Some(Change::Rule("static/a.html".into()))
        );
        assert_eq!(classify(Path::new("/m/docs/README.md"), k, m, &dirs, Some(&rules)), None);
    }
}
