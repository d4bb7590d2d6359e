//! What a binary is built from, file by file: the set the dev loop watches.
//!
//! [`BuildInputs::from_listing`] turns `go list -e -deps -json` (see
//! [`super::go::GoToolchain::list_deps`]) into the exact files the compiler
//! reads from the developer's tree — Go, cgo, assembly, syso and
//! `//go:embed`ded files of every local package (main module, or a module
//! replaced by a directory), and the modules' `go.mod`/`go.sum` (and
//! `go.work`) — plus what is needed to notice a file that is not an input
//! yet but may become one: the packages' directories (a new `.go` file),
//! the embed patterns (a new asset), the `.go` files build constraints leave
//! out (their constraint may change).
//!
//! Membership is decided per file, never per directory: a log file, an
//! editor's swap file or a test binary next to `main.go` is not an input,
//! whatever directory it is in. Pure apart from reading the header of
//! constraint-excluded Go files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::go::ListedPackage;

/// One `//go:embed` pattern of one package.
#[derive(Clone, Debug)]
pub struct EmbedPattern {
    /// The package directory the pattern is relative to.
    pub dir: PathBuf,
    /// The pattern as written (`static/*.html`, `all:templates`).
    pub pattern: String,
    all: bool,
    matcher: Option<GlobMatcher>,
}

impl EmbedPattern {
    fn new(dir: &Path, pattern: &str) -> Self {
        let (all, glob) = match pattern.strip_prefix("all:") {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        // Go's path.Match: `*` and `?` never cross `/`; no `**`, no `{a,b}`
        // (globset's alternation is off for want of a switch, but Go rejects
        // such patterns anyway).
        let matcher = GlobBuilder::new(glob).literal_separator(true).backslash_escape(true).build().ok();
        EmbedPattern {
            dir: dir.to_path_buf(),
            pattern: pattern.to_string(),
            all,
            matcher: matcher.map(|g| g.compile_matcher()),
        }
    }

    /// Whether `path` is (or would be) embedded by this pattern: it matches
    /// itself, or lies in a directory the pattern matches (Go embeds such a
    /// directory's files recursively, leaving out names starting with `.` or
    /// `_` unless the pattern starts with `all:`).
    pub fn covers(&self, path: &Path) -> bool {
        let (Some(m), Ok(rel)) = (&self.matcher, path.strip_prefix(&self.dir)) else { return false };
        let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
        if parts.is_empty() || parts.len() != rel.iter().count() {
            return false;
        }
        if m.is_match(parts.join("/")) {
            return true;
        }
        (1..parts.len()).any(|n| {
            m.is_match(parts[..n].join("/"))
                && (self.all || parts[n..].iter().all(|p| !p.starts_with('.') && !p.starts_with('_')))
        })
    }

    /// The directory below which the pattern's matches lie: its leading
    /// components without glob characters (the package directory when the
    /// first component is a glob).
    pub fn root(&self) -> PathBuf {
        let glob = self.pattern.strip_prefix("all:").unwrap_or(&self.pattern);
        let mut root = self.dir.clone();
        for part in glob.split('/') {
            if part.contains(['*', '?', '[', '\\']) {
                break;
            }
            root.push(part);
        }
        root
    }
}

/// The files a binary is built from, and how to notice new ones.
#[derive(Clone, Debug, Default)]
pub struct BuildInputs {
    /// Every file the compiler reads from the developer's tree, absolute.
    pub files: BTreeSet<PathBuf>,
    /// `go.mod`/`go.sum` of the local modules, and `go.work`/`go.work.sum`.
    pub module_files: BTreeSet<PathBuf>,
    /// Directories of the local packages: a new `.go` file there may be an input.
    pub package_dirs: BTreeSet<PathBuf>,
    /// `.go` files of those packages that build constraints leave out, with
    /// their header (everything up to the `package` clause, where
    /// constraints are): a change there may make them inputs.
    pub excluded_go: BTreeMap<PathBuf, String>,
    /// `//go:embed` patterns of the local packages.
    pub embeds: Vec<EmbedPattern>,
}

impl BuildInputs {
    /// From `go list -e -deps -json`'s packages; `work_file` is the
    /// `go.work` in use, if any.
    pub fn from_listing(listed: &[ListedPackage], work_file: Option<&Path>) -> Self {
        let mut inputs = BuildInputs::default();
        for p in listed.iter().filter(|p| p.is_local()) {
            inputs.files.extend(p.input_files());
            inputs.package_dirs.insert(p.dir.clone());
            if let Some(go_mod) = p.go_mod() {
                inputs.module_files.insert(go_mod.to_path_buf());
                inputs.module_files.insert(go_mod.with_file_name("go.sum"));
            }
            for f in &p.ignored_go_files {
                if f.ends_with("_test.go") {
                    continue;
                }
                let path = p.dir.join(f);
                let header = constraint_header(&path).unwrap_or_default();
                inputs.excluded_go.insert(path, header);
            }
            inputs.embeds.extend(p.embed_patterns.iter().map(|pat| EmbedPattern::new(&p.dir, pat)));
        }
        if let Some(w) = work_file {
            inputs.module_files.insert(w.to_path_buf());
            inputs.module_files.insert(w.with_file_name("go.work.sum"));
        }
        inputs
    }

