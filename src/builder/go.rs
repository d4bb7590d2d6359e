//! Running the Go toolchain: find it, ask it about a package, build it.
//!
//! Builds are what ko does: `CGO_ENABLED=0 GOOS=linux GOARCH=<arch> go build
//! -trimpath`, written to ko's cache location. `-trimpath` is what makes the
//! binary — and so the image digest — independent of the checkout directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::process::Command;

use crate::platform::Platform;

/// Errors from the Go toolchain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GoError {
    /// No `go` to run.
    #[error("Go toolchain not found: {detail}. Install Go and put `go` on PATH, or set GOHOT_GO to the go binary")]
    NotFound {
        /// What was looked at.
        detail: String,
    },
    /// `go list` could not resolve the package.
    #[error("cannot load Go package {package:?}: {message}")]
    Package {
        /// The package as the user wrote it.
        package: String,
        /// What go said.
        message: String,
    },
    /// The package is a library, not a command.
    #[error("{package:?} is package {name:?}, not a main package: gohot builds commands (`package main` with `func main`); point it at the directory of your command, e.g. ./cmd/app")]
    NotMain {
        /// The package as the user wrote it.
        package: String,
        /// Its package name.
        name: String,
    },
    /// A pattern (`./cmd/...`) where one main package was expected.
    #[error("{package:?} is a pattern: gohot takes main packages, one directory each, not patterns; {}", pattern_hint(.matched))]
    Pattern {
        /// The pattern as the user wrote it.
        package: String,
        /// The main packages it matches, as `./dir` paths.
        matched: Vec<String>,
    },
    /// A path without `./` that Go reads as an import path, while a local
    /// directory of that name exists.
    #[error("cannot load Go package {package:?}: Go reads a path without ./ as an import path{}; for the directory, write ./{package}", went_to(.found))]
    NotRelative {
        /// The package as the user wrote it.
        package: String,
        /// What Go found instead (its directory), or what go said.
        found: Option<String>,
    },
    /// The compiler failed; `stderr` is what it printed, verbatim.
    #[error("go build failed for {import_path} ({platform})")]
    Build {
        /// The package.
        import_path: String,
        /// The platform.
        platform: String,
        /// The compiler's output.
        stderr: String,
    },
    /// The toolchain could not be started or its output read.
    #[error("running {go}: {source}")]
    Io {
        /// The go binary.
        go: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn pattern_hint(matched: &[String]) -> String {
    match matched {
        [] => "it matches no main package here".into(),
        m => format!("name them: {}", m.join(" ")),
    }
}

fn went_to(found: &Option<String>) -> String {
    found.as_ref().map(|f| format!(" ({f})")).unwrap_or_default()
}

/// A located `go` binary.
#[derive(Clone, Debug)]
pub struct GoToolchain {
    go: PathBuf,
}

/// What `go list` says about a main package.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Package {
    /// Import path, e.g. `example.com/hello`.
    pub import_path: String,
    /// Package name (`main` for commands).
    pub name: String,
    /// Directory holding its sources.
    pub dir: PathBuf,
    /// Its module, if any.
    #[serde(default)]
    pub module: Option<Module>,
}

/// A Go module.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Module {
    /// Module path.
    pub path: String,
    /// Module root directory.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// The fields of `go list -json` that [`ListedPackage`] reads.
const LISTED_FIELDS: &str = "-json=Dir,ImportPath,Standard,Module,GoFiles,CgoFiles,CFiles,CXXFiles,MFiles,HFiles,\
FFiles,SFiles,SwigFiles,SwigCXXFiles,SysoFiles,EmbedPatterns,EmbedFiles,IgnoredGoFiles";

/// One package as `go list -deps -json` reports it: what the compiler reads from it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListedPackage {
    /// Its directory.
    pub dir: PathBuf,
    /// Its import path.
    pub import_path: String,
    /// Part of the standard library.
    pub standard: bool,
    /// Its module (none for the standard library).
    pub module: Option<ListedModule>,
    /// `.go` files compiled (build constraints applied).
    pub go_files: Vec<String>,
    /// `.go` files that `import "C"`.
    pub cgo_files: Vec<String>,
    /// C sources.
    #[serde(rename = "CFiles")]
    pub c_files: Vec<String>,
    /// C++ sources.
    #[serde(rename = "CXXFiles")]
    pub cxx_files: Vec<String>,
    /// Objective-C sources.
    #[serde(rename = "MFiles")]
    pub m_files: Vec<String>,
    /// C/C++ headers.
    #[serde(rename = "HFiles")]
    pub h_files: Vec<String>,
    /// Fortran sources.
    #[serde(rename = "FFiles")]
    pub f_files: Vec<String>,
    /// Assembly sources.
    #[serde(rename = "SFiles")]
    pub s_files: Vec<String>,
    /// SWIG files.
    pub swig_files: Vec<String>,
    /// SWIG C++ files.
    #[serde(rename = "SwigCXXFiles")]
    pub swig_cxx_files: Vec<String>,
    /// `.syso` objects linked in.
    pub syso_files: Vec<String>,
    /// `//go:embed` patterns, as written.
    pub embed_patterns: Vec<String>,
    /// Files those patterns match (relative to `dir`).
    pub embed_files: Vec<String>,
    /// `.go` files build constraints leave out (for this platform).
    pub ignored_go_files: Vec<String>,
}

