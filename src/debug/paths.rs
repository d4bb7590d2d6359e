//! Source paths both ways: the editor's local files
//! (`/home/me/shop/cmd/api/main.go`) and the names a `-trimpath` binary
//! knows them by (`example.com/shop/cmd/api/main.go`,
//! `net/http/server.go`, `github.com/x/y@v1.2.0/z.go`).
//!
//! `go build -trimpath` rewrites each package's directory to a name derived
//! from its import path (cmd/go's `Action.trimpath`): `PATH@VERSION` plus
//! the rest of the import path for a package of a module with a version,
//! else the import path itself (the main module, the standard library).
//! [`PathMap`] applies the same rule to what `go list -deps` reports, so the
//! mapping is exact, directory by directory, for every package the binary
//! is built from — and an editor needs no `substitutePath`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::builder::go::ListedPackage;

/// Local package directories ↔ the directories a `-trimpath` build records.
#[derive(Clone, Debug, Default)]
pub struct PathMap {
    to_remote: HashMap<PathBuf, String>,
    to_local: HashMap<String, PathBuf>,
}

/// Which way a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Editor → delve: local paths become the binary's.
    ToDelve,
    /// Delve → editor: the binary's paths become local ones.
    ToEditor,
}

/// The directory `go build -trimpath` records for a package.
pub fn trimmed_dir(pkg: &ListedPackage) -> String {
    match &pkg.module {
        Some(m) if !m.version.is_empty() && !m.path.is_empty() => {
            format!("{}@{}{}", m.path, m.version, pkg.import_path.strip_prefix(m.path.as_str()).unwrap_or_default())
        }
        _ => pkg.import_path.clone(),
    }
}

impl PathMap {
    /// The map for the packages a binary is built from (`go list -deps`).
    pub fn from_listing(packages: &[ListedPackage]) -> Self {
        let mut map = PathMap::default();
        for p in packages.iter().filter(|p| !p.dir.as_os_str().is_empty() && !p.import_path.is_empty()) {
            map.insert(p.dir.clone(), trimmed_dir(p));
        }
        map
    }

    /// Adds one directory pair (the canonical local path too, so a path
    /// through a symlink finds it).
    pub fn insert(&mut self, local: PathBuf, remote: String) {
        if let Ok(canonical) = local.canonicalize() {
            if canonical != local {
                self.to_remote.insert(canonical, remote.clone());
            }
        }
        self.to_remote.insert(local.clone(), remote.clone());
        self.to_local.insert(remote, local);
    }

    /// Directory pairs known.
    pub fn len(&self) -> usize {
        self.to_local.len()
    }

    /// Whether no pair is known.
    pub fn is_empty(&self) -> bool {
        self.to_local.is_empty()
    }

    /// The binary's name of a local file, if its directory is one of the build's.
    pub fn to_remote(&self, local: &str) -> Option<String> {
        let path = Path::new(local);
        let (dir, name) = (path.parent()?, path.file_name()?.to_str()?);
        let remote = self.to_remote.get(dir).or_else(|| self.to_remote.get(&dir.canonicalize().ok()?))?;
        Some(format!("{remote}/{name}"))
    }

    /// The local file of a name the binary knows, if it is one of the build's.
    pub fn to_local(&self, remote: &str) -> Option<String> {
        let (dir, name) = remote.rsplit_once('/')?;
        let local = self.to_local.get(dir)?;
        Some(local.join(name).to_string_lossy().into_owned())
    }

    /// Rewrites the `path` of every DAP `Source` in a message: the values of
    /// `source` keys and the items of `sources` arrays, wherever they are
    /// (arguments, bodies, nested breakpoints and stack frames). Paths
    /// outside the build are left as they are.
    pub fn rewrite(&self, msg: &mut Value, direction: Direction) {
        let map = |p: &str| match direction {
            Direction::ToDelve => self.to_remote(p),
            Direction::ToEditor => self.to_local(p),
        };
        walk(msg, &map);
    }
}

fn walk(v: &mut Value, map: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::Object(m) => {
            for (key, child) in m.iter_mut() {
                match (key.as_str(), &mut *child) {
                    ("source", Value::Object(_)) => rewrite_source(child, map),
                    ("sources", Value::Array(items)) => items.iter_mut().for_each(|s| rewrite_source(s, map)),
                    _ => {}
                }
                walk(child, map);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| walk(i, map)),
        _ => {}
    }
}