    /// Whether `path` is a file the binary is built from right now.
    pub fn contains(&self, path: &Path) -> bool {
        self.files.contains(path) || self.module_files.contains(path)
    }

    /// Whether a file that is not an input may have become one: a new `.go`
    /// file in a package directory, or a file an embed pattern covers. A
    /// `.go` file build constraints leave out is not one by itself (see
    /// [`Self::is_excluded_go`]).
    pub fn may_become_input(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
        if path.parent().is_some_and(|d| self.package_dirs.contains(d)) && is_go_source_name(name) {
            return !self.excluded_go.contains_key(path);
        }
        !path.is_dir() && self.embeds.iter().any(|e| e.covers(path))
    }

    /// Whether `path` is a `.go` file of a package that build constraints
    /// leave out: it becomes an input only if its constraint changes.
    pub fn is_excluded_go(&self, path: &Path) -> bool {
        self.excluded_go.contains_key(path)
    }

    /// Whether a constraint-excluded `.go` file's header (its `//go:build`
    /// lines, up to `package`) differs from when it was listed, or it is
    /// gone. Read the file once it has settled: mid-write, it differs.
    pub fn constraint_changed(&self, path: &Path) -> bool {
        match self.excluded_go.get(path) {
            Some(header) => constraint_header(path).is_none_or(|now| &now != header),
            None => false,
        }
    }

