//! Watching what one binary is built from, and nothing else.
//!
//! A path is classified by what it is, never by the directory it is in
//! ([`Scope::classify`]):
//!
//! - a **build input** — a file of [`BuildInputs`] (Go, cgo, assembly, syso
//!   and `//go:embed`ded files of the local packages `go list -deps` reports,
//!   the modules' `go.mod`/`go.sum`, `go.work`), or a file that may have
//!   become one (a new `.go` file in one of those package directories, a new
//!   file an embed pattern covers, an excluded `.go` file whose build
//!   constraint changed): rebuild;
//! - a **kodata** file: sync it, no rebuild;
//! - a file covered by `gohot.yaml` **sync rules** (`manual`, `infer`): sync it;
//! - anything else — logs, editors' swap/backup/temporary files, coverage
//!   output, `.git`, test binaries, notes — is ignored and costs nothing.
//!
//! Editors that save through a temporary file (vim's `4913` and `main.go~`,
//! VS Code's `main.go.vsctmp`, `sed -i`'s `sedXXXXXX`) end with an event on
//! the real file, which is the one named; their temporary names are never
//! build inputs, so they are never named.
//!
//! notify delivers raw events on its own thread; this module classifies them
//! there and sends [`Change`]s on a tokio channel. Files in a directory that
//! is new are found by a walk too (`scan_new_dirs`): they can land before
//! the directory is watched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::route::{rel_str, Router};
use crate::builder::inputs::BuildInputs;

/// What a changed path means for the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A build input changed (or a file that may have become one): rebuild.
    Source {
        /// The file.
        path: PathBuf,
        /// The set of build inputs may have changed too (a file appeared,
        /// went away, or is a module file): list them again after the build.
        refresh: bool,
    },
    /// A kodata file (path relative to kodata): sync it, no rebuild.
    Kodata(String),
    /// A file a `gohot.yaml` manual sync rule covers (module-relative).
    Rule(String),
    /// A file a `gohot.yaml` infer glob covers (relative to the infer context).
    Infer(String),
    /// A `.go` file build constraints leave out changed: it is a build input
    /// only if its constraint changed, which the loop checks once the file
    /// has settled (a file read mid-write would look changed).
    Excluded(PathBuf),
}

/// Decides whether a relative path is covered by `infer` globs.
pub type PathMatcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Whether a file name is an editor's or tool's temporary file, never a
/// real edit: vim (`.x.swp`, `4913`, `x~`), Emacs (`.#x`, `#x#`), VS Code
/// (`x.vsctmp`), JetBrains (`x___jb_tmp___`), `sed -i` (`sedXXXXXX`),
/// gohot's own atomic writes (`.x.gohot-XXXX`). Matters for kodata and
/// sync-rule files, which are synced whatever their name; build inputs are
/// known by name and need no such list.
pub fn is_noise(name: &str) -> bool {
    const SUFFIXES: &[&str] =
        &["~", ".swp", ".swo", ".swx", ".swn", ".tmp", ".vsctmp", "___jb_tmp___", "___jb_old___", ".crswap"];
    let sed_temp = name.len() == 9 && name.starts_with("sed") && name[3..].bytes().all(|b| b.is_ascii_alphanumeric());
    name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || SUFFIXES.iter().any(|s| name.ends_with(s))
        || name == "4913"
        || sed_temp
        || name.starts_with(".gohot")
        || name.contains(".gohot-")
}

/// What one service's binary is built from, and its kodata.
#[derive(Clone)]
pub struct ServiceScope {
    /// The package's kodata directory.
    pub kodata: PathBuf,
    /// What the binary is built from.
    pub inputs: BuildInputs,
}

/// Everything the watcher needs to classify a path, for every service of
/// the session.
#[derive(Clone)]
pub struct Scope {
    /// The services, in session order (the router's order).
    pub services: Vec<ServiceScope>,
    /// Which services a sync-rule file goes to.
    pub router: Router,
    /// Infer globs: the context directory and the matcher (context-relative paths).
    pub infer: Option<(PathBuf, PathMatcher)>,
}