fn rewrite_source(source: &mut Value, map: &dyn Fn(&str) -> Option<String>) {
    if let Some(Value::String(path)) = source.get_mut("path") {
        if let Some(new) = map(path) {
            *path = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::go::ListedModule;

    fn pkg(dir: &str, import: &str, module: Option<(&str, &str)>) -> ListedPackage {
        ListedPackage {
            dir: dir.into(),
            import_path: import.into(),
            module: module.map(|(path, version)| ListedModule {
                path: path.into(),
                version: version.into(),
                main: version.is_empty(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn map() -> PathMap {
        PathMap::from_listing(&[
            pkg("/home/me/shop/cmd/api", "example.com/shop/cmd/api", Some(("example.com/shop", ""))),
            pkg("/home/me/shop/internal/db", "example.com/shop/internal/db", Some(("example.com/shop", ""))),
            pkg("/usr/lib/go/src/net/http", "net/http", None),
            pkg(
                "/home/me/go/pkg/mod/github.com/!burnt!sushi/toml@v1.3.2/internal",
                "github.com/BurntSushi/toml/internal",
                Some(("github.com/BurntSushi/toml", "v1.3.2")),
            ),
        ])
    }

    #[test]
    fn the_trimpath_rule() {
        let m = map();
        for (local, remote) in [
            ("/home/me/shop/cmd/api/main.go", "example.com/shop/cmd/api/main.go"),
            ("/home/me/shop/internal/db/db.go", "example.com/shop/internal/db/db.go"),
            ("/usr/lib/go/src/net/http/server.go", "net/http/server.go"),
            (
                "/home/me/go/pkg/mod/github.com/!burnt!sushi/toml@v1.3.2/internal/tz.go",
                "github.com/BurntSushi/toml@v1.3.2/internal/tz.go",
            ),
        ] {
            assert_eq!(m.to_remote(local).as_deref(), Some(remote), "{local}");
            assert_eq!(m.to_local(remote).as_deref(), Some(local), "{remote}");
        }
        // Outside the build: left alone (None), both ways.
        assert_eq!(m.to_remote("/home/me/shop/cmd/other/main.go"), None);
        assert_eq!(m.to_remote("/home/me/shop/cmd/api/sub/x.go"), None);
        assert_eq!(m.to_local("example.com/shop/cmd/api/sub/x.go"), None);
        assert_eq!(m.to_local("<autogenerated>"), None);
    }

    #[test]
    fn sources_are_rewritten_wherever_they_are() {
        let m = map();
        let mut request = serde_json::json!({"command": "setBreakpoints", "arguments": {
            "source": {"name": "main.go", "path": "/home/me/shop/cmd/api/main.go"},
            "breakpoints": [{"line": 12}], "path": "/home/me/shop/cmd/api/main.go"}});
        m.rewrite(&mut request, Direction::ToDelve);
        assert_eq!(request["arguments"]["source"]["path"], "example.com/shop/cmd/api/main.go");
        assert_eq!(request["arguments"]["path"], "/home/me/shop/cmd/api/main.go", "only Source paths");
        let mut response = serde_json::json!({"body": {"stackFrames": [
            {"id": 1000, "source": {"name": "main.go", "path": "example.com/shop/cmd/api/main.go"}, "line": 12},
            {"id": 1001, "source": {"name": "server.go", "path": "net/http/server.go"}, "line": 2358},
            {"id": 1002, "source": {"name": "x.go", "path": "/abs/not/trimmed/x.go"}, "line": 1}]}});
        m.rewrite(&mut response, Direction::ToEditor);
        let frames = &response["body"]["stackFrames"];
        assert_eq!(frames[0]["source"]["path"], "/home/me/shop/cmd/api/main.go");
        assert_eq!(frames[1]["source"]["path"], "/usr/lib/go/src/net/http/server.go");
        assert_eq!(frames[2]["source"]["path"], "/abs/not/trimmed/x.go");
        let mut loaded = serde_json::json!({"body": {"sources": [{"path": "example.com/shop/internal/db/db.go"}]}});
        m.rewrite(&mut loaded, Direction::ToEditor);
        assert_eq!(loaded["body"]["sources"][0]["path"], "/home/me/shop/internal/db/db.go");
    }

    #[test]
    fn a_path_through_a_symlink_is_found() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let m = PathMap::from_listing(&[pkg(&real.to_string_lossy(), "example.com/m", Some(("example.com/m", "")))]);
        let via_link = d.path().join("link/main.go");
        assert_eq!(m.to_remote(&via_link.to_string_lossy()).as_deref(), Some("example.com/m/main.go"));
    }
}