    /// Directories to watch: (non-recursively, recursively). Package
    /// directories and the directories of input files non-recursively; the
    /// roots of embed patterns recursively (an embedded directory's new
    /// subdirectories count).
    pub fn watch_dirs(&self) -> (BTreeSet<PathBuf>, BTreeSet<PathBuf>) {
        let mut flat: BTreeSet<PathBuf> = self.package_dirs.clone();
        for f in self.files.iter().chain(&self.module_files) {
            if let Some(d) = f.parent() {
                flat.insert(d.to_path_buf());
            }
        }
        let mut deep = BTreeSet::new();
        for e in &self.embeds {
            let root = e.root();
            if root.is_dir() {
                deep.insert(root);
            } else if let Some(parent) = root.parent().filter(|p| p.is_dir()) {
                flat.insert(parent.to_path_buf());
            }
        }
        flat.retain(|d| d.is_dir());
        (flat, deep)
    }
}

/// Whether Go would consider a file with this name a source file of the
/// package (not a test, not hidden or `_`-prefixed).
pub fn is_go_source_name(name: &str) -> bool {
    name.ends_with(".go") && !name.ends_with("_test.go") && !name.starts_with('.') && !name.starts_with('_')
}

/// A Go file's text up to its `package` clause: where build constraints are.
fn constraint_header(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut header = String::new();
    for line in text.lines() {
        header.push_str(line);
        header.push('\n');
        if line.trim_start().starts_with("package ") {
            break;
        }
    }
    Some(header)
}

/// The `go.work` Go would use for a module rooted at `module_root`: the
/// first one found walking up from it (`GOWORK` set to a file, or `off`, wins).
pub fn work_file(module_root: &Path, gowork_env: Option<&str>) -> Option<PathBuf> {
    match gowork_env {
        Some("off") => return None,
        Some(p) if !p.is_empty() => return Some(PathBuf::from(p)),
        _ => {}
    }
    module_root.ancestors().map(|d| d.join("go.work")).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::go::{ListedModule, ListedPackage};

    fn pkg(dir: &str, main: bool) -> ListedPackage {
        ListedPackage {
            dir: dir.into(),
            module: Some(ListedModule { main, go_mod: Some("/m/go.mod".into()), replace: None, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn inputs_are_files_not_directories() {
        let mut main = pkg("/m", true);
        main.go_files = vec!["main.go".into()];
        main.s_files = vec!["fast_amd64.s".into()];
        main.syso_files = vec!["rsrc.syso".into()];
        main.embed_patterns = vec!["static/banner.txt".into(), "templates".into(), "all:assets/*".into()];
        main.embed_files = vec!["static/banner.txt".into(), "templates/a.tmpl".into()];
        let mut lib = pkg("/m/lib", true);
        lib.go_files = vec!["lib.go".into()];
        let mut std = pkg("/usr/lib/go/src/fmt", false);
        std.standard = true;
        std.go_files = vec!["print.go".into()];
        let mut cached = pkg("/root/go/pkg/mod/x@v1", false);
        cached.go_files = vec!["x.go".into()];
        let inputs = BuildInputs::from_listing(&[main, lib, std, cached], None);
        let p = Path::new;
        for f in [
            "/m/main.go",
            "/m/fast_amd64.s",
            "/m/rsrc.syso",
            "/m/static/banner.txt",
            "/m/lib/lib.go",
            "/m/go.mod",
            "/m/go.sum",
        ] {
            assert!(inputs.contains(p(f)), "{f}");
        }
        for f in
            ["/m/dev.log", "/m/.main.go.swp", "/m/main.go~", "/m/4913", "/m/hello.test", "/m/cover.out", "/m/notes.txt"]
        {
            assert!(!inputs.contains(p(f)) && !inputs.may_become_input(p(f)), "{f}");
        }
        assert!(
            !inputs.contains(p("/usr/lib/go/src/fmt/print.go")) && !inputs.contains(p("/root/go/pkg/mod/x@v1/x.go"))
        );
        // New files that may be inputs: Go sources, files embed patterns cover.
        assert!(inputs.may_become_input(p("/m/new.go")));
        assert!(inputs.may_become_input(p("/m/lib/new.go")));
        assert!(!inputs.may_become_input(p("/m/new_test.go")));
        assert!(!inputs.may_become_input(p("/m/.#new.go")));
        assert!(!inputs.may_become_input(p("/m/other/new.go")), "not a package of the binary");
        assert!(inputs.may_become_input(p("/m/templates/b.tmpl")));
        assert!(inputs.may_become_input(p("/m/templates/sub/c.tmpl")));
        assert!(
            !inputs.may_become_input(p("/m/templates/.c.tmpl.swp")),
            "hidden files are not embedded from a directory"
        );
        assert!(inputs.may_become_input(p("/m/assets/.hidden")), "all: embeds hidden files");
        assert!(!inputs.may_become_input(p("/m/static/other.txt")));
    }

    #[test]
    fn embed_roots() {
        let e = EmbedPattern::new(Path::new("/m"), "static/*.html");
        assert_eq!(e.root(), Path::new("/m/static"));
        assert_eq!(EmbedPattern::new(Path::new("/m"), "*.txt").root(), Path::new("/m"));
        assert_eq!(EmbedPattern::new(Path::new("/m"), "all:a/b").root(), Path::new("/m/a/b"));
    }

    #[test]
    fn constraint_changes_are_noticed() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("gen.go");
        std::fs::write(&f, "//go:build ignore\n\npackage main\n\nfunc x() {}\n").unwrap();
        let mut p = pkg(d.path().to_str().unwrap(), true);
        p.ignored_go_files = vec!["gen.go".into()];
        let inputs = BuildInputs::from_listing(&[p], None);
        assert!(inputs.is_excluded_go(&f) && !inputs.may_become_input(&f));
        assert!(!inputs.constraint_changed(&f), "unchanged");
        std::fs::write(&f, "//go:build ignore\n\npackage main\n\nfunc y() {}\n").unwrap();
        assert!(!inputs.constraint_changed(&f), "body edits of an excluded file do not matter");
        std::fs::write(&f, "package main\n\nfunc y() {}\n").unwrap();
        assert!(inputs.constraint_changed(&f), "constraint removed");
        std::fs::remove_file(&f).unwrap();
        assert!(inputs.constraint_changed(&f), "gone");
    }

    #[test]
    fn work_files() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("svc");
        std::fs::create_dir_all(&m).unwrap();
        assert_eq!(work_file(&m, None), None);
        std::fs::write(d.path().join("go.work"), "go 1.22\n").unwrap();
        assert_eq!(work_file(&m, None), Some(d.path().join("go.work")));
        assert_eq!(work_file(&m, Some("off")), None);
    }
}