impl Scope {
    /// What a change of `path` means, per service: nothing, or one or two
    /// [`Change`]s for each service it concerns (a file both covered by a
    /// sync rule and a build input is synced and rebuilt, so the binary
    /// never embeds a stale copy).
    pub fn classify(&self, path: &Path) -> Vec<(usize, Change)> {
        let mut out = Vec::new();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return out };
        if path.iter().any(|c| c == ".git") {
            return out;
        }
        let syncable = !is_noise(name) && !path.is_dir();
        let infer = match &self.infer {
            Some((context, infer)) if syncable => rel_str(path, context).filter(|r| infer(r)),
            _ => None,
        };
        let owners = if infer.is_some() { self.router.owners(path) } else { Vec::new() };
        for (i, service) in self.services.iter().enumerate() {
            if syncable {
                if self.router.has_rules() && !self.router.rule_destinations(i, path).is_empty() {
                    if let Some(rel) = rel_str(path, &self.router.services()[i].module_root) {
                        out.push((i, Change::Rule(rel)));
                    }
                }
                if let Some(rel) = infer.as_ref().filter(|_| owners.contains(&i)) {
                    out.push((i, Change::Infer(rel.clone())));
                }
                if let Some(rel) = rel_str(path, &service.kodata) {
                    if !crate::builder::kodata::is_gohot_owned_kodata(&rel) {
                        out.push((i, Change::Kodata(rel)));
                    }
                }
            }
            let inputs = &service.inputs;
            if inputs.contains(path) {
                let refresh = inputs.module_files.contains(path) || !path.exists();
                out.push((i, Change::Source { path: path.to_path_buf(), refresh }));
            } else if inputs.is_excluded_go(path) {
                out.push((i, Change::Excluded(path.to_path_buf())));
            } else if inputs.may_become_input(path) {
                out.push((i, Change::Source { path: path.to_path_buf(), refresh: true }));
            }
        }
        out
    }

    /// Directories to watch and how: package and input directories flat;
    /// embed roots, kodata, and the trees sync rules cover recursively.
    /// A directory inside a recursively watched one is not watched again.
    fn watches(&self) -> BTreeMap<PathBuf, RecursiveMode> {
        let mut flat = BTreeSet::new();
        let mut deep = BTreeSet::new();
        for (service, dirs) in self.services.iter().zip(self.router.services()) {
            let (f, d) = service.inputs.watch_dirs();
            flat.extend(f);
            deep.extend(d);
            flat.insert(dirs.module_root.clone());
            if service.kodata.is_dir() {
                deep.insert(service.kodata.clone());
            }
            if self.router.has_rules() {
                deep.insert(dirs.module_root.clone());
            }
        }
        if let Some((context, _)) = &self.infer {
            deep.insert(context.clone());
        }
        let covered = |d: &Path, deep: &BTreeSet<PathBuf>| deep.iter().any(|r| r != d && d.starts_with(r));
        let deep: BTreeSet<PathBuf> = deep.iter().filter(|d| !covered(d, &deep)).cloned().collect();
        let mut out: BTreeMap<PathBuf, RecursiveMode> = BTreeMap::new();
        for d in flat.into_iter().filter(|d| !deep.iter().any(|r| d.starts_with(r))) {
            out.insert(d, RecursiveMode::NonRecursive);
        }
        for d in deep {
            out.insert(d, RecursiveMode::Recursive);
        }
        out
    }
}

/// A live watcher; dropping it stops watching.
pub struct SourceWatcher {
    watcher: Arc<Mutex<notify::RecommendedWatcher>>,
    watched: BTreeMap<PathBuf, RecursiveMode>,
    scope: Arc<RwLock<Scope>>,
}