/// The module of a listed package.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListedModule {
    /// Its module path.
    pub path: String,
    /// Its version (empty for the main module).
    pub version: String,
    /// The main module (the one being built).
    pub main: bool,
    /// Its go.mod.
    pub go_mod: Option<PathBuf>,
    /// A `replace` directive, if any.
    pub replace: Option<ListedReplace>,
}

/// A `replace` target.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListedReplace {
    /// Version; empty when the replacement is a local directory.
    pub version: String,
    /// Its go.mod.
    pub go_mod: Option<PathBuf>,
}

impl ListedPackage {
    /// Whether the developer edits this package: it is in the main module or
    /// in a module replaced by a local directory (not the standard library,
    /// not the module cache).
    pub fn is_local(&self) -> bool {
        !self.standard
            && self.module.as_ref().is_some_and(|m| m.main || m.replace.as_ref().is_some_and(|r| r.version.is_empty()))
    }

    /// The go.mod of its module (the replacement's for a replaced module).
    pub fn go_mod(&self) -> Option<&Path> {
        let m = self.module.as_ref()?;
        m.replace.as_ref().and_then(|r| r.go_mod.as_deref()).or(m.go_mod.as_deref())
    }

    /// Every file of this package the compiler reads, absolute.
    pub fn input_files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        [
            &self.go_files,
            &self.cgo_files,
            &self.c_files,
            &self.cxx_files,
            &self.m_files,
            &self.h_files,
            &self.f_files,
            &self.s_files,
            &self.swig_files,
            &self.swig_cxx_files,
            &self.syso_files,
            &self.embed_files,
        ]
        .into_iter()
        .flatten()
        .map(|f| self.dir.join(f))
    }
}

impl Package {
    /// The binary's name in the image: the import path's last element, skipping
    /// a major-version suffix (`example.com/app/v2` → `app`), as ko does.
    pub fn binary_name(&self) -> String {
        binary_name(&self.import_path)
    }
}

/// See [`Package::binary_name`].
pub fn binary_name(import_path: &str) -> String {
    let mut parts = import_path.rsplit('/');
    let last = parts.next().unwrap_or(import_path);
    let is_major = last.len() > 1 && last.starts_with('v') && last[1..].bytes().all(|b| b.is_ascii_digit());
    match (is_major, parts.next()) {
        (true, Some(parent)) => parent.to_string(),
        _ => last.to_string(),
    }
}

/// Everything `go build` needs besides the package.
#[derive(Clone, Debug, Default)]
pub struct BuildSettings {
    /// Directory to run in.
    pub dir: PathBuf,
    /// Extra environment, applied after gohot's defaults (so it may override them).
    pub env: Vec<(String, String)>,
    /// Extra flags before the package.
    pub flags: Vec<String>,
    /// `-ldflags` parts, joined with spaces.
    pub ldflags: Vec<String>,
}

