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
        let mut cmd = self.command(dir);
        if let Some(p) = platform {
            cmd.env("GOOS", &p.os).env("GOARCH", &p.arch).env("CGO_ENABLED", "0");
        }
        let out = cmd.arg("list").args(args).arg("--").arg(package).output().await.map_err(|e| self.io(e))?;
        if !out.status.success() {
            return Err(GoError::Package {
                package: package.into(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// Resolves `package` (a path like `./cmd/app` or an import path) in `dir`
    /// and checks that it is a main package.
    pub async fn main_package(&self, dir: &Path, package: &str) -> Result<Package, GoError> {
        let out = self.list(dir, None, &["-json=ImportPath,Name,Dir,Module"], package).await?;
        let pkg: Package = serde_json::from_slice(&out).map_err(|e| GoError::Package {
            package: package.into(),
            message: format!("unexpected `go list` output ({e}); is {} a Go toolchain?", self.go.display()),
        })?;
        if pkg.name != "main" {
            return Err(GoError::NotMain { package: package.into(), name: pkg.name });
        }
        Ok(pkg)
    }

    /// Lists the directories of the non-standard packages `import_path`
    /// depends on (itself included): what to watch for changes.
    pub async fn dependency_dirs(
        &self,
        dir: &Path,
        import_path: &str,
        platform: &Platform,
    ) -> Result<Vec<PathBuf>, GoError> {
        let out = self
            .list(dir, Some(platform), &["-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}"], import_path)
            .await?;
        Ok(String::from_utf8_lossy(&out).lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect())
    }

    /// Lists the source files of the packages `import_path` depends on
    /// (itself included) that belong to the main module or to a module
    /// replaced by a local directory: Go, cgo and embedded files, absolute.
    /// Standard-library packages and modules from the module cache are left
    /// out (they do not change under the developer's hands).
    pub async fn dependency_files(
        &self,
        dir: &Path,
        import_path: &str,
        platform: &Platform,
    ) -> Result<Vec<PathBuf>, GoError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Listed {
            #[serde(default)]
            dir: PathBuf,
            #[serde(default)]
            standard: bool,
            #[serde(default)]
            module: Option<ListedModule>,
            #[serde(default)]
            go_files: Vec<String>,
            #[serde(default)]
            cgo_files: Vec<String>,
            #[serde(default)]
            embed_files: Vec<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct ListedModule {
            #[serde(default)]
            main: bool,
            #[serde(default)]
            replace: Option<Replace>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Replace {
            #[serde(default)]
            version: String,
        }
        let out = self
            .list(dir, Some(platform), &["-deps", "-json=Dir,Standard,Module,GoFiles,CgoFiles,EmbedFiles"], import_path)
            .await?;
        let mut files = Vec::new();
        for item in serde_json::Deserializer::from_slice(&out).into_iter::<Listed>() {
            let p = item.map_err(|e| GoError::Package {
                package: import_path.into(),
                message: format!("unexpected `go list -deps -json` output ({e})"),
            })?;
            let local = match &p.module {
                Some(m) => m.main || m.replace.as_ref().is_some_and(|r| r.version.is_empty()),
                None => false,
            };
            if p.standard || !local {
                continue;
            }
            files.extend(p.go_files.iter().chain(&p.cgo_files).chain(&p.embed_files).map(|f| p.dir.join(f)));
        }
        Ok(files)
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
        let tmp = parent.join(format!(".out.tmp-{}", std::process::id()));
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