impl SourceWatcher {
    /// Starts watching; changes arrive on the returned channel.
    pub fn start(scope: Scope) -> notify::Result<(Self, mpsc::UnboundedReceiver<(usize, Change)>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (new_dirs, new_dirs_rx) = std::sync::mpsc::channel::<PathBuf>();
        let shared = Arc::new(RwLock::new(scope));
        let s = shared.clone();
        let events = tx.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            let scope = s.read().unwrap_or_else(|p| p.into_inner());
            for p in &event.paths {
                for c in scope.classify(p) {
                    let _ = events.send(c);
                }
                // A directory made or moved in (not a symlink to one: notify does not follow those).
                let arrived = matches!(
                    event.kind,
                    notify::EventKind::Create(_) | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
                );
                if arrived && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
                    let _ = new_dirs.send(p.clone());
                }
            }
        })?;
        let watcher = Arc::new(Mutex::new(watcher));
        let (w, s) = (Arc::downgrade(&watcher), shared.clone());
        std::thread::Builder::new()
            .name("gohot-new-dirs".into())
            .spawn(move || scan_new_dirs(new_dirs_rx, w, s, tx))
            .map_err(notify::Error::io)?;
        let mut w = SourceWatcher { watcher, watched: BTreeMap::new(), scope: shared };
        w.rewatch()?;
        Ok((w, rx))
    }

    /// Whether a constraint-excluded `.go` file now counts for `service`
    /// (see [`Change::Excluded`]).
    pub fn constraint_changed(&self, service: usize, path: &Path) -> bool {
        let scope = self.scope.read().unwrap_or_else(|p| p.into_inner());
        scope.services.get(service).is_some_and(|s| s.inputs.constraint_changed(path))
    }

    /// `service`'s build inputs as last listed.
    pub fn inputs(&self, service: usize) -> BuildInputs {
        let scope = self.scope.read().unwrap_or_else(|p| p.into_inner());
        scope.services.get(service).map(|s| s.inputs.clone()).unwrap_or_default()
    }

    /// Replaces `service`'s build inputs (after they were listed again) and
    /// watches the directories they need.
    pub fn set_inputs(&mut self, service: usize, inputs: BuildInputs) -> notify::Result<()> {
        if let Some(s) = self.scope.write().unwrap_or_else(|p| p.into_inner()).services.get_mut(service) {
            s.inputs = inputs;
        }
        self.rewatch()
    }

    /// Brings the watches in line with the scope (directories that appeared
    /// since, such as a kodata created by the first dev build, get watched).
    pub fn rewatch(&mut self) -> notify::Result<()> {
        let want = self.scope.read().unwrap_or_else(|p| p.into_inner()).watches();
        let gone: Vec<PathBuf> =
            self.watched.iter().filter(|(p, m)| want.get(*p) != Some(m)).map(|(p, _)| p.clone()).collect();
        for p in gone {
            let _ = self.watcher().unwatch(&p);
            self.watched.remove(&p);
        }
        for (p, mode) in want {
            if self.watched.contains_key(&p) {
                continue;
            }
            let watched = self.watcher().watch(&p, mode);
            match watched {
                Ok(()) => {
                    self.watched.insert(p, mode);
                }
                // The module root must be watchable; a directory that went
                // away since it was listed is watched again at the next listing.
                Err(e) if !self.is_module_root(&p) => tracing::debug!("cannot watch {}: {e}", p.display()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn watcher(&self) -> std::sync::MutexGuard<'_, notify::RecommendedWatcher> {
        self.watcher.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_module_root(&self, dir: &Path) -> bool {
        self.scope.read().unwrap_or_else(|p| p.into_inner()).router.services().iter().any(|s| s.module_root == dir)
    }
}

/// A directory new inside a recursive watch (`mkdir -p a && cp …`, a
/// checkout, a `mv` into the tree) can be filled before notify watches it, so its files are
/// classified from a walk — once notify has added that watch: notify (on
/// inotify) adds watches for new directories only after handing their
/// events to the handler, so a request through its event loop (the removal
/// of a watch that does not exist: a no-op) returns only after that. Runs
/// until the watcher, and with it the sender, is gone.
fn scan_new_dirs(
    dirs: std::sync::mpsc::Receiver<PathBuf>,
    watcher: std::sync::Weak<Mutex<notify::RecommendedWatcher>>,
    scope: Arc<RwLock<Scope>>,
    tx: mpsc::UnboundedSender<(usize, Change)>,
) {
    for dir in dirs {
        let Some(w) = watcher.upgrade() else { return };
        // Only inotify adds watches for new directories itself, after the
        // handler; other backends watch recursively by nature (and on
        // FSEvents an unwatch restarts the stream).
        if notify::RecommendedWatcher::kind() == notify::WatcherKind::Inotify {
            let _ = w.lock().unwrap_or_else(|p| p.into_inner()).unwatch(&dir.join("\0gohot-barrier"));
        }
        drop(w);
        let mut files = Vec::new();
        let _ = crate::sync::infer::walk_files(&dir, &dir, &mut files);
        let scope = scope.read().unwrap_or_else(|p| p.into_inner());
        for c in files.iter().flat_map(|f| scope.classify(&dir.join(f))) {
            if tx.send(c).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::go::{ListedModule, ListedPackage};
    use crate::devloop::route::ServiceDirs;
    use crate::sync::rules::{CompiledRules, ManualRule};

    /// A session of one service at `root` (package directory and module root).
    fn one_service(root: &Path, inputs: BuildInputs, rules: Option<&str>) -> Scope {
        let dirs = ServiceDirs { name: "app".into(), package_dir: root.into(), module_root: root.into() };
        let rules = rules.map(|src| {
            let rule = ManualRule { src: src.into(), dest: "/srv".into(), strip: None, apps: Vec::new() };
            Arc::new(CompiledRules::new(vec![rule]).unwrap())
        });
        Scope {
            services: vec![ServiceScope { kodata: root.join("kodata"), inputs }],
            router: Router::new(vec![dirs], rules).unwrap(),
            infer: None,
        }
    }

    fn scope(rules: Option<&str>) -> Scope {
        let main = ListedPackage {
            dir: "/m".into(),
            module: Some(ListedModule {
                main: true,
                go_mod: Some("/m/go.mod".into()),
                replace: None,
                ..Default::default()
            }),
            go_files: vec!["main.go".into()],
            embed_patterns: vec!["static/banner.txt".into()],
            embed_files: vec!["static/banner.txt".into()],
            ignored_go_files: vec!["gen.go".into()],
            ..Default::default()
        };
        let lib = ListedPackage { dir: "/m/lib".into(), go_files: vec!["x.go".into()], ..main.clone() };
        let lib = ListedPackage { ignored_go_files: vec![], ..lib };
        let lib = ListedPackage { embed_patterns: vec![], embed_files: vec![], ..lib };
        one_service(Path::new("/m"), BuildInputs::from_listing(&[main, lib], None), rules)
    }

    fn source(p: &str, refresh: bool) -> Vec<Change> {
        vec![Change::Source { path: p.into(), refresh }]
    }

    #[test]
    fn classifies_paths() {
        let s = scope(None);
        let c = |p: &str| s.classify(Path::new(p)).into_iter().map(|(_, c)| c).collect::<Vec<_>>();
        // Paths that do not exist here: inputs that are gone ask for a new listing.
        assert_eq!(c("/m/main.go"), source("/m/main.go", true));
        assert_eq!(c("/m/go.mod"), source("/m/go.mod", true));
        assert_eq!(c("/m/lib/x.go"), source("/m/lib/x.go", true));
        assert_eq!(c("/m/static/banner.txt"), source("/m/static/banner.txt", true));
        assert_eq!(c("/m/new.go"), source("/m/new.go", true));
        assert_eq!(c("/m/gen.go"), vec![Change::Excluded("/m/gen.go".into())], "checked once settled");
        assert_eq!(c("/m/kodata/a/b.txt"), vec![Change::Kodata("a/b.txt".into())]);
        for ignored in [
            "/m/kodata/watchexec",
            "/m/kodata/.index.html.swp",
            "/m/kodata/..watchexec.sha256.gohot-fX0VU2",
            "/m/dev.log",
            "/m/notes.txt",
            "/m/.main.go.swp",
            "/m/main.go~",
            "/m/4913",
            "/m/main.go.vsctmp",
            "/m/sedhrrbbR",
            "/m/hello.test",
            "/m/cover.out",
            "/m/main_test.go",
            "/m/.git/index",
            "/m/other/x.go",
            "/m/static/notes.txt",
        ] {
            assert_eq!(c(ignored), vec![], "{ignored}");
        }
        let s = scope(Some("static/**"));
        let c = |p: &str| s.classify(Path::new(p)).into_iter().map(|(_, c)| c).collect::<Vec<_>>();
        assert_eq!(c("/m/static/a.html"), vec![Change::Rule("static/a.html".into())]);
        assert_eq!(c("/m/static/.a.html.swp"), vec![]);
        assert_eq!(c("/m/docs/README.md"), vec![]);
        // Covered by a rule and embedded: synced and rebuilt.
        assert_eq!(
            c("/m/static/banner.txt"),
            vec![Change::Rule("static/banner.txt".into()), source("/m/static/banner.txt", true).remove(0)]
        );
    }

    #[test]
    fn noise_names() {
        for n in [
            ".main.go.swp",
            "4913",
            "main.go~",
            ".#main.go",
            "#main.go#",
            "main.go.vsctmp",
            "sedhrrbbR",
            "x___jb_tmp___",
        ] {
            assert!(is_noise(n), "{n}");
        }
        for n in ["main.go", "sedan.txt", "site.css", "swp.go"] {
            assert!(!is_noise(n), "{n}");
        }
    }

    #[test]
    fn watches_do_not_overlap() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        std::fs::create_dir_all(root.join("kodata")).unwrap();
        std::fs::create_dir_all(root.join("lib")).unwrap();
        let main = ListedPackage {
            dir: root.clone(),
            module: Some(ListedModule {
                main: true,
                go_mod: Some(root.join("go.mod")),
                replace: None,
                ..Default::default()
            }),
            go_files: vec!["main.go".into()],
            ..Default::default()
        };
        let lib = ListedPackage { dir: root.join("lib"), ..main.clone() };
        let inputs = BuildInputs::from_listing(&[main, lib], None);
        let s = one_service(&root, inputs.clone(), None);
        let w = s.watches();
        assert_eq!(w.get(&root), Some(&RecursiveMode::NonRecursive));
        assert_eq!(w.get(&root.join("lib")), Some(&RecursiveMode::NonRecursive));
        assert_eq!(w.get(&root.join("kodata")), Some(&RecursiveMode::Recursive));
        let s = one_service(&root, inputs, Some("nothing/*"));
        let w = s.watches();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w.get(&root), Some(&RecursiveMode::Recursive));
    }

    /// Files written into a directory the instant it is made (`mkdir -p`
    /// then a write, `cp -r`, a checkout), or in a directory moved in, are
    /// all seen, though they may land before the new directory's own watch
    /// exists. Real inotify watcher.
    #[tokio::test]
    async fn files_in_new_directories_are_seen() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let scope = one_service(&root, BuildInputs::default(), Some("static/**"));
        let (_w, mut rx) = SourceWatcher::start(scope).unwrap();
        let mut want = std::collections::BTreeSet::new();
        for i in 0..20 {
            let dir = root.join(format!("static/d{i}/deeper"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("a.css"), "x").unwrap();
            want.insert(format!("static/d{i}/deeper/a.css"));
        }
        // A directory moved in, already full.
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(outside.path().join("moved/inner")).unwrap();
        std::fs::write(outside.path().join("moved/inner/b.css"), "x").unwrap();
        std::fs::rename(outside.path().join("moved"), root.join("static/moved")).unwrap();
        want.insert("static/moved/inner/b.css".to_string());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while !want.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((_, Change::Rule(rel)))) => {
                    want.remove(&rel);
                }
                Ok(Some(_)) => {}
                _ => panic!("never seen: {want:?}"),
            }
        }
    }
}