impl GoToolchain {
    /// Finds `go`: `$GOHOT_GO` if set, else `go` on PATH.
    pub fn find() -> Result<Self, GoError> {
        if let Some(p) = std::env::var_os("GOHOT_GO").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(GoToolchain { go: p })
            } else {
                Err(GoError::NotFound { detail: format!("GOHOT_GO={} does not exist", p.display()) })
            };
        }
        which::which("go")
            .map(|go| GoToolchain { go })
            .map_err(|_| GoError::NotFound { detail: "GOHOT_GO is not set and there is no `go` on PATH".into() })
    }

    /// A toolchain at a known path.
    pub fn at(go: PathBuf) -> Self {
        GoToolchain { go }
    }

    /// Path of the `go` binary.
    pub fn path(&self) -> &Path {
        &self.go
    }

    fn command(&self, dir: &Path) -> Command {
        let mut c = Command::new(&self.go);
        c.current_dir(dir).stdin(Stdio::null()).kill_on_drop(true);
        c
    }

    fn io(&self, source: std::io::Error) -> GoError {
        GoError::Io { go: self.go.clone(), source }
    }

    /// Runs `go list ARGS -- PACKAGE` in `dir` for `platform` (if given) and
    /// returns its stdout; a failure carries go's message.
    async fn list(
        &self,
        dir: &Path,
        platform: Option<&Platform>,
        args: &[&str],
        package: &str,
    ) -> Result<Vec<u8>, GoError> {
        let settings = BuildSettings { dir: dir.to_path_buf(), ..Default::default() };
        self.list_with(&settings, platform, args, package).await
    }

    /// [`Self::list`] with a build's environment and flags (`-tags` decides
    /// which files are compiled, so the listing must see the same ones).
    async fn list_with(
        &self,
        settings: &BuildSettings,
        platform: Option<&Platform>,
        args: &[&str],
        package: &str,
    ) -> Result<Vec<u8>, GoError> {
        let mut cmd = self.command(&settings.dir);
        if let Some(p) = platform {
            cmd.env("GOOS", &p.os).env("GOARCH", &p.arch).env("CGO_ENABLED", "0");
        }
        for (k, v) in &settings.env {
            cmd.env(k, v);
        }
        cmd.arg("list").args(args).args(&settings.flags);
        let out = cmd.arg("--").arg(package).output().await.map_err(|e| self.io(e))?;
        if !out.status.success() {
            return Err(GoError::Package {
                package: package.into(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// `go version -m BINARY`: the build information Go embedded (module,
    /// dependencies, settings), for SBOMs.
    pub async fn version_m(&self, binary: &Path) -> Result<String, GoError> {
        let dir = binary.parent().unwrap_or(Path::new("/"));
        let out = self.command(dir).arg("version").arg("-m").arg(binary).output().await.map_err(|e| self.io(e))?;
        if !out.status.success() {
            return Err(GoError::Package {
                package: binary.display().to_string(),
                message: format!("go version -m: {}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Resolves `package` (a path like `./cmd/app` or an import path) in `dir`
    /// and checks that it is a main package.
    /// A pattern (`./cmd/...`) is refused naming the main packages it
    /// matches; `cmd/api` where `./cmd/api` is a directory here is refused
    /// with the `./` spelling (Go would read it as an import path: the
    /// standard library's `cmd/api`).
    pub async fn main_package(&self, dir: &Path, package: &str) -> Result<Package, GoError> {
        if package.contains("...") {
            let matched = self.main_packages_matching(dir, package).await;
            return Err(GoError::Pattern { package: package.into(), matched });
        }
        let local = (!package.starts_with('.') && !package.starts_with('/'))
            .then(|| dir.join(package))
            .filter(|d| d.is_dir())
            .and_then(|d| std::fs::canonicalize(d).ok());
        let listed = self.list(dir, None, &["-json=ImportPath,Name,Dir,Module"], package).await;
        let out = match (listed, &local) {
            (Ok(out), _) => out,
            (Err(_), Some(_)) => return Err(GoError::NotRelative { package: package.into(), found: None }),
            (Err(e), None) => return Err(e),
        };
        let pkg: Package = serde_json::from_slice(&out).map_err(|e| GoError::Package {
            package: package.into(),
            message: format!("unexpected `go list` output ({e}); is {} a Go toolchain?", self.go.display()),
        })?;
        if let Some(local) = local {
            if std::fs::canonicalize(&pkg.dir).ok().as_ref() != Some(&local) {
                let found = Some(format!("it found {} in {}", pkg.import_path, pkg.dir.display()));
                return Err(GoError::NotRelative { package: package.into(), found });
            }
        }
        if pkg.name != "main" {
            return Err(GoError::NotMain { package: package.into(), name: pkg.name });
        }
        Ok(pkg)
    }

    /// The main packages `pattern` matches in `dir`, as `./dir` paths
    /// (empty if go cannot list them).
    async fn main_packages_matching(&self, dir: &Path, pattern: &str) -> Vec<String> {
        let template = r#"-f={{if eq .Name "main"}}{{.Dir}}{{end}}"#;
        let Ok(out) = self.list(dir, None, &["-e", template], pattern).await else {
            return Vec::new();
        };
        let base = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| match Path::new(l).strip_prefix(&base) {
                Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
                Ok(rel) => format!("./{}", rel.display()),
                Err(_) => l.to_string(),
            })
            .collect()
    }

    /// Lists every package the binary of `import_path` is built from (itself
    /// included), as `go list -e -deps -json` reports them for `platform`:
    /// directories, every kind of source file, `//go:embed` patterns and the
    /// files they match, and the module each belongs to. With `-e`, a package
    /// with errors (a missing embed file, a syntax error) is still listed, so
    /// a broken tree can be watched until it is fixed.
    pub async fn list_deps(
        &self,
        dir: &Path,
        import_path: &str,
        platform: &Platform,
    ) -> Result<Vec<ListedPackage>, GoError> {
        let settings = BuildSettings { dir: dir.to_path_buf(), ..Default::default() };
        self.list_deps_with(&settings, import_path, platform).await
    }

    /// [`Self::list_deps`] as a build with `settings` sees the packages
    /// (its directory, environment and flags such as `-tags`).
    pub async fn list_deps_with(
        &self,
        settings: &BuildSettings,
        import_path: &str,
        platform: &Platform,
    ) -> Result<Vec<ListedPackage>, GoError> {
        let out = self.list_with(settings, Some(platform), &["-e", "-deps", LISTED_FIELDS], import_path).await?;
        serde_json::Deserializer::from_slice(&out).into_iter::<ListedPackage>().collect::<Result<_, _>>().map_err(|e| {
            GoError::Package {
                package: import_path.into(),
                message: format!("unexpected `go list -deps -json` output ({e})"),
            }
        })
    }

    /// Lists the files the binary of `import_path` is built from that the
    /// developer can change: Go, cgo, assembly, syso and embedded files of
    /// the packages it depends on (itself included) in the main module or a
    /// module replaced by a local directory, absolute. Standard-library
    /// packages and modules from the module cache are left out.
    pub async fn dependency_files(
        &self,
        dir: &Path,
        import_path: &str,
        platform: &Platform,
    ) -> Result<Vec<PathBuf>, GoError> {
        let listed = self.list_deps(dir, import_path, platform).await?;
        Ok(listed.iter().filter(|p| p.is_local()).flat_map(ListedPackage::input_files).collect())
    }

    /// Builds `pkg` for `platform` into `out`. The binary is written next to
    /// `out` and renamed over it only when the build succeeded, so a failed
    /// build leaves the previous binary in place.
    pub async fn build(
        &self,
        pkg: &Package,
        platform: &Platform,
        settings: &BuildSettings,
        out: &Path,
    ) -> Result<(), GoError> {
        let parent = out.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| self.io(e))?;
        // `go build -o` writes it; renamed into the cache without an fsync
        // (a cache entry lost in a crash is rebuilt). The prefix keeps the
        // watcher and syncback from taking it for a user's file.
        let tmp = parent.join(format!("{}.out.{}", crate::atomic::TEMP_PREFIX, std::process::id()));
        let mut cmd = self.command(&settings.dir);
        cmd.env("GOOS", &platform.os).env("GOARCH", &platform.arch).env("CGO_ENABLED", "0");
        if let (Some(v), "arm") = (&platform.variant, platform.arch.as_str()) {
            cmd.env("GOARM", v.trim_start_matches('v'));
        }
        for (k, v) in &settings.env {
            cmd.env(k, v);
        }
        cmd.arg("build").arg("-o").arg(&tmp).arg("-trimpath");
        cmd.args(&settings.flags);
        if !settings.ldflags.is_empty() {
            cmd.arg(format!("-ldflags={}", settings.ldflags.join(" ")));
        }
        cmd.arg("--").arg(&pkg.import_path);
        let result = cmd.stderr(Stdio::piped()).stdout(Stdio::piped()).output().await.map_err(|e| self.io(e))?;
        if !result.status.success() {
            let _ = std::fs::remove_file(&tmp);
            let mut stderr = String::from_utf8_lossy(&result.stderr).into_owned();
            stderr.push_str(&String::from_utf8_lossy(&result.stdout));
            return Err(GoError::Build {
                import_path: pkg.import_path.clone(),
                platform: platform.to_string(),
                stderr,
            });
        }
        std::fs::rename(&tmp, out).map_err(|e| self.io(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_names_follow_ko() {
        assert_eq!(binary_name("example.com/hello"), "hello");
        assert_eq!(binary_name("example.com/app/cmd/server"), "server");
        assert_eq!(binary_name("example.com/app/v2"), "app");
        assert_eq!(binary_name("v2"), "v2");
    }
}
